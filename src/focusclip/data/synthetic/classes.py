"""Class names of the synthetic world (the exact lists written to ``classes.json``)."""

from __future__ import annotations

# fmt: off
ACTIVITIES: tuple[str, ...] = (
    "running", "walking", "jumping", "sitting", "standing", "lying down", "squatting",
    "waving", "cheering", "kicking", "bending over", "doing push-ups",
)
# fmt: on
AGE_GROUPS: tuple[str, ...] = ("kid", "teenager", "adult")
EXPRESSIONS: tuple[str, ...] = ("happy", "sad", "angry", "surprised", "neutral")

#: Coarse activity groups (the record's ``activity.category``).
ACTIVITY_CATEGORIES: dict[str, str] = {
    "running": "locomotion",
    "walking": "locomotion",
    "jumping": "sports",
    "kicking": "sports",
    "sitting": "posture",
    "standing": "posture",
    "lying down": "posture",
    "bending over": "posture",
    "squatting": "exercise",
    "doing push-ups": "exercise",
    "waving": "gesture",
    "cheering": "gesture",
}


def class_lists() -> dict[str, list[str]]:
    """The content of ``classes.json``: ``{"activity": [...], "age": [...], "expression": [...]}``."""
    return {"activity": list(ACTIVITIES), "age": list(AGE_GROUPS), "expression": list(EXPRESSIONS)}

"""Label presets for the page, from the zero-shot task registry, and parsing of typed labels / templates.

A preset is a class list with the task's own prompt templates. Tasks whose classes are fixed in the
registry (the paper's emotion and age tasks) give theirs directly; tasks whose classes come from the
dataset get the built-in lists: the synthetic world's ``classes.json`` content and Stanford 40's
``actions.txt`` order. Tasks with the same labels and templates (EMOTIC / LAGENDA age groups) are one
preset. Presets cover the registry's activity, age and emotion groups, the tasks about people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from focusclip.zeroshot.tasks import Task, fill_template, load_registry

PRESET_GROUPS = ("activity", "age", "emotion")

#: Stanford 40 Actions in the order of the dataset's ``ImageSplits/actions.txt``.
# fmt: off
STANFORD40_ACTIONS: tuple[str, ...] = (
    "applauding", "blowing_bubbles", "brushing_teeth", "cleaning_the_floor", "climbing", "cooking",
    "cutting_trees", "cutting_vegetables", "drinking", "feeding_a_horse", "fishing", "fixing_a_bike",
    "fixing_a_car", "gardening", "holding_an_umbrella", "jumping", "looking_through_a_microscope",
    "looking_through_a_telescope", "playing_guitar", "playing_violin", "pouring_liquid", "pushing_a_cart",
    "reading", "phoning", "riding_a_bike", "riding_a_horse", "rowing_a_boat", "running", "shooting_an_arrow",
    "smoking", "taking_photos", "texting_message", "throwing_frisby", "using_a_computer", "walking_the_dog",
    "washing_dishes", "watching_TV", "waving_hands", "writing_on_a_board", "writing_on_a_book",
)
# fmt: on


@dataclass(frozen=True)
class Preset:
    """A class list and its prompt templates; ``id`` is the first task's name."""

    id: str
    title: str
    labels: tuple[str, ...]
    templates: tuple[str, ...]
    tasks: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "labels": list(self.labels),
                "templates": list(self.templates), "tasks": list(self.tasks)}


def builtin_classes(task: Task) -> list[str] | None:
    """The class keys of ``task``: the registry's, else a built-in list for its dataset, else ``None``."""
    if task.classes is not None:
        return list(task.classes)
    if task.dataset == "synthetic":
        from focusclip.data.synthetic.classes import class_lists

        return class_lists().get(str(task.options.get("attribute", "activity")))
    if task.dataset == "stanford40":
        return list(STANFORD40_ACTIONS)
    return None  # e.g. Kinetics-400: 400 classes, read from the dataset only


def list_presets(registry: dict[str, Task] | None = None) -> list[Preset]:
    """One preset per distinct (labels, templates) among the registry's people tasks, in registry order."""
    registry = load_registry() if registry is None else registry
    merged: dict[tuple, list[Task]] = {}
    for task in registry.values():
        if task.group not in PRESET_GROUPS:
            continue
        classes = builtin_classes(task)
        if not classes:
            continue
        key = (tuple(task.text(c) for c in classes), tuple(task.templates))
        merged.setdefault(key, []).append(task)
    out = []
    for (labels, templates), tasks in merged.items():
        names = tuple(t.name for t in tasks)
        title = f"{tasks[0].group}: {', '.join(names)} ({len(labels)} labels)"
        out.append(Preset(id=names[0], title=title, labels=labels, templates=templates, tasks=names))
    return out


def find_preset(presets: Sequence[Preset], preset_id: str) -> Preset:
    for p in presets:
        if preset_id == p.id or preset_id in p.tasks:
            return p
    raise ValueError(f"unknown preset {preset_id!r}; presets: {', '.join(p.id for p in presets)}")


def parse_templates(text: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Prompt templates, one per line or list item (several are averaged), each with ``{c}``; none given
    gives ``default``."""
    lines = text.splitlines() if isinstance(text, str) else list(text or [])
    templates = [t.strip() for t in lines if t and t.strip()] or list(default)
    for t in templates:
        fill_template(t, "x")  # raises a clear ValueError without {c}
    return templates

"""The paper's single-shot prompt strategy for MPII pose descriptions (docs/method.md, "Pose descriptions").

A text-only LLM never sees the image. It gets a system prompt (expert human activity and pose analyser,
the 16 MPII joints in order, the input format and the output template) and one user message: the
annotation as JSON without image or video ids (activity, person count and, per person, centre, scale
and the 16 keypoints, invisible ones as ``[-1, -1]``).

The prompt text is versioned: change :data:`PROMPT_VERSION` whenever :data:`SYSTEM_PROMPT` or the user
payload changes, so results made with different prompts can be told apart (each result line stores it).
"""

from __future__ import annotations

import json
from typing import Any

from focusclip.data.records import Record
from focusclip.skeleton import MPII_JOINT_NAMES, NUM_JOINTS, visible_mask

PROMPT_VERSION = "mpii-single-shot-v2"  # v2: joints just outside the frame are sent as positions (one visibility rule)

DEFAULT_TEMPERATURE = 0.5
DEFAULT_MAX_TOKENS = 512
DEFAULT_FREQUENCY_PENALTY = 1.0

_JOINT_LIST = "\n".join(f"{i}. {name}" for i, name in enumerate(MPII_JOINT_NAMES))

SYSTEM_PROMPT = f"""You are an expert human activity and pose analyser. You will be given the \
annotation of one image from a human pose dataset: the activity being performed, the number of people \
and, for each person, the centre and scale of the person in the image and the 2D positions of 16 body \
keypoints. You never see the image itself; reason only from the keypoints and the activity.

The 16 keypoints are always given in this order:
{_JOINT_LIST}

Input format: each keypoint is an (x, y) pixel coordinate written as [x, y], with x growing to the \
right and y growing downwards. A keypoint that is invisible or not annotated is given as [-1, -1]. \
The scale of a person is their height in pixels divided by 200; the centre is the middle of their body.

Write the description following this template exactly:
"There are [count in words] people in image who are [verb + activity]. [General attributes of the \
activity in the keypoints' context.]"
Then, for each person, one short paragraph:
"The [location of the person, from their centre and scale] person is [state] with their [limb] ..."
For each person describe the left leg, the right leg, the left arm, the right arm, the torso and the \
head: their positions relative to each other and to the other limbs, how much each joint is bent \
(approximate angles) and similar details of the pose.

Be concise and precise. Use gender-neutral language (they/their). Do not mention coordinates, \
keypoint numbers or that you were given keypoints; write as if describing the pose seen in the image."""


def _num(v: Any) -> float | int:
    """A coordinate rounded to one decimal, written as an int when it is whole."""
    f = round(float(v), 1)
    return int(f) if f.is_integer() else f


def _joints_payload(person: dict[str, Any]) -> list[list[float | int]]:
    """The 16 keypoints as the prompt describes them: invisible ones (the project's rule) as ``[-1, -1]``."""
    joints = person.get("joints") or [[-1, -1]] * NUM_JOINTS
    shown = visible_mask(joints, person.get("visible"))
    return [[_num(x), _num(y)] if shown[j] else [-1, -1] for j, (x, y) in enumerate(joints)]


def annotation_payload(record: Record) -> dict[str, Any]:
    """The user-message annotation: activity, count and people, without image or video ids."""
    payload: dict[str, Any] = {}
    activity = record.get("activity") or {}
    if activity.get("category") or activity.get("name"):
        payload["activity"] = {"category": activity.get("category"), "name": activity.get("name")}
    people = record.get("people") or []
    payload["count"] = len(people)
    payload["people"] = []
    for person in people:
        entry: dict[str, Any] = {}
        if person.get("center") is not None:
            entry["center"] = [_num(c) for c in person["center"]]
        if person.get("scale") is not None:
            entry["scale"] = round(float(person["scale"]), 3)
        entry["keypoints"] = _joints_payload(person)
        payload["people"].append(entry)
    return payload


def user_message(record: Record) -> str:
    return json.dumps(annotation_payload(record), ensure_ascii=False)


def build_messages(record: Record) -> list[dict[str, str]]:
    """The chat messages of the single-shot strategy for one record."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(record)},
    ]

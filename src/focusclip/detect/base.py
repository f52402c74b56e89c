"""What every detector returns (people in MPII joint order, faces) and how it becomes record fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from focusclip.skeleton import NUM_JOINTS, coco_to_mpii


class DetectorUnavailable(ImportError, ValueError):  # noqa: N818 - reads as the condition it is
    """A detector's package is not installed (or lacks what the detector needs); the message says what to
    install. A ValueError too, so the command line reports it in one line."""


@dataclass
class Person:
    """One person: MPII ``joints`` (16, 2) in image pixels, ``visible`` (16,) 0/1, ``scores`` (16,) the
    detector's confidence per joint (derived joints: the smallest of their sources), ``box`` xyxy,
    ``score`` of the person and the ``face_box`` matched to them (or None)."""

    joints: np.ndarray
    visible: np.ndarray
    scores: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    face_box: tuple[float, float, float, float] | None = None


@dataclass
class Detection:
    """A detector's answer for one image: its people and every face box it found."""

    people: list[Person]
    faces: list[tuple[float, float, float, float]] = field(default_factory=list)


class Detector(Protocol):
    name: str
    max_people: int | None  #: the most people it can find in one image (None: no limit)

    def detect(self, image: Any) -> Detection:
        """People and faces in a PIL RGB image."""

    def describe(self) -> dict[str, Any]:
        """Its name, version and settings, as recorded in every record it makes."""


def person_from_coco(points: np.ndarray, scores: np.ndarray, min_score: float, score: float,
                     box: Sequence[float] | None = None) -> Person:
    """A person from 17 COCO keypoints with confidences; joints below ``min_score`` are invisible.
    ``box`` defaults to the box around the visible keypoints."""
    flags = np.where(np.asarray(scores) >= min_score, np.asarray(scores, dtype=np.float64), 0.0)
    joints, vis = coco_to_mpii(points, flags)
    _, conf = coco_to_mpii(points, np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1.0))
    if box is None:  # around the visible keypoints and the derived head top
        pts = np.concatenate([np.asarray(points, dtype=np.float64)[flags > 0], joints[vis > 0]])
        box = (*pts.min(axis=0), *pts.max(axis=0)) if len(pts) else (0.0, 0.0, 0.0, 0.0)
    return Person(joints=joints, visible=(vis > 0).astype(int), scores=np.round(conf, 3),
                  box=tuple(float(v) for v in box), score=float(score))


def strongest(people: list[Person], max_people: int | None) -> list[Person]:
    """The ``max_people`` highest-scoring people (all when None), in their original order."""
    if max_people is None or len(people) <= max_people:
        return people
    keep = set(sorted(range(len(people)), key=lambda i: -people[i].score)[:max_people])
    return [p for i, p in enumerate(people) if i in keep]


def person_record(person: Person) -> dict[str, Any]:
    """A record person (:mod:`focusclip.data.records`) with the detector's scores and boxes kept."""
    x1, y1, x2, y2 = person.box
    out: dict[str, Any] = {
        "joints": np.round(person.joints, 2).tolist(), "visible": [int(v) for v in person.visible],
        "joint_scores": [round(float(s), 3) for s in person.scores], "box": [round(v, 2) for v in person.box],
        "center": [round((x1 + x2) / 2, 2), round((y1 + y2) / 2, 2)], "scale": round((y2 - y1) / 200.0, 4),
        "score": round(person.score, 4)}
    if person.face_box is not None:
        out["face_box"] = [round(v, 2) for v in person.face_box]
    return out


def people_arrays(people: Sequence[Person]) -> tuple[np.ndarray, np.ndarray]:
    """Joints (P, 16, 2) and visibility (P, 16) bool of detected people (what drawing.roi_overlay takes)."""
    if not people:
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS), dtype=bool)
    return np.stack([p.joints for p in people]), np.stack([p.visible > 0 for p in people])


def match_faces(people: list[Person], faces: Sequence[tuple[float, float, float, float]]) -> None:
    """Give each person the face box whose centre lies in their box nearest their head (upper neck / head
    top / thorax, whichever is visible first), each face at most once."""
    from focusclip.skeleton import HEAD_TOP, THORAX, UPPER_NECK

    free = list(faces)
    for person in sorted(people, key=lambda p: -p.score):
        head = next((person.joints[j] for j in (HEAD_TOP, UPPER_NECK, THORAX) if person.visible[j]), None)
        x1, y1, x2, y2 = person.box
        inside = [f for f in free if x1 <= (f[0] + f[2]) / 2 <= x2 and y1 - (f[3] - f[1]) <= (f[1] + f[3]) / 2 <= y2]
        if not inside:
            continue
        ref = head if head is not None else np.array([(x1 + x2) / 2, y1])
        best = min(inside, key=lambda f: float(np.hypot((f[0] + f[2]) / 2 - ref[0], (f[1] + f[3]) / 2 - ref[1])))
        person.face_box = best
        free.remove(best)

"""The people a question is about: one :class:`Subject` per person in a photo, from a keypoints file,
boxes, a detector or a click on the page.

A subject has a 1-based ``person`` id, a ``box`` (x1, y1, x2, y2) in pixels of the image *as displayed*,
optionally the person's MPII ``joints`` (16, 2) with ``visible`` flags (16,), and the ``source`` it came
from. Its ROI heatmap (:meth:`Subject.heatmap`) is the person Gaussian of its visible joints when it
has at least two, else the Gaussian of its box (:mod:`focusclip.heatmaps`).

A subject *marks nothing* (:meth:`Subject.marks_anything` is False) when its box or joints have
non-finite or absurd coordinates (a box of ``[0, 0, 1e308, 1e308]`` renders to NaN), when its box has no
area, or when it lies outside the image: asked about such a subject, focus at inference gives the
plain answer with ``"focused": False`` and a note (:meth:`Subject.why_nothing`).

```python
subjects = subjects_from_boxes([[10, 20, 110, 300], [200, 20, 320, 310]])   # person 1 and person 2
heat = subjects[1].heatmap((224, 224), src_size=(480, 640))                # (H, W) float32 in [0, 1]
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from focusclip.errors import UsageError
from focusclip.heatmaps import boxes_heatmap, keypoints_heatmap
from focusclip.skeleton import NUM_JOINTS, visible_mask

SUBJECT_SOURCES = ("keypoints", "boxes", "detector", "click")
#: :meth:`Subject.why_nothing` renders the heatmap on a grid at most this many pixels a side (enough to
#: tell a finite, non-empty heatmap from one that overflows; the full size is rendered only when used)
CHECK_SIZE = 32

Box = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Subject:
    """One person to ask about (module docstring). ``box`` and ``joints`` are in displayed-image pixels."""

    person: int
    box: Box
    joints: np.ndarray | None = None
    visible: np.ndarray | None = None
    source: str = "boxes"

    def __post_init__(self) -> None:
        if self.source not in SUBJECT_SOURCES:
            raise UsageError(f"subject source must be one of {', '.join(SUBJECT_SOURCES)}, got {self.source!r}")
        if int(self.person) < 1:
            raise UsageError(f"person ids start at 1, got {self.person}")
        box = tuple(float(v) for v in np.asarray(self.box, dtype=np.float64).reshape(-1))
        if len(box) != 4:
            raise UsageError(f"person {self.person}: a box is [x1, y1, x2, y2], got {self.box!r}")
        object.__setattr__(self, "box", box)
        if self.joints is not None:
            joints = np.asarray(self.joints, dtype=np.float64)
            if joints.shape != (NUM_JOINTS, 2):
                raise UsageError(f"person {self.person}: joints must be ({NUM_JOINTS}, 2), got {joints.shape}")
            object.__setattr__(self, "joints", joints)
        if self.visible is not None:
            vis = np.asarray(self.visible).reshape(-1)
            if vis.shape != (NUM_JOINTS,):
                raise UsageError(f"person {self.person}: visible must be ({NUM_JOINTS},), got {vis.shape}")
            object.__setattr__(self, "visible", vis)

    # ------------------------------------------------------------------ geometry
    def visible_joints(self) -> np.ndarray:
        """The visible joints (K, 2) (none without joints)."""
        if self.joints is None:
            return np.zeros((0, 2))
        return self.joints[visible_mask(self.joints, self.visible)]

    @property
    def uses_joints(self) -> bool:
        """Whether the heatmap comes from the joints (at least two visible) rather than the box."""
        return len(self.visible_joints()) >= 2

    def ordered_box(self) -> Box:
        """``box`` with its corners in order (x1 <= x2, y1 <= y2); NaN stays NaN."""
        x1, y1, x2, y2 = self.box
        return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)

    def box_in(self, size: Sequence[int]) -> Box | None:
        """The box clipped to an image of ``size`` (H, W) in the same pixels; None when nothing of it is
        inside (outside, no area, non-finite coordinates)."""
        h, w = (float(v) for v in size)
        x1, y1, x2, y2 = self.ordered_box()
        if not all(np.isfinite(v) for v in (x1, y1, x2, y2)):
            return None
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, w), min(y2, h)
        if not (cx2 > cx1 and cy2 > cy1):
            return None
        return cx1, cy1, cx2, cy2

    def why_nothing(self, size: Sequence[int], src_size: Sequence[int] | None = None) -> str | None:
        """Why the subject marks nothing in an image of ``size`` (H, W), or None when it marks something.
        ``src_size``: the (H, W) frame its coordinates are in (default ``size``)."""
        frame = tuple(int(v) for v in (src_size or size))
        note = self._outside(frame)
        if note is None:  # the heatmap must render (a box of 1e308 overflows to NaN): checked on a coarse grid
            coarse = (min(frame[0], CHECK_SIZE), min(frame[1], CHECK_SIZE))
            note = self._render_note(self._render(coarse, frame), frame)
        return note

    def _outside(self, frame: tuple[int, int]) -> str | None:
        """The geometric reasons to mark nothing in a frame of (H, W) (no rendering)."""
        where = f"the {frame[1]}x{frame[0]} image"
        x1, y1, x2, y2 = self.ordered_box()
        if not self.uses_joints:
            if not all(np.isfinite(v) for v in (x1, y1, x2, y2)):
                return f"person {self.person}: box {_fmt(self.box)} has non-finite coordinates"
            if not (x2 > x1 and y2 > y1):
                return f"person {self.person}: box {_fmt(self.box)} has no area"
            if self.box_in(frame) is None:
                return f"person {self.person}: box {_fmt(self.box)} lies outside {where}"
            return None
        pts = self.visible_joints()
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= frame[1]) & (pts[:, 1] >= 0) & (pts[:, 1] <= frame[0])
        if not inside.any():
            return f"person {self.person}: every visible joint lies outside {where}"
        return None

    def _render_note(self, heat: np.ndarray, frame: tuple[int, int]) -> str | None:
        if not np.isfinite(heat).all():
            return f"person {self.person}: box {_fmt(self.box)} is too large to render a heatmap of"
        if not heat.max(initial=0.0) > 0:
            return f"person {self.person}: the heatmap of box {_fmt(self.box)} is empty in the {frame[1]}x{frame[0]} image"
        return None

    def marks_anything(self, size: Sequence[int], src_size: Sequence[int] | None = None) -> bool:
        """Whether the subject marks part of an image of ``size`` (H, W) (see :meth:`why_nothing`)."""
        return self.why_nothing(size, src_size) is None

    def _render(self, size: Sequence[int], src_size: Sequence[int] | None) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.uses_joints:
                return keypoints_heatmap(self.joints, self.visible, size, "person", src_size)
            return boxes_heatmap(np.asarray([self.ordered_box()]), size, src_size)

    def heatmap(self, size: Sequence[int], src_size: Sequence[int] | None = None) -> np.ndarray:
        """The subject's ROI heatmap: float32 (H, W) = ``size`` in [0, 1], all zeros when it marks nothing
        (never NaN). ``src_size``: the (H, W) frame the coordinates are in (default ``size``)."""
        shape = tuple(int(v) for v in size)
        frame = tuple(int(v) for v in (src_size or size))
        if self._outside(frame) is not None:
            return np.zeros(shape, dtype=np.float32)
        heat = self._render(shape, src_size)
        return heat if self._render_note(heat, frame) is None else np.zeros(shape, dtype=np.float32)

    def moved(self, offset: Sequence[float], scale: Sequence[float]) -> Subject:
        """The subject in another frame: ``(p - offset) * scale`` for every coordinate (x, y)."""
        off, sc = np.asarray(offset, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        with np.errstate(all="ignore"):
            box = (np.asarray(self.box, dtype=np.float64).reshape(2, 2) - off) * sc
            joints = None if self.joints is None else (self.joints - off) * sc
        if joints is not None and self.visible is None:  # keep [-1, -1] markers hidden after the move
            return replace(self, box=tuple(box.reshape(-1)), joints=joints,
                           visible=visible_mask(self.joints).astype(np.int64))
        return replace(self, box=tuple(box.reshape(-1)), joints=joints)

    def describe(self) -> dict[str, Any]:
        """``{"person", "box", "source"}`` for output (a non-finite box coordinate becomes None)."""
        return {"person": int(self.person), "box": [round(v, 2) if np.isfinite(v) else None for v in self.box],
                "source": self.source}


def _fmt(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


# ---------------------------------------------------------------------------------------- builders
def subjects_from_boxes(boxes: Any, source: str = "boxes") -> list[Subject]:
    """One subject per xyxy box ((B, 4), one box (4,), or a list), numbered from 1 in the given order.
    Boxes are kept as given (an invalid one marks nothing)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return []
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise UsageError(f"boxes: expected shape (B, 4) xyxy or (4,), got {tuple(arr.shape)}")
    return [Subject(person=i + 1, box=tuple(b), source=source) for i, b in enumerate(arr)]


def _joints_box(joints: np.ndarray, visible: np.ndarray) -> Box:
    pts = joints[visible]
    if not len(pts):
        return (0.0, 0.0, 0.0, 0.0)
    return (*(float(v) for v in pts.min(axis=0)), *(float(v) for v in pts.max(axis=0)))


def subjects_from_keypoints(joints: Any, visible: Any = None, source: str = "keypoints") -> list[Subject]:
    """One subject per person of MPII joints (P, 16, 2) or (16, 2) with visibility; each box is the box
    around the person's visible joints (empty when none is visible: such a person marks nothing)."""
    pts = np.asarray(joints, dtype=np.float64)
    if pts.size == 0:
        return []
    if pts.ndim == 2:
        pts = pts[None]
    vis = visible_mask(pts, None if visible is None else np.asarray(visible).reshape(pts.shape[:2]))
    return [Subject(person=p + 1, box=_joints_box(pts[p], vis[p]), joints=pts[p], visible=vis[p].astype(np.int64),
                    source=source) for p in range(len(pts))]


def subjects_from_keypoints_file(path: str | os.PathLike, image_size: Sequence[int] | None = None) -> list[Subject]:
    """The people of a keypoints file (:mod:`focusclip.data.keypoint_files`), numbered from 1 in file order.
    With ``image_size`` (H, W) of the displayed image, coordinates given in another frame (the file's
    ``width`` / ``height``) are scaled into the image's pixels, and a person entirely outside it is an error."""
    from focusclip.data.keypoint_files import read_keypoints_file

    kp = read_keypoints_file(path, image_size=None if image_size is None else tuple(image_size))
    joints = kp.joints
    if image_size is not None and kp.src_size is not None and tuple(kp.src_size) != tuple(image_size):
        scale = (image_size[1] / kp.src_size[1], image_size[0] / kp.src_size[0])
        hidden = ~kp.visible
        joints = joints * scale
        joints[hidden] = kp.joints[hidden]  # invisible markers stay markers
    return subjects_from_keypoints(joints, kp.visible, source="keypoints")


def subjects_from_boxes_file(path: str | os.PathLike) -> list[Subject]:
    """The boxes of a boxes file (a JSON list of [x1, y1, x2, y2]), numbered from 1 in file order."""
    from focusclip.data.keypoint_files import read_boxes_file

    return subjects_from_boxes(read_boxes_file(path))


def subjects_from_detection(detection: Any) -> list[Subject]:
    """The people a :mod:`focusclip.detect` detector found (its :class:`~focusclip.detect.Detection`, or
    its list of people), numbered from 1 in the detector's order, with joints and boxes."""
    people = getattr(detection, "people", detection)
    return [Subject(person=i + 1, box=tuple(float(v) for v in p.box), joints=np.asarray(p.joints, dtype=np.float64),
                    visible=(np.asarray(p.visible) > 0).astype(np.int64), source="detector")
            for i, p in enumerate(people)]


def union_heatmap(subjects: Sequence[Subject], size: Sequence[int], src_size: Sequence[int] | None = None) -> np.ndarray:
    """The union (pixel-wise maximum) of the subjects' heatmaps: what an overlay of them all shows."""
    out = np.zeros(tuple(int(v) for v in size), dtype=np.float32)
    for s in subjects:
        np.maximum(out, s.heatmap(size, src_size), out=out)
    return out


__all__ = ["SUBJECT_SOURCES", "Subject", "subjects_from_boxes", "subjects_from_boxes_file", "subjects_from_detection",
           "subjects_from_keypoints", "subjects_from_keypoints_file", "union_heatmap"]

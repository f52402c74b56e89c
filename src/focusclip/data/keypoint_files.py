"""Keypoint and box files given for one image (``focusclip heatmap``, ``predict --keypoints / --boxes``).

A keypoints file is JSON in one of three forms:

- a record of the schema (an object with ``people``; its ``width`` / ``height`` give the frame the
  coordinates are in);
- a list of people objects, each with ``joints`` (or the MPII release's ``kpts``): 16 ``[x, y]`` pairs in
  MPII order, and optional ``visible`` (or ``kpts_vis`` / ``joints_vis``) flags;
- a bare 16 x 2 or P x 16 x 2 array.

Visibility follows :func:`focusclip.skeleton.visible_mask` (``[-1, -1]`` or a flag of 0 hides a joint).
Coordinates are pixels of the image *as displayed*, i.e. after its EXIF orientation is applied, the
convention of MPII and COCO. A boxes file is a JSON list of ``[x1, y1, x2, y2]`` (or one box).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.data.records import RecordError, record_keypoints
from focusclip.errors import InputError
from focusclip.io import read_json
from focusclip.skeleton import MPII_JOINTS, NUM_JOINTS

logger = logging.getLogger(__name__)


class KeypointFileError(InputError):
    """A keypoints or boxes file that does not hold what the docstring describes; names file and person."""


@dataclass(frozen=True)
class Keypoints:
    """People's joints (P, 16, 2), their visibility (P, 16, bool) and the (H, W) frame if the file says."""

    joints: np.ndarray
    visible: np.ndarray
    src_size: tuple[int, int] | None = None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_person(path: Path, p: int, joints: Any, visible: Any) -> None:
    if not isinstance(joints, list) or len(joints) != NUM_JOINTS:
        n = len(joints) if isinstance(joints, list) else type(joints).__name__
        raise KeypointFileError(f"{path}: person {p} has {n} joints; expected {NUM_JOINTS} [x, y] pairs in MPII order")
    for j, pt in enumerate(joints):
        if not isinstance(pt, list | tuple) or len(pt) != 2 or not all(_number(v) for v in pt):
            raise KeypointFileError(f"{path}: person {p} joint {j} ({MPII_JOINTS[j]}) is {pt!r}; expected [x, y] "
                                    "numbers ([-1, -1] for an invisible joint)")
    if visible is not None and (not isinstance(visible, list) or len(visible) != NUM_JOINTS
                                or not all(_number(v) for v in visible)):
        raise KeypointFileError(f"{path}: person {p} visibility must be {NUM_JOINTS} numbers (1 visible, 0 not), "
                                f"got {visible!r}")


def _people(path: Path, data: Any) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """Normalise the three accepted forms to people ``{"joints", "visible"}`` and an optional frame size."""
    if isinstance(data, dict):
        if "people" not in data or not isinstance(data["people"] or [], list):
            raise KeypointFileError(f"{path}: a JSON object must be a record with a 'people' list")
        size = None
        if data.get("width") and data.get("height"):
            if not (_number(data["width"]) and _number(data["height"])):
                raise KeypointFileError(f"{path}: 'width' and 'height' must be numbers")
            size = (int(data["height"]), int(data["width"]))
        return _people(path, data["people"] or [])[0], size
    if isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
        people = []
        for p, person in enumerate(data):
            joints = person.get("joints", person.get("kpts"))
            if joints is None:
                raise KeypointFileError(f"{path}: person {p} has no 'joints' (expected {NUM_JOINTS} [x, y] pairs)")
            vis = person.get("visible", person.get("kpts_vis", person.get("joints_vis")))
            _check_person(path, p, joints, vis)
            people.append({"joints": joints, "visible": vis})
        return people, None
    if isinstance(data, list) and data and isinstance(data[0], list) and data[0] and isinstance(data[0][0], list):
        for p, joints in enumerate(data):  # P x 16 x 2
            _check_person(path, p, joints, None)
        return [{"joints": j, "visible": None} for j in data], None
    if isinstance(data, list) and data:
        _check_person(path, 0, data, None)  # 16 x 2
        return [{"joints": data, "visible": None}], None
    if isinstance(data, list):
        return [], None
    raise KeypointFileError(f"{path}: expected a record, a list of people or a 16x2 / Px16x2 array, "
                            f"got {type(data).__name__}")


def read_keypoints_file(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> Keypoints:
    """Read a keypoints file (module docstring). With ``image_size=(H, W)`` of the image the file is for,
    a person whose visible joints all lie outside that image is an error (the file belongs to another
    image, size or orientation) and visible joints outside it are reported in a warning."""
    path = Path(path)
    people, src_size = _people(path, read_json(path, "keypoints file"))
    try:
        joints, visible = record_keypoints({"id": str(path), "people": people})
    except RecordError as e:
        raise KeypointFileError(str(e)) from None
    frame = src_size or image_size
    if frame is not None:
        _check_inside(path, joints, visible, frame)
    return Keypoints(joints, visible, src_size)


def _check_inside(path: Path, joints: np.ndarray, visible: np.ndarray, frame: tuple[int, int]) -> None:
    h, w = frame
    outside = visible & ((joints[..., 0] < 0) | (joints[..., 0] > w) | (joints[..., 1] < 0) | (joints[..., 1] > h))
    for p in range(len(joints)):
        n_vis, n_out = int(visible[p].sum()), int(outside[p].sum())
        if n_vis and n_out == n_vis:
            raise KeypointFileError(f"{path}: person {p}: all {n_vis} visible joints lie outside the {w}x{h} image; "
                                    "is the file for another image, size or orientation?")
        if n_out:
            names = ", ".join(MPII_JOINTS[j] for j in np.flatnonzero(outside[p]))
            logger.warning("%s: person %d: %d of %d visible joints lie outside the %dx%d image (%s)", path, p,
                           n_out, n_vis, w, h, names)


def read_boxes_file(path: str | os.PathLike) -> np.ndarray:
    """xyxy boxes (B, 4) from a JSON list of ``[x1, y1, x2, y2]`` (or one box)."""
    path = Path(path)
    data = read_json(path, "boxes file")
    if isinstance(data, list) and len(data) == 4 and all(_number(v) for v in data):
        data = [data]
    if not isinstance(data, list):
        raise KeypointFileError(f"{path}: expected a JSON list of [x1, y1, x2, y2] boxes")
    for b, box in enumerate(data):
        if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
            raise KeypointFileError(f"{path}: box {b} is {box!r}; expected [x1, y1, x2, y2] numbers")
    return np.asarray(data, dtype=np.float64).reshape(-1, 4)

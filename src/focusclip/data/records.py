"""The one record schema every data source is converted to (one JSON object per line in a ``.jsonl``).

A record describes one image::

    {
      "image": "images/000001163.jpg",      # path, relative to the JSONL file's folder (or absolute)
      "width": 1280, "height": 720,          # pixel size of the image (optional but recommended)
      "split": "train",                      # "train" | "val" | "test" | ...
      "activity": {"id": 7, "name": "bicycling, mountain", "category": "bicycling"},   # optional
      "people": [                            # zero or more people
        {"center": [x, y], "scale": s,       # MPII person centre and scale (scale * 200 px = box height)
         "joints": [[x, y], ... 16],         # MPII joint order (focusclip.skeleton.MPII_JOINTS)
         "visible": [1, 0, ... 16],          # 1 = annotated and visible
         "head_box": [x1, y1, x2, y2],       # optional
         "box": [x1, y1, x2, y2]}            # optional person box
      ],
      "boxes": [[x1, y1, x2, y2], ...],      # optional subject boxes without joints
      "points": [[x, y], ...], "points_visible": [1, ...],   # optional free point sets (e.g. CUB parts)
      "heatmap": "heatmaps/000001163.png",   # optional precomputed heatmap (8-bit grey PNG)
      "captions": ["There are two people ..."],          # zero or more texts (pose descriptions)
      "labels": {"age": "kid", "expression": "happy"},  # optional attribute labels
      "id": "000001163"                      # optional stable identifier (defaults to image)
    }

Unannotated joints are stored as ``[-1, -1]`` with ``visible`` 0 (visibility follows the one rule of
:func:`focusclip.skeleton.visible_mask`). Joints that are annotated but occluded
keep their coordinates: the MPII converter marks them ``visible`` 1 by default (as mmpose and the MPII
Pose Descriptions release do; ``--visibility strict`` gives 0) and lists them in the person's
``occluded``; the synthetic world stores hidden joints as ``[-1, -1]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import InputError
from focusclip.io import iter_jsonl_lines
from focusclip.skeleton import NUM_JOINTS, visible_mask

Record = dict[str, Any]


class RecordError(InputError):
    """A record that does not match the schema; the message names the file and line (or the record).

    ``row`` is the offending row as parsed, when there is one (so a validator can still check its image).
    """

    def __init__(self, message: str, row: object = None):
        super().__init__(message)
        self.row = row


def record_id(record: Mapping[str, Any]) -> str:
    """A stable identifier for a record: its ``id`` field or, failing that, its image path."""
    rid = record.get("id")
    if rid is None or rid == "":
        rid = record.get("image") or "<record without id or image>"
    return str(rid)


#: split names of records (and aliases accepted in custom files), -> the canonical name
SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val",
          "test": "test", "testing": "test", "eval": "test"}


def record_split(record: Mapping[str, Any]) -> str | None:
    """The record's split, canonical (``train`` / ``val`` / ``test``), or None when it has none."""
    value = record.get("split")
    if value is None or value == "":
        return None
    return SPLITS.get(str(value).strip().lower(), str(value))


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numbers(values: object, n: int | None = None) -> bool:
    return isinstance(values, list | tuple) and (n is None or len(values) == n) and all(_number(v) for v in values)


def valid_joints(joints: object) -> bool:
    """``NUM_JOINTS`` [x, y] pairs of numbers."""
    return isinstance(joints, list) and len(joints) == NUM_JOINTS and all(_numbers(j, 2) for j in joints)


def _check_person(person: object, i: int, where: str) -> None:
    if not isinstance(person, dict):
        raise RecordError(f"{where}: people[{i}] must be an object with 'joints' and 'visible'")
    joints, vis = person.get("joints"), person.get("visible")
    if joints is not None and not valid_joints(joints):
        n = len(joints) if isinstance(joints, list) else type(joints).__name__
        raise RecordError(f"{where}: people[{i}].joints must be {NUM_JOINTS} [x, y] pairs of numbers, got {n} "
                          "entries or non-numbers (use [-1, -1] for a missing joint)")
    if vis is not None and not (isinstance(vis, list) and len(vis) == NUM_JOINTS
                                and all(_number(v) or isinstance(v, bool) for v in vis)):
        raise RecordError(f"{where}: people[{i}].visible must be {NUM_JOINTS} numbers (1 visible, 0 not), got {vis!r}")
    if person.get("box") is not None and not _numbers(person["box"], 4):
        raise RecordError(f"{where}: people[{i}].box must be [x1, y1, x2, y2] numbers, got {person['box']!r}")


def _check_label(key: str, value: object, where: str) -> None:
    ok = isinstance(value, str | int | float | bool) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value))
    if not ok:
        raise RecordError(f"{where}: labels.{key} must be a string, a number or a list of strings, got {value!r}")


def validate_record(record: Record, where: str = "record") -> Record:
    """The one schema check every reader and the validator apply; :class:`RecordError` names ``where``, the
    field and what was expected."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("image"), str) or not record["image"]:
        raise RecordError(f"{where}: missing 'image' (a path string)")
    people = record.get("people") or []
    if not isinstance(people, list):
        raise RecordError(f"{where}: 'people' must be a list of objects")
    for i, person in enumerate(people):
        _check_person(person, i, where)
    captions = record.get("captions")
    if captions is not None and (not isinstance(captions, list) or not all(isinstance(c, str) for c in captions)):
        raise RecordError(f"{where}: 'captions' must be a list of strings")
    labels = record.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            raise RecordError(f"{where}: 'labels' must be an object of attribute -> label, got {type(labels).__name__}")
        for key, value in labels.items():
            _check_label(key, value, where)
    boxes = record.get("boxes")
    if boxes is not None and not (isinstance(boxes, list) and all(_numbers(b, 4) for b in boxes)):
        raise RecordError(f"{where}: 'boxes' must be a list of [x1, y1, x2, y2] numbers")
    for key in ("width", "height"):
        value = record.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise RecordError(f"{where}: '{key}' must be a positive integer (pixels), got {value!r}")
    split = record.get("split")
    if split not in (None, "") and (not isinstance(split, str) or split.strip().lower() not in SPLITS):
        raise RecordError(f"{where}: 'split' must be train, val or test, got {split!r}")
    for key in ("heatmap", "id"):
        value = record.get(key)
        if value is not None and not isinstance(value, str | int):
            raise RecordError(f"{where}: '{key}' must be a string, got {value!r}")
    for key in ("activity", "meta"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise RecordError(f"{where}: '{key}' must be an object")
    return record


def read_records(path: str | os.PathLike, validate: bool = True) -> list[Record]:
    """Read a JSONL file of records. Blank lines are skipped; errors name the file and line number."""
    return list(iter_records(path, validate=validate))


def iter_records(path: str | os.PathLike, validate: bool = True) -> Iterator[Record]:
    for where, record in iter_jsonl_lines(Path(path), error=RecordError):
        if isinstance(record, RecordError):
            raise record
        yield validate_record(record, where) if validate else record


def write_records(path: str | os.PathLike, records: Iterable[Record]) -> int:
    """Write records as JSONL atomically (temporary file + rename). Returns the number written."""
    from focusclip.io import atomic_open, json_text

    n = 0
    with atomic_open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json_text(record, where=str(path)) + "\n")
            n += 1
    return n


def relative_image_path(path: str | os.PathLike, relative_to: str | os.PathLike | None) -> str:
    """An image path as a record stores it: relative to ``relative_to`` (the folder of the JSONL file the
    record goes to) when both are relative or ``relative_to`` is given, else as given (POSIX slashes)."""
    path = Path(path)
    if relative_to is None or path.is_absolute():
        return path.as_posix()
    return Path(os.path.relpath(path, relative_to)).as_posix()


def resolve_image(record: Record, root: str | os.PathLike) -> Path:
    """The image path of a record, resolved against ``root`` (usually the JSONL file's folder)."""
    p = Path(record["image"])
    return p if p.is_absolute() else Path(root) / p


# ------------------------------------------------------------------------------ accessors
def _as_boxes(boxes: Any, where: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise RecordError(f"{where}: boxes must be [x1, y1, x2, y2] lists, got shape {tuple(np.shape(boxes))}")
    return b


def record_keypoints(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The people's joints (P, 16, 2) and visibility (P, 16) of a record, the visibility rule applied
    (:func:`focusclip.skeleton.visible_mask`); people without joints are skipped."""
    joints, vis = [], []
    where = f"record {record_id(record)}"
    for i, person in enumerate(record.get("people") or []):
        if not isinstance(person, Mapping) or person.get("joints") is None:
            continue
        try:
            j = np.asarray(person["joints"], dtype=np.float64)
            v = person.get("visible")
            v = np.ones(NUM_JOINTS) if v is None else np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise RecordError(f"{where}: people[{i}] joints and visible must be numbers") from None
        if j.shape != (NUM_JOINTS, 2):
            raise RecordError(f"{where}: people[{i}].joints must be {NUM_JOINTS} [x, y] pairs, got shape {j.shape}")
        if v.shape != (NUM_JOINTS,):
            raise RecordError(f"{where}: people[{i}].visible must have {NUM_JOINTS} entries, got shape {v.shape}")
        joints.append(j)
        vis.append(visible_mask(j, v))
    if not joints:
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS), dtype=bool)
    return np.stack(joints), np.stack(vis)


def record_boxes(record: Mapping[str, Any]) -> np.ndarray:
    """Subject boxes of a record: its ``boxes`` plus each person's ``box``, as (B, 4) xyxy."""
    boxes = [list(b) for b in record.get("boxes") or []]
    boxes += [list(p["box"]) for p in record.get("people") or [] if isinstance(p, Mapping) and p.get("box") is not None]
    try:
        return _as_boxes(boxes, f"record {record_id(record)}")
    except (TypeError, ValueError) as e:
        raise RecordError(str(e) if isinstance(e, RecordError) else
                          f"record {record_id(record)}: boxes must hold numbers") from None


def record_points(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """A record's free point sets as given (``points`` (K, 2) or (S, K, 2), ``points_visible`` or None)."""
    try:
        pts = np.asarray(record.get("points") or [], dtype=np.float64)
        vis = record.get("points_visible")
        vis = None if vis is None else np.asarray(vis, dtype=np.float64)
    except (TypeError, ValueError):
        raise RecordError(f"record {record_id(record)}: points and points_visible must hold numbers") from None
    if pts.size and (pts.ndim not in (2, 3) or pts.shape[-1] != 2):
        raise RecordError(f"record {record_id(record)}: points must be [x, y] pairs (K x 2 or S x K x 2), "
                          f"got shape {pts.shape}")
    return pts, vis

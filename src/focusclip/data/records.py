"""The one record schema every data source is converted to (one JSON object per line in a ``.jsonl``).

A record describes one image::

    {
      "image": "images/000001163.jpg",      # path, relative to the JSONL file's folder (or absolute)
      "width": 1280, "height": 720,          # pixel size of the image (optional but recommended)
      "split": "train",                      # "train" | "val" | "test" | ...
      "activity": {"id": 7, "name": "bicycling, mountain", "category": "bicycling"},   # optional
      "people": [                            # zero or more people
        {"center": [x, y], "scale": s,       # MPII person centre and scale (scale * 200 px = box height)
         "joints": [[x, y], ... 16],         # MPII joint order (focusclip.heatmaps.MPII_JOINTS)
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

Unannotated joints are stored as ``[-1, -1]`` with ``visible`` 0. Joints that are annotated but occluded
keep their coordinates: the MPII converter marks them ``visible`` 1 by default (as mmpose and the MPII
Pose Descriptions release do; ``--visibility strict`` gives 0) and lists them in the person's
``occluded``; the synthetic world stores hidden joints as ``[-1, -1]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

NUM_JOINTS = 16

Record = dict[str, Any]


class RecordError(ValueError):
    """A record that does not match the schema; the message names the file and line."""


def record_id(record: Record) -> str:
    """A stable identifier for a record: its ``id`` field or, failing that, its image path."""
    return str(record.get("id", record["image"]))


def valid_joints(joints: object) -> bool:
    """``NUM_JOINTS`` [x, y] pairs of numbers."""
    return (isinstance(joints, list) and len(joints) == NUM_JOINTS
            and all(isinstance(j, list | tuple) and len(j) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in j) for j in joints))


def validate_record(record: Record, where: str = "record") -> Record:
    """Check the fields the rest of the library relies on; raise :class:`RecordError` naming ``where``."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("image"), str) or not record["image"]:
        raise RecordError(f"{where}: missing 'image' (a path string)")
    people = record.get("people") or []
    if not isinstance(people, list):
        raise RecordError(f"{where}: 'people' must be a list of objects")
    for i, person in enumerate(people):
        if not isinstance(person, dict):
            raise RecordError(f"{where}: people[{i}] must be an object with 'joints' and 'visible'")
        joints = person.get("joints")
        vis = person.get("visible")
        if joints is not None:
            if not valid_joints(joints):
                raise RecordError(f"{where}: people[{i}].joints must be {NUM_JOINTS} [x, y] pairs of numbers "
                                  "(use [-1, -1] for a missing joint)")
            if vis is not None and (not isinstance(vis, list) or len(vis) != NUM_JOINTS):
                raise RecordError(f"{where}: people[{i}].visible must have {NUM_JOINTS} entries")
    captions = record.get("captions")
    if captions is not None and (
        not isinstance(captions, list) or not all(isinstance(c, str) for c in captions)
    ):
        raise RecordError(f"{where}: 'captions' must be a list of strings")
    return record


def read_records(path: str | os.PathLike, validate: bool = True) -> list[Record]:
    """Read a JSONL file of records. Blank lines are skipped; errors name the file and line number."""
    return list(iter_records(path, validate=validate))


def iter_records(path: str | os.PathLike, validate: bool = True) -> Iterator[Record]:
    for where, record in iter_jsonl_lines(Path(path)):
        if isinstance(record, RecordError):
            raise record
        yield validate_record(record, where) if validate else record


def iter_jsonl_lines(path: Path, error: type[RecordError] = RecordError) -> Iterator[tuple[str, Any]]:
    """``("<path>:<line>", parsed JSON value)`` for each non-blank line of a JSONL file.

    A line that is not valid JSON yields an ``error`` naming the file, line and column in place of
    the value, so callers choose whether to raise it or collect it and go on.
    """
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                value = error(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
            yield where, value


def write_records(path: str | os.PathLike, records: Iterable[Record]) -> int:
    """Write records as JSONL atomically (temporary file + rename). Returns the number written."""
    from focusclip.io import atomic_open

    n = 0
    with atomic_open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def resolve_image(record: Record, root: str | os.PathLike) -> Path:
    """The image path of a record, resolved against ``root`` (usually the JSONL file's folder)."""
    p = Path(record["image"])
    return p if p.is_absolute() else Path(root) / p

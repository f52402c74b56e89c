"""Users' own data as CSV or JSONL -> records (the schema is documented in ``docs/custom-data.md``).

One row (CSV) or one object (JSONL) per image:

=============  ================================================================================
``image``      path, relative to the CSV/JSONL file's folder (or absolute). Required.
``caption``    one text, and/or
``captions``   several: a JSON list, or ``|``-separated in a CSV cell
``keypoints``  JSON, 16 x [x, y] (one person) or P x 16 x [x, y], MPII joint order; ``[-1, -1]``
               (or null) marks an invisible joint; a third value per joint, if given, is its
               visibility flag (0 hides it); other negative coordinates are real positions just
               outside the frame (:func:`focusclip.skeleton.visible_mask`)
``boxes``      JSON list of [x1, y1, x2, y2] (or one box)
``heatmap``    path to a grey 8-bit PNG (relative to the file), used with ``heatmap="file"``
``split``      e.g. train / val / test
``label_<n>``  an attribute label ``n`` (``label_age``, ``label_emotion``...)
``id``         optional stable identifier; ``width``/``height`` optional image size
=============  ================================================================================

Returned records keep paths relative to the file's folder, like every records JSONL, so the
dataset root is ``Path(file).parent``. Read files through :mod:`focusclip.data.sources`, which tells a
custom file from a records JSONL.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from focusclip.data.records import Record, RecordError, validate_record
from focusclip.io import iter_jsonl_lines
from focusclip.skeleton import NUM_JOINTS, visible_mask

logger = logging.getLogger(__name__)

KNOWN_FIELDS = {"image", "caption", "captions", "keypoints", "boxes", "heatmap", "split", "id", "width", "height"}
#: fields of the records schema accepted unchanged in a custom JSONL
PASSTHROUGH = {"people", "labels", "activity", "meta", "points", "points_visible", "caption_sources"}
#: every column name the schema knows (``label_<name>`` columns too)
CUSTOM_COLUMNS = sorted(KNOWN_FIELDS | PASSTHROUGH | {"label_<name>"})


class CustomDataError(RecordError):
    """A row of a custom CSV/JSONL that does not match the documented schema."""


def iter_custom(path: str | os.PathLike, unknown: set[str] | None = None
                ) -> Iterator[tuple[str, Record | CustomDataError]]:
    """``(where, record)`` per row of a custom ``.csv`` / ``.jsonl``, or ``(where, error)`` for a bad row,
    without stopping. Columns outside the schema are added to ``unknown`` (and kept under ``meta``)."""
    path = Path(path)
    rows = _csv_rows(path, strict=False) if path.suffix.lower() == ".csv" else _jsonl_rows(path, strict=False)
    for where, row in rows:
        if isinstance(row, CustomDataError):
            yield where, row
            continue
        try:
            yield where, row_to_record(row, where, unknown)
        except CustomDataError as e:
            e.row = row
            yield where, e


def looks_custom(first_object: Any) -> bool:
    """Whether the first object of a JSONL file is a custom row (a custom-only key such as ``caption``,
    ``keypoints``, ``label_*``, or ``captions`` as a string) rather than a record of the schema."""
    if not isinstance(first_object, dict):
        return False
    return (any(k in first_object for k in ("caption", "keypoints")) or isinstance(first_object.get("captions"), str)
            or any(k.startswith("label_") for k in first_object))


def _csv_rows(path: Path, strict: bool = True) -> Iterator[tuple[str, Any]]:
    try:
        yield from _csv_rows_utf8(path, strict)
    except UnicodeDecodeError as e:
        raise CustomDataError(f"{path}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8") from None


def _csv_rows_utf8(path: Path, strict: bool) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "image" not in [c.strip() for c in reader.fieldnames]:
            raise CustomDataError(f"{path}:1: the header must have an 'image' column, got {reader.fieldnames}")
        for row in reader:
            if None in row:
                err = CustomDataError(f"{path}:{reader.line_num}: more cells than header columns "
                                      f"({len(reader.fieldnames)}); quote cells that contain commas")
                if strict:
                    raise err
                yield f"{path}:{reader.line_num}", err
                continue
            cleaned = {k.strip(): v.strip() for k, v in row.items() if v is not None and v.strip() != ""}
            if cleaned:
                yield f"{path}:{reader.line_num}", cleaned


def _jsonl_rows(path: Path, strict: bool = True) -> Iterator[tuple[str, Any]]:
    for where, obj in iter_jsonl_lines(path, error=CustomDataError):
        if isinstance(obj, CustomDataError):
            err = obj
        else:
            err = None if isinstance(obj, dict) else CustomDataError(
                f"{where}: expected a JSON object, got {type(obj).__name__}")
        if err is not None:
            if strict:
                raise err
            yield where, err
            continue
        yield where, {k: v for k, v in obj.items() if v is not None and v != ""}


# ------------------------------------------------------------------------------ conversion
def row_to_record(row: dict[str, Any], where: str, unknown: set[str] | None = None) -> Record:
    """One custom row (already parsed from CSV or JSON) -> a record; raise naming ``where``."""
    image = row.get("image")
    if not isinstance(image, str) or not image.strip():
        raise CustomDataError(f"{where}: missing 'image' (a path relative to the file)")
    record: Record = {"image": image.strip()}
    captions = _captions(row, where)
    if captions:
        record["captions"] = captions
    if "keypoints" in row:
        record["people"] = _keypoints(row["keypoints"], where)
    if "boxes" in row:
        record["boxes"] = _boxes(row["boxes"], where)
    for key in ("heatmap", "split", "id"):
        if key in row:
            record[key] = str(row[key]).strip()
    for key in ("width", "height"):
        if key in row:
            record[key] = _int(row[key], where, key)
    labels = {k[len("label_"):]: v for k, v in row.items() if k.startswith("label_") and len(k) > len("label_")}
    for key in PASSTHROUGH:
        if key in row:
            if key == "labels":
                labels = {**_json(row[key], where, key, "an object of labels"), **labels}
            elif key == "people" and "people" in record:
                raise CustomDataError(f"{where}: give either 'keypoints' or 'people', not both")
            else:
                record[key] = _json(row[key], where, key, "JSON")
    if labels:
        record["labels"] = labels
    extra = {k: v for k, v in row.items() if k not in KNOWN_FIELDS | PASSTHROUGH and not k.startswith("label_")}
    if extra:
        if unknown is not None:
            unknown.update(extra)
        record.setdefault("meta", {}).update(extra)
    try:
        return validate_record(record, where)
    except RecordError as e:
        raise CustomDataError(str(e)) from None


def _json(value: Any, where: str, key: str, expected: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise CustomDataError(f"{where}: '{key}' is not valid JSON ({e.msg}); expected {expected}") from None


def _int(value: Any, where: str, key: str) -> int:
    try:
        out = int(float(value))
    except (TypeError, ValueError):
        raise CustomDataError(f"{where}: '{key}' must be a whole number, got {value!r}") from None
    if out <= 0:
        raise CustomDataError(f"{where}: '{key}' must be positive, got {value!r}")
    return out


def _captions(row: dict[str, Any], where: str) -> list[str]:
    out: list[str] = []
    if "caption" in row:
        if not isinstance(row["caption"], str):
            raise CustomDataError(f"{where}: 'caption' must be a string, got {type(row['caption']).__name__}")
        out.append(row["caption"])
    value = row.get("captions")
    if isinstance(value, str):
        s = value.strip()
        value = _json(s, where, "captions", "a JSON list of strings") if s.startswith("[") else s.split("|")
    if value is not None:
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise CustomDataError(f"{where}: 'captions' must be a list of strings (JSON list, or '|'-separated)")
        out += value
    return [c.strip() for c in out if c.strip()]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _keypoints(value: Any, where: str) -> list[dict[str, Any]]:
    expected = f"JSON {NUM_JOINTS} x [x, y] for one person or P x {NUM_JOINTS} x [x, y] ([-1, -1] = invisible)"
    kp = _json(value, where, "keypoints", expected)
    if not isinstance(kp, list) or not kp:
        raise CustomDataError(f"{where}: 'keypoints' must be {expected}")
    people = [kp] if isinstance(kp[0], list) and kp[0] and _is_number(kp[0][0]) or kp[0] is None else kp
    out = []
    for p, person in enumerate(people):
        if not isinstance(person, list) or len(person) != NUM_JOINTS:
            n = len(person) if isinstance(person, list) else type(person).__name__
            raise CustomDataError(f"{where}: 'keypoints' person {p} has {n} joints; expected {expected}")
        joints, visible = [], []
        for j, pt in enumerate(person):
            if pt is None:
                joints.append([-1.0, -1.0])
                visible.append(0)
                continue
            if not isinstance(pt, list) or len(pt) not in (2, 3) or not all(_is_number(v) for v in pt):
                raise CustomDataError(f"{where}: 'keypoints' person {p} joint {j} is {pt!r}; expected [x, y]")
            vis = bool(visible_mask(pt[:2], pt[2] if len(pt) == 3 else None))
            joints.append([float(pt[0]), float(pt[1])])
            visible.append(int(vis))
        out.append({"joints": joints, "visible": visible})
    return out


def _boxes(value: Any, where: str) -> list[list[float]]:
    expected = "a JSON list of [x1, y1, x2, y2] boxes with x2 > x1 and y2 > y1"
    boxes = _json(value, where, "boxes", expected)
    if isinstance(boxes, list) and len(boxes) == 4 and all(_is_number(v) for v in boxes):
        boxes = [boxes]
    if not isinstance(boxes, list):
        raise CustomDataError(f"{where}: 'boxes' must be {expected}")
    out = []
    for b, box in enumerate(boxes):
        if (not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box)
                or box[2] <= box[0] or box[3] <= box[1]):
            raise CustomDataError(f"{where}: 'boxes' box {b} is {box!r}; expected {expected}")
        out.append([float(v) for v in box])
    return out

"""Check a dataset before training with the rules the loaders apply (:func:`validate_record` through
:mod:`focusclip.data.sources`, so a file that validates is a file that trains), plus what only files show:
images exist and decode, joints lie in the image, captions are not empty, heatmap files exist. Every record is checked (no stop at the first problem); the
:class:`Report` counts each problem and keeps the first offending records of each.

Accepted inputs: a records ``.jsonl``, a custom ``.csv``/``.jsonl`` (:mod:`focusclip.data.custom`), a
folder holding ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``, or a list of records (with ``root``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focusclip.data.custom import CUSTOM_COLUMNS
from focusclip.data.records import (
    Record,
    RecordError,
    record_id,
    record_keypoints,
    record_split,
    resolve_image,
    validate_record,
)
from focusclip.data.sources import iter_dataset_file
from focusclip.errors import MissingInput
from focusclip.mappings import did_you_mean
from focusclip.progress import track

logger = logging.getLogger(__name__)

ERROR, WARNING = "error", "warning"
SPLIT_FILES = ("train.jsonl", "val.jsonl", "test.jsonl")

# problems
INVALID = "invalid record"
MISSING_IMAGE = "missing image file"
BAD_IMAGE = "unreadable or truncated image"
JOINT_COUNT = "wrong joint count"
OUT_OF_IMAGE = "keypoints outside the image"
SIZE_MISMATCH = "width/height differ from the image"
EMPTY_CAPTION = "empty caption"
NO_CAPTION = "no caption"
MISSING_HEATMAP = "missing heatmap file"
BAD_HEATMAP = "unreadable heatmap"
DUPLICATE_ID = "duplicate id"
UNKNOWN_COLUMN = "unknown column"
EMPTY = "no records"
NO_CAPTION_AT_ALL = "no caption in the whole dataset"


@dataclass
class Issue:
    severity: str
    problem: str
    where: str
    id: str
    message: str


@dataclass
class Report:
    """What :func:`validate_dataset` found. ``ok`` is False when there is any error."""

    sources: list[str] = field(default_factory=list)
    n_records: int = 0
    n_images_checked: int = 0
    n_visible_joints: int = 0  #: joints visible under the project's rule (focusclip.skeleton.visible_mask)
    splits: Counter = field(default_factory=Counter)  #: valid records per split ("unsplit" without one)
    counts: Counter = field(default_factory=Counter)
    severities: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[Issue]] = field(default_factory=dict)
    max_examples: int = 5

    def add(self, severity: str, problem: str, where: str, rid: str, message: str) -> None:
        self.counts[problem] += 1
        self.severities[problem] = severity
        bucket = self.examples.setdefault(problem, [])
        if len(bucket) < self.max_examples:
            bucket.append(Issue(severity, problem, where, rid, message))

    @property
    def n_errors(self) -> int:
        return sum(n for k, n in self.counts.items() if self.severities[k] == ERROR)

    @property
    def n_warnings(self) -> int:
        return sum(n for k, n in self.counts.items() if self.severities[k] == WARNING)

    @property
    def ok(self) -> bool:
        return self.n_errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources, "records": self.n_records, "images_checked": self.n_images_checked,
            "visible_joints": self.n_visible_joints, "splits": dict(self.splits),
            "ok": self.ok, "errors": self.n_errors, "warnings": self.n_warnings,
            "problems": {k: {"severity": self.severities[k], "count": n,
                             "examples": [vars(i) for i in self.examples.get(k, [])]}
                         for k, n in self.counts.most_common()},
        }

    def format(self) -> str:
        lines = [f"dataset: {', '.join(self.sources) or '(records)'}",
                 f"records: {self.n_records}, images checked: {self.n_images_checked}, "
                 f"visible joints: {self.n_visible_joints}, splits: "
                 f"{', '.join(f'{k} {v}' for k, v in sorted(self.splits.items())) or 'none'}",
                 f"result: {'OK' if self.ok else 'ERRORS'} ({self.n_errors} errors, {self.n_warnings} warnings)"]
        for problem, n in sorted(self.counts.items(), key=lambda kv: (self.severities[kv[0]] != ERROR, -kv[1])):
            lines.append(f"  {self.severities[problem]:7s} {problem}: {n}")
            for issue in self.examples.get(problem, []):
                lines.append(f"      {issue.where} [{issue.id}] {issue.message}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ sources
def _sources(path: Path) -> list[Path]:
    if path.is_dir():
        files = [path / name for name in SPLIT_FILES if (path / name).is_file()]
        if not files:
            raise MissingInput(f"{path}: a dataset folder must hold {' / '.join(SPLIT_FILES)}; none found")
        return files
    if not path.is_file():
        raise MissingInput(f"dataset not found: {path}")
    return [path]


# ------------------------------------------------------------------------------ checks
def check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """``((width, height), None)`` for a readable image (its displayed size, EXIF orientation applied), else
    ``(None, reason)``. Decodes fully, as training will."""
    from PIL import Image

    from focusclip.images import open_image

    if not path.is_file():
        return None, "missing"
    try:
        with Image.open(path) as im:
            im.verify()
        return open_image(path).size, None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt data
        return None, str(e).removeprefix(f"{path}: ")


def _check_people(record: Record, size: tuple[int, int] | None, where: str, rid: str, report: Report) -> None:
    """Geometry of a record whose structure :func:`validate_record` accepted: visible joints counted, and
    visible joints outside the image reported."""
    joints, visible = record_keypoints(record)
    report.n_visible_joints += int(visible.sum())
    if size is None:
        return
    w, h = size
    for i, (pts, shown) in enumerate(zip(joints, visible)):
        outside = [j for j, (x, y) in enumerate(pts) if shown[j] and (x < 0 or y < 0 or x > w or y > h)]
        if outside:
            report.add(WARNING, OUT_OF_IMAGE, where, rid, f"people[{i}] joints {outside} lie outside the {w}x{h} image")


def _check_captions(record: Record, where: str, rid: str, report: Report, require: bool) -> None:
    captions = record.get("captions")
    if not captions:
        report.add(ERROR if require else WARNING, NO_CAPTION, where, rid, "the record has no caption")
        return
    empty = [k for k, c in enumerate(captions) if not c.strip()]
    if empty:
        report.add(ERROR, EMPTY_CAPTION, where, rid, f"captions {empty} are empty")


def _check_heatmap(record: Record, root: Path, check_files: bool, where: str, rid: str, report: Report) -> None:
    if not record.get("heatmap"):
        return
    path = resolve_image({"image": record["heatmap"]}, root)
    if not path.is_file():
        report.add(ERROR, MISSING_HEATMAP, where, rid, f"heatmap file {path} does not exist")
    elif check_files:
        _, problem = check_image(path)
        if problem:
            report.add(ERROR, BAD_HEATMAP, where, rid, f"{path}: {problem}")


def validate_dataset(path_or_records: str | os.PathLike | Sequence[Record], root: str | os.PathLike | None = None,
                     check_images: bool = True, require_captions: bool = False, workers: int = 4,
                     max_examples: int = 5) -> Report:
    """Check every record; see the module docstring for inputs. ``root`` defaults to the file's folder."""
    report = Report(max_examples=max_examples)
    items: list[tuple[str, Record | Exception, Path]] = []
    if isinstance(path_or_records, (str, os.PathLike)):
        for src in _sources(Path(path_or_records)):
            report.sources.append(str(src))
            base = Path(root) if root is not None else src.parent
            unknown: set[str] = set()
            items += [(where, rec, base) for where, rec in iter_dataset_file(src, unknown)]
            for column in sorted(unknown):
                report.add(WARNING, UNKNOWN_COLUMN, str(src), "-", f"column {column!r} is not part of the custom "
                           f"schema and is only kept under 'meta'.{did_you_mean(column, CUSTOM_COLUMNS)}")
    else:
        base = Path(root) if root is not None else Path.cwd()
        items = []
        for i, rec in enumerate(path_or_records):
            try:
                items.append((f"records[{i}]", validate_record(rec, f"records[{i}]"), base))
            except RecordError as e:
                e.row = rec
                items.append((f"records[{i}]", e, base))
    report.n_records = len(items)
    if not items:
        report.add(ERROR, EMPTY, ", ".join(report.sources) or "records", "-", "the dataset has no records")

    sizes = _image_sizes(items, check_images, workers, report)
    seen: dict[str, str] = {}
    captioned = 0
    for (where, rec, base), size in zip(items, sizes):
        if isinstance(rec, Exception):  # the loaders' own schema check failed: training would stop here
            message = str(rec).removeprefix(f"{where}: ")
            report.add(ERROR, JOINT_COUNT if "joints" in message else INVALID, where, "?", message)
            continue
        report.splits[record_split(rec) or "unsplit"] += 1
        captioned += bool([c for c in rec.get("captions") or [] if c.strip()])
        rid = record_id(rec)
        if rid in seen:
            report.add(WARNING, DUPLICATE_ID, where, rid, f"same id as {seen[rid]}")
        seen.setdefault(rid, where)
        image = resolve_image(rec, base)
        if isinstance(size, str):
            problem = MISSING_IMAGE if size == "missing" else BAD_IMAGE
            report.add(ERROR, problem, where, rid, f"{image}" + ("" if size == "missing" else f": {size}"))
            size = None
        if size is not None and rec.get("width") and rec.get("height") and (rec["width"], rec["height"]) != size:
            report.add(WARNING, SIZE_MISMATCH, where, rid,
                       f"record says {rec['width']}x{rec['height']}, image is {size[0]}x{size[1]}")
        if size is None and rec.get("width") and rec.get("height"):
            size = (rec["width"], rec["height"])
        _check_people(rec, size, where, rid, report)
        _check_captions(rec, where, rid, report, require_captions)
        _check_heatmap(rec, base, check_images, where, rid, report)
    valid = sum(not isinstance(rec, Exception) for _, rec, _ in items)
    if valid and not captioned:
        report.add(ERROR, NO_CAPTION_AT_ALL, ", ".join(report.sources) or "records", "-",
                   "no record has a caption: training needs them (focusclip describe writes pose descriptions)")
    logger.info("validated %d records: %d errors, %d warnings", report.n_records, report.n_errors,
                report.n_warnings)
    return report


def _image_sizes(items: list[tuple[str, Record | Exception, Path]], check_images: bool, workers: int,
                 report: Report) -> list[tuple[int, int] | str | None]:
    """Per item: (w, h) of a good image, a reason string for a bad one, None when not checked."""
    def one(item: tuple[str, Record | Exception, Path]) -> tuple[int, int] | str | None:
        _, rec, base = item
        rec = _row(rec)
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or not rec["image"]:
            return None
        path = resolve_image(rec, base)
        if not check_images:
            return None if path.is_file() else "missing"
        size, problem = check_image(path)
        return problem if problem else size

    if check_images:
        report.n_images_checked = sum(isinstance(_row(rec), dict) and isinstance(_row(rec).get("image"), str)
                                      for _, rec, _ in items)
    if workers <= 1 or len(items) < 2:
        return [one(it) for it in track(items, desc="checking images", unit="img")]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(track(pool.map(one, items), desc="checking images", total=len(items), unit="img"))


def _row(item: Record | Exception) -> object:
    """The row as parsed: the record, or the offending row a :class:`RecordError` carries."""
    return getattr(item, "row", None) if isinstance(item, Exception) else item

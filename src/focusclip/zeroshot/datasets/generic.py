"""Datasets without a public release format: the synthetic world's held-out set and plain image folders."""

from __future__ import annotations

import logging
import os

from focusclip.data.records import RecordError, iter_records, record_id, resolve_image
from focusclip.io import read_json
from focusclip.zeroshot.datasets.common import (
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    find_first,
    register_dataset,
    require_root,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@register_dataset('synthetic')
def load_synthetic(root: str | os.PathLike, split: str = "eval", attribute: str = "activity") -> LoadedSet:
    """The synthetic world's held-out set: ``<root>/<split>.jsonl`` records whose ``labels[attribute]``
    is the label, with the class lists of ``<root>/classes.json`` (``{"activity": [...], "age": [...],
    "expression": [...]}``). For ``activity``, a record's ``activity.name`` is used when ``labels`` lacks it.
    """
    root = require_root(root, "synthetic")
    jsonl = find_first(root, [f"{split}.jsonl"], "synthetic", "held-out records")
    classes_path = find_first(root, ["classes.json"], "synthetic", "class lists")
    try:
        class_lists = read_json(classes_path, "class lists")
    except ValueError as e:
        raise DatasetError(str(e)) from None
    classes = class_lists.get(attribute) if isinstance(class_lists, dict) else None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DatasetError(f"{classes_path}: expected {{{attribute!r}: [class names...], ...}}")
    out = LoadedSet(samples=[], classes=list(classes))
    for lineno, rec in enumerate(iter_records(jsonl), 1):
        label = (rec.get("labels") or {}).get(attribute)
        if label is None and attribute == "activity" and isinstance(rec.get("activity"), dict):
            label = rec["activity"].get("name")
        if label is None:
            out.skip(f"no {attribute} label")
            continue
        if label not in classes:
            raise RecordError(f"{jsonl}:{lineno}: {attribute} {label!r} is not in {classes_path} ({classes})")
        out.samples.append(Sample(source=resolve_image(rec, root), labels=(label,), id=record_id(rec),
                                  subject=_person_boxes(rec)))
    return out


def _person_boxes(record: dict) -> tuple[tuple[float, float, float, float], ...]:
    """The boxes of a record's annotated people (the labelled subjects; distractors are not annotated)."""
    boxes = []
    for person in record.get("people") or []:
        box = person.get("box") if isinstance(person, dict) else None
        if isinstance(box, list | tuple) and len(box) == 4 and box[2] > box[0] and box[3] > box[1]:
            boxes.append(tuple(float(v) for v in box))
    return tuple(boxes)


@register_dataset('imagefolder')
def load_imagefolder(root: str | os.PathLike, split: str = "", **_: object) -> LoadedSet:
    """``<root>/[<split>/]<class>/*.jpg``: class keys are the folder names (sorted)."""
    root = require_root(root, "imagefolder")
    folder = root / split if split else root
    if not folder.is_dir():
        raise DatasetLayoutError(f"imagefolder: {folder} not found (expected {folder}/<class>/<image>)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    out = LoadedSet(samples=[], classes=classes)
    for c in classes:
        for p in sorted((folder / c).iterdir()):
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                out.samples.append(Sample(source=p, labels=(c,), id=f"{c}/{p.name}"))
    if not out.samples:
        raise DatasetLayoutError(f"imagefolder: no images in {folder}/<class>/ (extensions {IMAGE_EXTENSIONS})")
    return out

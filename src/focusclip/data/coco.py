"""COCO person keypoints and captions (as distributed) -> records with MPII joints and five captions each.

The layout of the 2017 release (``annotations_trainval2017.zip`` and the image zips)::

    coco/
      annotations/person_keypoints_train2017.json   # images, person annotations (17 keypoints), categories
      annotations/person_keypoints_val2017.json
      annotations/captions_train2017.json           # about five captions per image
      annotations/captions_val2017.json
      train2017/000000000009.jpg ...
      val2017/000000000139.jpg ...

Each person annotation gives ``keypoints`` as 17 ``(x, y, v)`` triples in COCO's order
(:data:`focusclip.skeleton.COCO_KEYPOINTS`), with ``v`` = 0 not labelled, 1 labelled but occluded,
2 visible. They become MPII's 16 joints through :func:`focusclip.skeleton.coco_to_mpii` (pelvis, thorax,
upper neck and head top derived). Visibility as in ``data mpii``: ``"annotated"`` (default) counts every
labelled keypoint as visible and lists the occluded ones in the person's ``occluded``; ``"strict"``
hides the occluded ones. Crowd regions (``iscrowd`` 1, no keypoints) and people below ``min_area``
pixels (the annotation's ``area``) or with fewer than ``min_keypoints`` labelled keypoints are skipped
and counted; an image left without a person is skipped (and counted) unless ``include_empty``. A person
or caption annotation whose ``image_id`` is not among the file's ``images`` is skipped and counted too
(with the ids as examples), never dropped silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.data.counts import Counts
from focusclip.data.records import Record, relative_image_path, write_records
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.io import read_json
from focusclip.skeleton import COCO_KEYPOINTS, NUM_COCO_KEYPOINTS, coco_to_mpii

logger = logging.getLogger(__name__)

COCO_SPLITS = ("train", "val")
VISIBILITY_MODES = ("annotated", "strict")
DEFAULT_MIN_AREA = 32 * 32  #: COCO's own "small object" bound, in pixels of segmentation area
DEFAULT_MIN_KEYPOINTS = 1   #: mmpose trains on people with at least one labelled keypoint

SKIP_CROWD = "crowd region (iscrowd)"
SKIP_SMALL = "person below min_area"
SKIP_FEW = "person below min_keypoints"
SKIP_NO_PERSON = "image without a kept person"
SKIP_NO_IMAGE = "person whose image_id is not among the images"
SKIP_CAPTION_NO_IMAGE = "caption whose image_id is not among the images"


class CocoError(InputError):
    """A COCO annotation file that does not hold what the release holds; names the file and entry."""


def coco_paths(root: str | os.PathLike, split: str, year: str = "2017") -> dict[str, Path]:
    """The keypoints JSON, the captions JSON and the images folder of ``split`` under ``root``."""
    if split not in COCO_SPLITS:
        raise UsageError(f"COCO split must be one of {COCO_SPLITS}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise MissingInput(f"COCO folder not found: {root}")
    ann = root / "annotations"
    return {"keypoints": ann / f"person_keypoints_{split}{year}.json",
            "captions": ann / f"captions_{split}{year}.json", "images": root / f"{split}{year}"}


def _keypoint_names(path: Path, data: Mapping[str, Any]) -> None:
    """The person category must list COCO's 17 keypoints in the usual order (left_eye -> l_eye)."""
    for cat in data.get("categories") or []:
        if isinstance(cat, Mapping) and cat.get("name") == "person" and cat.get("keypoints"):
            names = tuple(str(k).replace("left_", "l_").replace("right_", "r_") for k in cat["keypoints"])
            if names != COCO_KEYPOINTS:
                raise CocoError(f"{path}: the person category lists keypoints {list(cat['keypoints'])}; expected "
                                f"COCO's 17 in order ({', '.join(COCO_KEYPOINTS)})")
            return


def _load(path: Path, what: str, need: Sequence[str]) -> Mapping[str, Any]:
    data = read_json(path, what)
    if not isinstance(data, Mapping) or any(not isinstance(data.get(k), list) for k in need):
        raise CocoError(f"{path}: expected a COCO annotation file, a JSON object with lists {list(need)}")
    return data


def coco_person(ann: Mapping[str, Any], where: str, visibility: str = "annotated") -> dict[str, Any]:
    """One COCO person annotation -> a record person (MPII joints, visibility, occluded, box)."""
    kp = ann.get("keypoints")
    try:
        tri = np.asarray(kp, dtype=np.float64).reshape(NUM_COCO_KEYPOINTS, 3)
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (TypeError, ValueError, KeyError):
        raise CocoError(f"{where}: expected 'keypoints' as {NUM_COCO_KEYPOINTS} x (x, y, v) numbers and 'bbox' "
                        f"as [x, y, w, h]; got keypoints {str(kp)[:80]} and bbox {ann.get('bbox')}") from None
    pts, v = tri[:, :2], tri[:, 2]
    labelled = v > 0
    pts = np.where(labelled[:, None], pts, -1.0)  # COCO stores unlabelled points as (0, 0, 0)
    joints, annotated = coco_to_mpii(pts, labelled)
    _, seen = coco_to_mpii(pts, v >= 2)
    shown = annotated if visibility == "annotated" else seen
    joints[shown <= 0] = -1.0
    box = [x, y, x + w, y + h]
    return {"joints": np.round(joints, 2).tolist(), "visible": [int(f > 0) for f in shown],
            "occluded": [int(a > 0 and s <= 0) for a, s in zip(annotated, seen)],
            "box": [round(c, 2) for c in box], "center": [round(x + w / 2, 2), round(y + h / 2, 2)],
            "scale": round(h / 200.0, 4), "coco_id": ann.get("id"), "num_keypoints": int(labelled.sum())}


def convert_coco(root: str | os.PathLike, split: str, relative_to: str | os.PathLike | None = None,
                 min_area: float = DEFAULT_MIN_AREA, min_keypoints: int = DEFAULT_MIN_KEYPOINTS,
                 visibility: str = "annotated", captions: bool = True, include_empty: bool = False,
                 year: str = "2017") -> tuple[list[Record], Counts]:
    """Records (one per image, sorted by image id) and counts for one COCO split (module docstring).

    Image paths are written relative to ``relative_to`` (the output folder) when given. ``captions=False``
    ignores ``captions_<split>.json`` (which is otherwise required).
    """
    if visibility not in VISIBILITY_MODES:
        raise UsageError(f"visibility must be one of {VISIBILITY_MODES}, got {visibility!r}")
    paths = coco_paths(root, split, year)
    kp_path = paths["keypoints"]
    data = _load(kp_path, "COCO person keypoints file", ("images", "annotations"))
    _keypoint_names(kp_path, data)
    texts = _captions(paths["captions"]) if captions else {}
    counts = Counts()
    people: dict[Any, list[dict[str, Any]]] = {}
    for k, ann in enumerate(data["annotations"]):
        where = f"{kp_path}: annotation {k} (id {ann.get('id') if isinstance(ann, Mapping) else '?'})"
        if not isinstance(ann, Mapping) or "image_id" not in ann:
            raise CocoError(f"{where}: expected an object with 'image_id'")
        if ann.get("iscrowd"):
            counts.skip(SKIP_CROWD)
            continue
        person = coco_person(ann, where, visibility)
        if float(ann.get("area") or 0.0) < min_area:
            counts.skip(SKIP_SMALL)
        elif person["num_keypoints"] < min_keypoints:
            counts.skip(SKIP_FEW)
        else:
            people.setdefault(ann["image_id"], []).append(person)
    image_ids = {im.get("id") for im in data["images"] if isinstance(im, Mapping)}
    for what, reason, by_image in (("people", SKIP_NO_IMAGE, people), ("captions", SKIP_CAPTION_NO_IMAGE, texts)):
        for image_id in sorted((i for i in by_image if i not in image_ids), key=str):
            counts.skip(reason, f"image_id {image_id}", n=len(by_image[image_id]))
        if counts.skipped[reason]:
            logger.warning("%s: %d %s whose image_id is not among the file's images (skipped)", kp_path,
                           counts.skipped[reason], what)
    records = []
    for image in sorted(data["images"], key=lambda im: im.get("id", 0) if isinstance(im, Mapping) else 0):
        record = _record(image, kp_path, paths["images"], relative_to, split, people, texts, include_empty, counts)
        if record is not None:
            records.append(record)
    counts.notes["images in the annotation file"] = len(data["images"])
    counts.notes["captions"] = sum(len(r.get("captions") or []) for r in records)
    logger.info("COCO %s: %d records, %d people", split, len(records), counts.done[f"{split} people"])
    return records, counts


def _record(image: Any, kp_path: Path, images_dir: Path, relative_to: Any, split: str,
            people: Mapping[Any, list[dict[str, Any]]], texts: Mapping[Any, list[str]], include_empty: bool,
            counts: Counts) -> Record | None:
    if not isinstance(image, Mapping) or not image.get("file_name") or "id" not in image:
        raise CocoError(f"{kp_path}: image entry {str(image)[:80]} has no 'id' and 'file_name'")
    persons = people.get(image["id"], [])
    if not persons and not include_empty:
        counts.skip(SKIP_NO_PERSON)
        return None
    record: Record = {"image": relative_image_path(images_dir / image["file_name"], relative_to),
                      "id": Path(image["file_name"]).stem, "split": split, "people": persons,
                      "captions": texts.get(image["id"], []),
                      "meta": {"source": "coco", "coco_image_id": image["id"]}}
    if image.get("width") and image.get("height"):
        record["width"], record["height"] = int(image["width"]), int(image["height"])
    counts.done[f"{split} records"] += 1
    counts.done[f"{split} people"] += len(persons)
    return record


def _captions(path: Path) -> dict[Any, list[str]]:
    """image id -> its captions (stripped, in annotation order) from ``captions_<split>.json``."""
    data = _load(path, "COCO captions file", ("annotations",))
    out: dict[Any, list[str]] = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, Mapping) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            raise CocoError(f"{path}: annotation {k} must be an object with 'image_id' and a 'caption' string")
        text = " ".join(ann["caption"].split())
        if text:
            out.setdefault(ann["image_id"], []).append(text)
    return out


def write_coco(root: str | os.PathLike, out_dir: str | os.PathLike, splits: Sequence[str] = COCO_SPLITS,
               **options: Any) -> tuple[dict[str, Path], Counts]:
    """Convert every split in ``splits`` to ``out_dir/<split>.jsonl`` (atomically); merged counts."""
    out_dir = Path(out_dir)
    total = Counts()
    written = {}
    for split in splits:
        records, counts = convert_coco(root, split, relative_to=out_dir, **options)
        written[split] = out_dir / f"{split}.jsonl"
        write_records(written[split], records)
        total.done.update(counts.done)
        total.skipped.update(counts.skipped)
        for reason, examples in counts.examples.items():
            total.examples.setdefault(reason, []).extend(examples[:total.max_examples - len(total.examples.get(reason, []))])
        total.notes.update({f"{split}: {k}": v for k, v in counts.notes.items()})
    return written, total

"""CUB-200-2011 (birds), read from the files of the release."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from focusclip.errors import InputError
from focusclip.zeroshot.datasets.common import (
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    require_root,
)

logger = logging.getLogger(__name__)

CUB_FILES = ("images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt")


def clean_cub_class(name: str) -> str:
    """``001.Black_footed_Albatross`` -> ``Black footed Albatross``."""
    return re.sub(r"^\d+\.", "", name).replace("_", " ").strip()


def _id_table(path: Path) -> dict[str, list[str]]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise DatasetError(f"{path}:{lineno}: expected '<id> <value...>', got {line!r}")
        out[parts[0]] = parts[1:]
    return out


def load_cub(root: str | os.PathLike, split: str = "test", crop: bool = False) -> LoadedSet:
    """CUB-200-2011: ``images.txt``, ``classes.txt``, ``image_class_labels.txt``, ``train_test_split.txt``
    (1 = train, 0 = test) and ``images/<class folder>/<file>.jpg``; ``crop=True`` uses ``bounding_boxes.txt``
    (x y w h). Class keys are the cleaned class names in ``classes.txt`` order. The root may be the
    release's ``CUB_200_2011/`` folder or the folder above it.
    """
    root = require_root(root, "cub")
    if not (root / "images.txt").exists() and (root / "CUB_200_2011" / "images.txt").exists():
        root = root / "CUB_200_2011"
    missing = [f for f in CUB_FILES if not (root / f).exists()]
    if missing:
        raise DatasetLayoutError(f"cub: {', '.join(str(root / f) for f in missing)} not found "
                                 f"(expected the CUB_200_2011 release files {list(CUB_FILES)})")
    images = _id_table(root / "images.txt")
    class_rows = _id_table(root / "classes.txt")
    labels = _id_table(root / "image_class_labels.txt")
    is_train = _id_table(root / "train_test_split.txt")
    boxes = _id_table(root / "bounding_boxes.txt") if crop else {}
    if crop and not boxes:
        raise DatasetLayoutError(f"cub: crop=True needs {root / 'bounding_boxes.txt'}")
    class_names = {cid: clean_cub_class(v[0]) for cid, v in class_rows.items()}
    classes = [class_names[c] for c in sorted(class_rows, key=int)]
    want = {"test": "0", "train": "1"}.get(split)
    if want is None:
        raise InputError(f"cub: split must be 'train' or 'test', got {split!r}")
    out = LoadedSet(samples=[], classes=classes)
    for img_id in sorted(images, key=int):
        if img_id not in is_train or img_id not in labels:
            raise DatasetError(f"cub: image id {img_id} missing from train_test_split.txt or image_class_labels.txt")
        if is_train[img_id][0] != want:
            continue
        cid = labels[img_id][0]
        if cid not in class_names:
            raise DatasetError(f"{root / 'image_class_labels.txt'}: image {img_id} has class {cid}, "
                               "which is not in classes.txt")
        box = None
        if crop:
            x, y, w, h = (float(v) for v in boxes[img_id][:4])
            box = (x, y, x + w, y + h)
        rel = images[img_id][0]
        out.samples.append(Sample(source=root / "images" / rel, labels=(class_names[cid],), box=box, id=rel))
    return out

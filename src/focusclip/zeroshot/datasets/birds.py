"""CUB-200-2011 (birds), read from the files of the release."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from focusclip.data.cub import clean_cub_class, read_class_list, read_id_table
from focusclip.errors import InputError
from focusclip.zeroshot.datasets.common import (
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    register_dataset,
    require_root,
)

logger = logging.getLogger(__name__)

CUB_FILES = ("images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt")


def _id_table(path: Path) -> dict[str, list[str]]:
    return read_id_table(path, error=DatasetError)


@register_dataset('cub')
def load_cub(root: str | os.PathLike, split: str = "test", crop: bool = False,
             classes_file: str | None = None) -> LoadedSet:
    """CUB-200-2011: ``images.txt``, ``classes.txt``, ``image_class_labels.txt``, ``train_test_split.txt``
    (1 = train, 0 = test; ``split="all"`` takes every image) and ``images/<class folder>/<file>.jpg``;
    ``crop=True`` uses ``bounding_boxes.txt`` (x y w h). Class keys are the cleaned class names in
    ``classes.txt`` order. ``classes_file`` (one class folder name per line, relative to the CUB folder or
    absolute; e.g. Xian et al.'s ``testclasses.txt``) keeps only those classes: the unseen classes of a
    zero-shot split. The root may be the release's ``CUB_200_2011/`` folder or the folder above it.
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
    want = {"test": "0", "train": "1", "all": None}.get(split, "?")
    if want == "?":
        raise InputError(f"cub: split must be 'train', 'test' or 'all', got {split!r}")
    if classes_file is not None:
        by_folder = {v[0]: cid for cid, v in class_rows.items()}
        try:
            kept = {by_folder[n] for n in read_class_list(root / classes_file, by_folder)}
        except (FileNotFoundError, ValueError) as e:
            raise DatasetLayoutError(f"cub: {e}") from None
        class_names = {cid: name for cid, name in class_names.items() if cid in kept}
        classes = [class_names[c] for c in sorted(class_names, key=int)]
    out = LoadedSet(samples=[], classes=classes)
    for img_id in sorted(images, key=int):
        if img_id not in is_train or img_id not in labels:
            raise DatasetError(f"cub: image id {img_id} missing from train_test_split.txt or image_class_labels.txt")
        if want is not None and is_train[img_id][0] != want:
            continue
        cid = labels[img_id][0]
        if classes_file is not None and cid not in class_names and cid in class_rows:
            continue
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

"""CUB-200-2011 (as distributed) -> bird training records: the box, the 15 parts and texts.

The release (``CUB_200_2011.tgz``)::

    CUB_200_2011/
      images.txt  classes.txt  image_class_labels.txt  train_test_split.txt  bounding_boxes.txt
      parts/parts.txt            # <part id> <part name>, ids 1..15 (focusclip.skeleton.CUB_PARTS)
      parts/part_locs.txt        # <image id> <part id> <x> <y> <visible>
      images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...

and, optionally, the captions of Reed et al. 2016 ("cvpr2016_cub")::

    text_c10/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.txt     # ten lines per image

Each record keeps the bird box (``boxes``, xyxy from ``bounding_boxes.txt``'s x y w h), the 15 parts
as ``points`` with ``points_visible`` (an invisible part is ``[-1, -1]`` with 0) and ``points_layout:
"cub"`` (so the ``points`` heatmap draws one Gaussian over the visible parts and ``parts`` one per part
group, :data:`focusclip.skeleton.CUB_PART_GROUPS`), ``labels.species`` (the cleaned class name) and
``class_id``. Texts: the ten ``text_c10`` captions when that folder is given, else one description by
the ``describe`` function the caller passes (``focusclip data cub`` passes the rule-based bird describer,
:func:`focusclip.describe.birds.describe_bird`; this module imports no describer).

Splits: ``"official"`` (``train_test_split.txt``: train / test) or ``"zeroshot"``: class-disjoint, seen
classes for training (and a seeded validation share of their images), every image of the unseen classes
for testing. The zero-shot class lists are files the user gives, e.g. Xian et al.'s proposed split
(``trainvalclasses.txt`` / ``testclasses.txt``, 150 / 50 classes, one class folder name per line).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from focusclip.data.counts import Counts
from focusclip.data.records import Record, relative_image_path, write_records
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.images import image_size
from focusclip.progress import track
from focusclip.skeleton import CUB_PARTS

logger = logging.getLogger(__name__)

CUB_FILES = ("images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt",
             "parts/parts.txt", "parts/part_locs.txt")
SPLIT_MODES = ("official", "zeroshot")
SEEN_CLASSES_FILE, UNSEEN_CLASSES_FILE = "trainvalclasses.txt", "testclasses.txt"  #: Xian et al.'s file names


class CubError(InputError):
    """A CUB file that does not hold what the release holds; names the file and line."""


def clean_cub_class(name: str) -> str:
    """``001.Black_footed_Albatross`` -> ``Black footed Albatross``."""
    return re.sub(r"^\d+\.", "", name).replace("_", " ").strip()


def read_id_table(path: Path, min_fields: int = 1, error: type[ValueError] = CubError) -> dict[str, list[str]]:
    """``<id> <value...>`` lines -> ``{id: [values]}``; an error names the file and line."""
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 1 + min_fields:
            raise error(f"{path}:{lineno}: expected '<id>' and {min_fields} value(s), got {line!r}")
        out[parts[0]] = parts[1:]
    return out


def find_cub_root(root: str | os.PathLike) -> Path:
    """The ``CUB_200_2011`` folder (``root`` itself or its child of that name) holding the release files."""
    root = Path(root)
    if not (root / "images.txt").exists() and (root / "CUB_200_2011" / "images.txt").exists():
        root = root / "CUB_200_2011"
    missing = [f for f in CUB_FILES if not (root / f).exists()]
    if missing:
        raise MissingInput(f"CUB: {', '.join(str(root / f) for f in missing)} not found (expected the "
                                "CUB_200_2011 release: images.txt, classes.txt, ..., parts/part_locs.txt)")
    return root


def read_class_list(path: str | os.PathLike, known: Mapping[str, str]) -> list[str]:
    """Class folder names (``002.Laysan_Albatross``), one per line, checked against ``classes.txt``."""
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"class list not found: {path} (one CUB class folder name per line, e.g. "
                                "Xian et al.'s trainvalclasses.txt / testclasses.txt)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CubError(f"{path}: {len(unknown)} line(s) are not classes of classes.txt, e.g. {unknown[:3]}")
    return names


def _parts(root: Path, images: Mapping[str, Any]) -> dict[str, tuple[list[list[float]], list[int]]]:
    """image id -> (15 points, 15 visibility flags) from ``parts/part_locs.txt``."""
    part_names = read_id_table(root / "parts" / "parts.txt")
    names = tuple(" ".join(part_names[str(i + 1)]) if str(i + 1) in part_names else "?" for i in range(len(CUB_PARTS)))
    if names != CUB_PARTS:
        raise CubError(f"{root / 'parts' / 'parts.txt'}: parts {names}; expected CUB's 15 in order {CUB_PARTS}")
    out = {img: ([[-1.0, -1.0] for _ in CUB_PARTS], [0] * len(CUB_PARTS)) for img in images}
    path = root / "parts" / "part_locs.txt"
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        try:
            img, part, x, y, vis = f[0], int(f[1]), float(f[2]), float(f[3]), int(float(f[4]))
        except (ValueError, IndexError):
            raise CubError(f"{path}:{lineno}: expected '<image id> <part id> <x> <y> <visible>', got {line!r}") from None
        if img not in out or not 1 <= part <= len(CUB_PARTS):
            raise CubError(f"{path}:{lineno}: image {img} or part {part} is not in images.txt / parts.txt")
        if vis > 0:
            out[img][0][part - 1] = [round(x, 2), round(y, 2)]
            out[img][1][part - 1] = 1
    return out


def _reed_captions(text_dir: Path | None, rel: str, counts: Counts, described: bool = True) -> list[str]:
    if text_dir is None:
        return []
    path = text_dir / Path(rel).with_suffix(".txt")
    if not path.is_file():
        counts.skip(f"image without a text_c10 file ({'rule description used' if described else 'no caption'})",
                    rel)
        return []
    return [" ".join(t.split()) for t in path.read_text(encoding="utf-8", errors="replace").splitlines() if t.strip()]


def convert_cub(root: str | os.PathLike, split: str = "official", text_c10: str | os.PathLike | None = None,
                seen_classes: str | os.PathLike | None = None, unseen_classes: str | os.PathLike | None = None,
                val_fraction: float = 0.1, seed: int = 0, relative_to: str | os.PathLike | None = None,
                read_sizes: bool = True, describe: Callable[[Record], str] | None = None,
                described_as: str = "rules-birds") -> tuple[dict[str, list[Record]], Counts]:
    """Records grouped by split (``train`` / ``test`` for ``official``; ``train`` / ``val`` / ``unseen`` for
    ``zeroshot``, the unseen records with ``split: "test"``) and counts (module docstring). ``seen_classes`` /
    ``unseen_classes`` default to Xian et al.'s file names in the CUB folder.

    ``describe(record) -> str`` writes the caption of an image without ``text_c10`` captions (its
    ``caption_sources`` say ``described_as``), e.g. ``functools.partial(describe_bird, seed=0)``; without
    it such records have no captions.
    """
    from focusclip.data.mpii import random_split

    if split not in SPLIT_MODES:
        raise UsageError(f"CUB split must be one of {SPLIT_MODES}, got {split!r}")
    root = find_cub_root(root)
    text_dir = Path(text_c10) if text_c10 is not None else None
    if text_dir is not None and not text_dir.is_dir():
        raise MissingInput(f"text_c10 folder not found: {text_dir} (expected text_c10/<class>/<image>.txt)")
    images = read_id_table(root / "images.txt")
    classes = {cid: v[0] for cid, v in read_id_table(root / "classes.txt").items()}
    labels = read_id_table(root / "image_class_labels.txt")
    is_train = read_id_table(root / "train_test_split.txt")
    boxes = read_id_table(root / "bounding_boxes.txt", min_fields=4)
    parts = _parts(root, images)
    split_of_class = _class_splits(root, split, classes, seen_classes, unseen_classes)
    counts = Counts()
    by_split: dict[str, list[Record]] = {}
    for img in track(sorted(images, key=int), desc="CUB images", unit="img"):
        rel = images[img][0]
        cid = (labels.get(img) or [None])[0]
        if cid not in classes or img not in is_train or img not in boxes:
            raise CubError(f"{root}: image {img} ({rel}) is missing from image_class_labels.txt, "
                           "train_test_split.txt or bounding_boxes.txt, or its class is not in classes.txt")
        target = ("train" if is_train[img][0] == "1" else "test") if split == "official" else split_of_class.get(cid)
        if target is None:
            counts.skip("class in neither zero-shot class list")
            continue
        x, y, w, h = (float(v) for v in boxes[img][:4])
        points, visible = parts[img]
        record: Record = {"image": relative_image_path(root / "images" / rel, relative_to), "id": Path(rel).stem,
                          "split": "test" if target == "unseen" else target, "boxes": [[x, y, x + w, y + h]], "points": points,
                          "points_visible": visible, "points_layout": "cub",
                          "labels": {"species": clean_cub_class(classes[cid])}, "class_id": int(cid),
                          "meta": {"source": "cub", "cub_image_id": int(img), "class_folder": classes[cid]}}
        if read_sizes:
            try:
                size = image_size(root / "images" / rel)
            except (InputError, MissingInput):
                size = None
            if size is None:
                counts.notes["image file missing or unreadable (no width/height)"] += 1
            else:
                record["width"], record["height"] = size
        texts = _reed_captions(text_dir, rel, counts, described=describe is not None)
        if texts:
            record["captions"], record["caption_sources"] = texts, ["reed2016"] * len(texts)
        elif describe is not None:
            record["captions"], record["caption_sources"] = [describe(record)], [described_as]
        else:
            record["captions"] = []
        by_split.setdefault(target, []).append(record)
    if split == "zeroshot" and val_fraction > 0:
        seen = by_split.pop("train", [])
        chosen = random_split((r["id"] for r in seen), val_fraction, seed)
        for r in seen:
            r["split"] = chosen[r["id"]]
            by_split.setdefault(r["split"], []).append(r)
    for name, recs in by_split.items():
        counts.done[f"{name} records"] = len(recs)
        counts.done[f"{name} classes"] = len({r["class_id"] for r in recs})
    return by_split, counts


def _class_splits(root: Path, split: str, classes: Mapping[str, str], seen: Any, unseen: Any) -> dict[str, str]:
    """class id -> "train" / "unseen" for the zero-shot split (empty for the official one)."""
    if split != "zeroshot":
        return {}
    by_name = {name: cid for cid, name in classes.items()}
    seen_names = read_class_list(seen if seen is not None else root / SEEN_CLASSES_FILE, by_name)
    unseen_names = read_class_list(unseen if unseen is not None else root / UNSEEN_CLASSES_FILE, by_name)
    both = sorted(set(seen_names) & set(unseen_names))
    if both:
        raise CubError(f"the seen and unseen class lists share {len(both)} classes (e.g. {both[:3]}); a zero-shot "
                       "split must be class-disjoint")
    out = {by_name[n]: "train" for n in seen_names}
    out.update({by_name[n]: "unseen" for n in unseen_names})
    logger.info("CUB zero-shot split: %d seen, %d unseen classes", len(seen_names), len(unseen_names))
    return out


def write_cub(by_split: Mapping[str, list[Record]], out_dir: str | os.PathLike) -> dict[str, Path]:
    """``out_dir/<split>.jsonl`` for every split (atomically) and ``out_dir/classes.json``."""
    from focusclip.io import atomic_write_json

    out_dir = Path(out_dir)
    written = {}
    for name, recs in sorted(by_split.items()):
        written[name] = out_dir / f"{name}.jsonl"
        write_records(written[name], recs)
    atomic_write_json(out_dir / "classes.json", {
        name: sorted({r["labels"]["species"] for r in recs}) for name, recs in sorted(by_split.items())})
    return written

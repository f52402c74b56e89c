"""Face and person attribute benchmarks: UTKFace, FairFace, FER2013, FER+ and LAGENDA."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from focusclip.errors import InputError
from focusclip.zeroshot.datasets.common import (
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    find_first,
    parse_box,
    read_csv,
    register_dataset,
    require_root,
)

logger = logging.getLogger(__name__)

# FER2013 emotion ids (Kaggle fer2013.csv) -> class keys; the image-folder version uses the same names.
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# FER+ vote columns of fer2013new.csv -> class keys (None: no emotion; a row it wins is dropped).
FERPLUS_COLUMNS = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                   "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
                   "unknown": None, "NF": None}
FER_SIZE = 48


# --------------------------------------------------------------------------------------- age bins
def age_bin(age: float, bins: list[list]) -> str:
    """The key of the first ``[key, low, high]`` bin with ``low <= age < high`` (``high`` null = open)."""
    for key, low, high in bins:
        if age >= low and (high is None or age < high):
            return key
    raise DatasetError(f"age {age} falls in none of the bins {bins}")


# UTKFace bins of the paper: baby 0-2, child 3-9, teenager 10-19, young adult 20-29, adult 30+.
UTK_BINS = [["baby", 0, 3], ["child", 3, 10], ["teenager", 10, 20], ["young adult", 20, 30], ["adult", 30, None]]
# LAGENDA / EMOTIC three groups: <=12 kid, 13-19 teenager, >=20 adult (ages may be fractional).
THREE_BINS = [["kid", 0, 13], ["teenager", 13, 20], ["adult", 20, None]]


# ---------------------------------------------------------------------------------------- UTKFace
UTK_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg(\.chip\.jpg)?$")


@register_dataset('utkface')
def load_utkface(root: str | os.PathLike, split: str = "all", bins: list[list] | None = None) -> LoadedSet:
    """UTKFace: every ``<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]`` under ``root`` (any depth).

    Ages are binned with ``bins`` (default: the paper's five groups). Names that do not match the
    pattern (a few in the release miss a field) are skipped and counted. There is no official split.
    """
    root = require_root(root, "utkface")
    bins = bins or UTK_BINS
    out = LoadedSet(samples=[])
    files = sorted(p for p in root.rglob("*.jpg") if p.is_file())
    for p in files:
        m = UTK_NAME.match(p.name)
        if not m:
            out.skip("malformed name")
            continue
        out.samples.append(Sample(source=p, labels=(age_bin(int(m.group(1)), bins),),
                                  id=str(p.relative_to(root))))
    if not out.samples:
        raise DatasetLayoutError(f"utkface: no <age>_<gender>_<race>_<datetime>.jpg[.chip.jpg] files under "
                                 f"{root} ({len(files)} .jpg files with other names)")
    if out.skipped:
        logger.info("utkface: skipped %d files with malformed names", out.skipped["malformed name"])
    return out


# --------------------------------------------------------------------------------------- FairFace
@register_dataset('fairface')
def load_fairface(root: str | os.PathLike, split: str = "val", attribute: str = "race") -> LoadedSet:
    """FairFace from ``fairface_label_<split>.csv`` (``file, age, gender, race, service_test``).

    ``file`` (e.g. ``val/1.jpg``) is resolved against the root or one of the released image folders
    (``fairface-img-margin025-trainval/``, ``fairface-img-margin125-trainval/``). ``attribute`` is the
    column used as the label (``race`` or ``age``); its values are the class keys.
    """
    root = require_root(root, "fairface")
    csv_path = find_first(root, [f"fairface_label_{split}.csv", f"labels/fairface_label_{split}.csv"],
                          "fairface", f"{split} label CSV")
    rows = read_csv(csv_path, required=("file", attribute))
    bases = ["", "fairface-img-margin025-trainval", "fairface-img-margin125-trainval"]
    base = None
    out = LoadedSet(samples=[])
    for i, r in enumerate(rows, 2):
        if not r[attribute]:
            raise DatasetError(f"{csv_path}:{i}: empty {attribute!r} for {r['file']}")
        if base is None:
            base = next((b for b in bases if (root / b / r["file"]).exists()), None)
            if base is None:
                raise DatasetLayoutError(
                    f"fairface: image {r['file']!r} (row {i} of {csv_path}) not found; expected it under "
                    + ", ".join(str(root / b) for b in bases))
        out.samples.append(Sample(source=root / base / r["file"], labels=(r[attribute],), id=r["file"]))
    return out


# ---------------------------------------------------------------------------------------- FER2013
def _pixels(text: str, where: str) -> np.ndarray:
    try:
        arr = np.array(text.split(), dtype=np.uint8)
    except ValueError:
        raise DatasetError(f"{where}: 'pixels' must be space-separated 0-255 integers") from None
    if arr.size != FER_SIZE * FER_SIZE:
        raise DatasetError(f"{where}: 'pixels' has {arr.size} values, expected {FER_SIZE * FER_SIZE} (48x48)")
    return arr.reshape(FER_SIZE, FER_SIZE)


def _usages(split: str) -> tuple[str, ...]:
    if split == "test":
        return ("PublicTest", "PrivateTest")
    if split == "train":
        return ("Training",)
    return tuple(s.strip() for s in split.split("+"))


@register_dataset('fer2013')
def load_fer2013(root: str | os.PathLike, split: str = "test") -> LoadedSet:
    """FER2013 from Kaggle's ``fer2013.csv`` or image folders ``<split>/<emotion>/*.{jpg,png}``.

    In the CSV, ``split="test"`` takes the PublicTest and PrivateTest rows (never Training);
    ``"PrivateTest"`` or ``"PublicTest"`` pick one. Class keys: angry, disgust, fear, happy, sad,
    surprise, neutral.
    """
    root = require_root(root, "fer2013")
    csv_candidates = ["fer2013.csv", "fer2013/fer2013.csv"]
    csv_path = next((root / c for c in csv_candidates if (root / c).exists()), None)
    out = LoadedSet(samples=[])
    if csv_path is not None:
        rows = read_csv(csv_path, required=("emotion", "pixels", "Usage"))
        usages = _usages(split)
        for i, r in enumerate(rows, 2):
            if r["Usage"] not in usages:
                continue
            where = f"{csv_path}:{i}"
            try:
                label = FER2013_EMOTIONS[int(r["emotion"])]
            except (ValueError, IndexError):
                raise DatasetError(f"{where}: emotion must be 0-6, got {r['emotion']!r}") from None
            out.samples.append(Sample(source=_pixels(r["pixels"], where), labels=(label,), id=f"row{i - 2}"))
        return out
    folder = root / ("test" if split in ("test", "PublicTest", "PrivateTest") else split)
    if not folder.is_dir():
        raise DatasetLayoutError(f"fer2013: expected {root / 'fer2013.csv'} (Kaggle CSV) or image folders "
                                 f"{folder}/<emotion>/*.jpg")
    for emo_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        key = emo_dir.name.lower()
        if key not in FER2013_EMOTIONS:
            raise DatasetError(f"fer2013: folder {emo_dir} is not one of the emotions {FER2013_EMOTIONS}")
        for p in sorted(emo_dir.iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                out.samples.append(Sample(source=p, labels=(key,), id=f"{key}/{p.name}"))
    return out


# ------------------------------------------------------------------------------------------- FER+
def ferplus_label(votes: dict[str, float], vote: str = "plurality") -> str | None:
    """The FER+ label of one row of votes, or ``None`` when the row is dropped.

    ``plurality``: the most-voted column; ties for the top are dropped. ``majority``: FER+'s own
    rule (more than half of all votes). Rows with no votes, or won by ``unknown``/``NF``, are dropped.
    """
    total = sum(votes.values())
    if total <= 0:
        return None
    best = max(votes.values())
    winners = [k for k, v in votes.items() if v == best]
    if len(winners) > 1:
        return None
    if vote == "majority" and best <= 0.5 * total:
        return None
    return FERPLUS_COLUMNS[winners[0]]


@register_dataset('ferplus')
def load_ferplus(root: str | os.PathLike, split: str = "PrivateTest", vote: str = "plurality",
                 fer2013_csv: str | os.PathLike | None = None) -> LoadedSet:
    """FER+ from ``fer2013new.csv`` (votes) with the pixels of the row-aligned ``fer2013.csv``.

    ``split`` is a FER2013 ``Usage`` value: FER+'s own test set is ``PrivateTest`` (the default),
    its validation set ``PublicTest``; ``test`` takes both. Rows whose vote (see :func:`ferplus_label`)
    is unknown/no-face, tied, or empty are dropped and counted. Class keys add ``contempt``.

    Kaggle's ``fer2013.csv`` is looked for at ``fer2013_csv`` when given, else in the FER+ root
    (``fer2013.csv``, ``fer2013/fer2013.csv``) and in the sibling FER2013 dataset root
    (``<root>/../fer2013/fer2013.csv``, where ``--data-root 'data/{dataset}'`` puts it).
    """
    root = require_root(root, "ferplus")
    new_path = find_first(root, ["fer2013new.csv", "FERPlus/fer2013new.csv"], "ferplus", "FER+ votes")
    old_path = _fer2013_pixels(root, fer2013_csv)
    new = read_csv(new_path, required=("Usage", *FERPLUS_COLUMNS))
    old = read_csv(old_path, required=("pixels",))
    if len(new) != len(old):
        raise DatasetError(f"ferplus: {new_path} has {len(new)} rows but {old_path} has {len(old)}; "
                           "they must be row-aligned")
    usages = _usages(split)
    out = LoadedSet(samples=[])
    for i, (r, o) in enumerate(zip(new, old)):
        if r["Usage"] not in usages:
            continue
        where = f"{new_path}:{i + 2}"
        try:
            votes = {c: float(r[c] or 0) for c in FERPLUS_COLUMNS}
        except ValueError:
            raise DatasetError(f"{where}: vote counts must be numbers") from None
        label = ferplus_label(votes, vote)
        if label is None:
            out.skip("no emotion majority (unknown, no face, tie or no votes)")
            continue
        out.samples.append(Sample(source=_pixels(o["pixels"], f"{old_path}:{i + 2}"), labels=(label,),
                                  id=r.get("Image name") or f"row{i}"))
    return out


def _fer2013_pixels(root: Path, explicit: str | os.PathLike | None) -> Path:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetLayoutError(f"ferplus: fer2013_csv={path} does not exist")
        return path
    candidates = [root / "fer2013.csv", root / "fer2013" / "fer2013.csv", root.parent / "fer2013" / "fer2013.csv"]
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetLayoutError("ferplus: FER2013 pixels (Kaggle's fer2013.csv, row-aligned with fer2013new.csv) "
                             f"not found; looked at {', '.join(map(str, candidates))}. Put it in one of "
                             "those places or pass the dataset option ferplus.fer2013_csv=PATH")


# ---------------------------------------------------------------------------------------- LAGENDA
LAGENDA_BOX = {"body": ("person_x0", "person_y0", "person_x1", "person_y1"),
               "face": ("face_x0", "face_y0", "face_x1", "face_y1")}


@register_dataset('lagenda')
def load_lagenda(root: str | os.PathLike, split: str = "all", crop: str = "body",
                 bins: list[list] | None = None) -> LoadedSet:
    """LAGENDA from its one CSV (``img_name``, ``face_x0..face_y1``, ``person_x0..person_y1``, ``gender``,
    ``age``) with ``crop`` = ``body`` or ``face`` crops. -1 marks a missing box or age: such rows are
    skipped and counted. Ages are binned <=12 kid, 13-19 teenager, >=20 adult (``bins`` to change).
    ``img_name`` is resolved against the root or ``images/``.
    """
    if crop not in LAGENDA_BOX:
        raise InputError(f"lagenda: crop must be one of {list(LAGENDA_BOX)}, got {crop!r}")
    root = require_root(root, "lagenda")
    csv_path = find_first(root, ["lagenda_annotation.csv", "annotation.csv", "lagenda.csv"],
                          "lagenda", "annotation CSV")
    cols = LAGENDA_BOX[crop]
    rows = read_csv(csv_path, required=("img_name", "age", *cols))
    bins = bins or THREE_BINS
    out = LoadedSet(samples=[])
    base = None
    for i, r in enumerate(rows, 2):
        where = f"{csv_path}:{i}"
        try:
            age = float(r["age"])
        except ValueError:
            raise DatasetError(f"{where}: age must be a number (or -1), got {r['age']!r}") from None
        if age < 0:
            out.skip("no age")
            continue
        box = parse_box([r[c] for c in cols], where)
        if box is None:
            out.skip(f"no {crop} box")
            continue
        if base is None:
            base = next((b for b in ("", "images") if (root / b / r["img_name"]).exists()), None)
            if base is None:
                raise DatasetLayoutError(f"lagenda: image {r['img_name']!r} ({where}) found neither at "
                                         f"{root / r['img_name']} nor at {root / 'images' / r['img_name']}")
        out.samples.append(Sample(source=root / base / r["img_name"], labels=(age_bin(age, bins),), box=box,
                                  id=f"{r['img_name']}#{i - 2}"))
    return out

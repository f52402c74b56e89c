"""Convert the official MPII Human Pose annotation (``mpii_human_pose_v1_u12_1.mat``) to records.

The MATLAB file holds one struct ``RELEASE`` (its fields are described in docs/datasets.md). Loaded with
``scipy.io.loadmat(..., struct_as_record=False, squeeze_me=True)``, every field may come back as a
scalar, a string, a ``mat_struct``, an object array of them, or an empty array: the helpers below
normalise all of those. One record per image (schema in :mod:`focusclip.data.records`).

Coordinates are kept exactly as MPII stores them (MATLAB, 1-based pixels), as mmpose's split files and
the released MPII Pose Descriptions do, so records from all three line up.

Visibility: MPII marks each annotated joint with ``is_visible`` ('1', '0', 1, 0 or empty). With
``visibility="annotated"`` (default, the semantics of mmpose's ``joints_vis`` and the release's
``kpts_vis``, which the paper's heatmaps used) every annotated joint has ``visible`` 1; with
``visibility="strict"`` joints explicitly marked ``is_visible`` 0 get ``visible`` 0 (their
coordinates are kept). Either way each person carries ``occluded`` (1 where MPII says not visible).
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.data.records import Record
from focusclip.errors import InputError, MissingInput
from focusclip.io import read_json
from focusclip.progress import track
from focusclip.skeleton import NUM_JOINTS

logger = logging.getLogger(__name__)

SKIP_TEST = "test image"
SKIP_NO_PERSON = "no annotated person"
SKIP_NOT_IN_SPLITS = "not in split files"
SKIP_NO_NAME = "no image name"


# ------------------------------------------------------------------------ MATLAB value helpers
def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.size == 0
    if isinstance(value, str):
        return value.strip() == ""
    return False


def _as_list(value: Any) -> list[Any]:
    """A struct array, a single squeezed struct, or an empty array -> a Python list."""
    if _is_empty(value):
        return []
    if isinstance(value, np.ndarray):
        return [v for v in value.ravel() if not _is_empty(v)]
    if isinstance(value, (list, tuple)):
        return [v for v in value if not _is_empty(v)]
    return [value]


def _unwrap(value: Any) -> Any:
    """The element of a one-element array, None for other arrays; non-arrays unchanged."""
    if isinstance(value, np.ndarray):
        return value.ravel()[0] if value.size == 1 else None
    return value


def _field(struct: Any, name: str) -> Any:
    """A struct field, or None when the struct lacks it or it is empty."""
    if struct is None or isinstance(struct, (str, int, float)):
        return None
    value = getattr(_unwrap(struct), name, None)
    return None if _is_empty(value) else value


def _num(value: Any) -> float | None:
    """A MATLAB number in any of its squeezed forms ('1', 1, array([1]), []) -> float or None."""
    value = None if _is_empty(value) else _unwrap(value)
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def _text(value: Any) -> str | None:
    value = None if _is_empty(value) else _unwrap(value)
    return None if value is None else str(value).strip() or None


def _int_or_none(value: Any, unknown: int | None = -1) -> int | None:
    x = _num(value)
    if x is None:
        return None
    i = int(round(x))
    return None if unknown is not None and i == unknown else i


# ------------------------------------------------------------------------------ people
def _parse_person(rect: Any, visibility: str, stats: Counter) -> dict[str, Any] | None:
    """One ``annorect`` entry -> a record person, or None when it carries neither joints nor position."""
    joints = [[-1.0, -1.0] for _ in range(NUM_JOINTS)]
    visible = [0] * NUM_JOINTS
    occluded = [0] * NUM_JOINTS
    n_points = 0
    for point in _as_list(_field(_field(rect, "annopoints"), "point")):
        jid = _int_or_none(_field(point, "id"), unknown=None)
        x, y = _num(_field(point, "x")), _num(_field(point, "y"))
        if jid is None or not 0 <= jid < NUM_JOINTS or x is None or y is None:
            stats["points with bad id or coordinates"] += 1
            continue
        is_vis = _num(_field(point, "is_visible"))  # '' / [] -> None (annotated, visibility unknown)
        joints[jid] = [x, y]
        occluded[jid] = int(is_vis is not None and is_vis == 0)
        visible[jid] = 0 if (visibility == "strict" and occluded[jid]) else 1
        n_points += 1
    objpos = _field(rect, "objpos")
    cx, cy = _num(_field(objpos, "x")), _num(_field(objpos, "y"))
    scale = _num(_field(rect, "scale"))
    if n_points == 0 and (cx is None or cy is None):
        return None
    person: dict[str, Any] = {
        "center": [cx, cy] if cx is not None and cy is not None else None,
        "scale": scale,
        "joints": joints,
        "visible": visible,
        "occluded": occluded,
    }
    head = [_num(_field(rect, k)) for k in ("x1", "y1", "x2", "y2")]
    if all(v is not None for v in head):
        person["head_box"] = head
    person["_annotated"] = n_points > 0
    return person


# ------------------------------------------------------------------------------- splits
def load_split_files(split_files: dict[str, str | os.PathLike]) -> dict[str, str]:
    """mmpose split files (``{"train": "train.json", "val": "valid.json"}``) -> image name -> split.

    Each file is a JSON list of ``{image, center, scale, joints, joints_vis}`` (one entry per person).
    """
    by_image: dict[str, str] = {}
    for split, path in split_files.items():
        path = Path(path)
        entries = read_json(path, "mmpose split file")
        if not isinstance(entries, list):
            raise InputError(f"{path}: expected a JSON list of {{image, center, scale, joints}} entries")
        for k, entry in enumerate(entries):
            name = entry.get("image") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name:
                raise InputError(f"{path}: entry {k} has no 'image' name (expected an mmpose split file)")
            other = by_image.setdefault(Path(name).name, split)
            if other != split:
                logger.warning("%s: image %s is in both %s and %s; keeping %s", path, name, other, split, other)
    return by_image


def random_split(names: Iterable[str], val_fraction: float, seed: int) -> dict[str, str]:
    """A deterministic train/val split of image names by seed (independent of input order)."""
    ordered = sorted(set(names))
    random.Random(seed).shuffle(ordered)
    n_val = int(round(len(ordered) * val_fraction))
    return {name: ("val" if i < n_val else "train") for i, name in enumerate(ordered)}


# ---------------------------------------------------------------------------- converter
def load_mpii_annotations(mat_path: str | os.PathLike) -> Any:
    """Load ``RELEASE`` from the official .mat file."""
    from scipy.io import loadmat

    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise MissingInput(f"MPII annotation file not found: {mat_path}")
    try:
        mat = loadmat(str(mat_path), struct_as_record=False, squeeze_me=True)
    except Exception as e:  # noqa: BLE001 - scipy raises several types for files that are not .mat
        raise InputError(f"{mat_path}: not a MATLAB .mat file ({type(e).__name__}: {e}); expected "
                         "mpii_human_pose_v1_u12_1.mat") from None
    if "RELEASE" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise InputError(f"{mat_path}: no variable 'RELEASE' (found {keys}); expected mpii_human_pose_v1_u12_1.mat")
    return mat["RELEASE"]


def _image_path(name: str, images_dir: str | os.PathLike, relative_to: str | os.PathLike | None) -> str:
    path = Path(images_dir) / name
    if path.is_absolute() or relative_to is None:
        return path.as_posix()
    return Path(os.path.relpath(path, relative_to)).as_posix()


def _image_size(path: Path) -> tuple[int, int] | None:
    from focusclip.images import image_size

    try:
        return image_size(path)
    except (InputError, MissingInput):
        return None


def convert_mpii(
    mat_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    split_files: dict[str, str | os.PathLike] | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    include_test: bool = False,
    visibility: str = "annotated",
    relative_to: str | os.PathLike | None = None,
    read_sizes: bool = True,
) -> tuple[dict[str, list[Record]], dict[str, Any]]:
    """Convert the MPII annotation to records grouped by split.

    ``images_dir`` is joined to each image name; when it is relative and ``relative_to`` (the output
    folder) is given, the path is rewritten relative to it so records resolve from their JSONL file.
    ``split_files`` maps split names to mmpose JSON files; without it the train images are split by
    ``seed`` with ``val_fraction`` going to "val". Test images (``img_train`` 0) become split "test"
    only with ``include_test``. Returns ``(records_by_split, stats)``; ``stats["skipped"]`` counts the
    dropped images by reason.
    """
    if visibility not in ("annotated", "strict"):
        raise InputError(f"visibility must be 'annotated' or 'strict', got {visibility!r}")
    release = load_mpii_annotations(mat_path)
    annolist = _as_list(_field(release, "annolist"))
    if not annolist:
        raise InputError(f"{mat_path}: RELEASE.annolist is empty or missing")
    n = len(annolist)
    img_train = _per_image(_field(release, "img_train"), n, "img_train", mat_path)
    acts = _per_image(_field(release, "act"), n, "act", mat_path, allow_missing=True)
    single = _per_image(_field(release, "single_person"), n, "single_person", mat_path, allow_missing=True)
    videos = _field(release, "video_list")
    video_list = [] if videos is None else [_text(v) for v in np.atleast_1d(np.asarray(videos, dtype=object))]

    stats: dict[str, Any] = {"images": n, "people": Counter(), "records": Counter(), "skipped": Counter()}
    detail: Counter = Counter()
    pending: list[tuple[int, Record, bool]] = []  # (index, record, is_train)
    for i, anno in enumerate(track(annolist, desc="MPII annotations", unit="img")):
        name = _text(_field(_field(anno, "image"), "name"))
        if name is None:
            stats["skipped"][SKIP_NO_NAME] += 1
            continue
        is_train = _num(img_train[i]) == 1
        if not is_train and not include_test:
            stats["skipped"][SKIP_TEST] += 1
            continue
        people = [p for p in (_parse_person(r, visibility, detail) for r in _as_list(_field(anno, "annorect")))
                  if p is not None]
        if is_train:
            n_all = len(people)
            people = [p for p in people if p["_annotated"]]
            detail["train people without joints (dropped)"] += n_all - len(people)
            if not people:
                stats["skipped"][SKIP_NO_PERSON] += 1
                continue
        for p in people:
            del p["_annotated"]
        record = _make_record(i, name, people, acts[i], single[i], anno, video_list, images_dir, relative_to)
        pending.append((i, record, is_train))

    split_of = _assign_splits(pending, split_files, val_fraction, seed)
    by_split: dict[str, list[Record]] = {}
    for _i, record, is_train in pending:
        split = split_of.get(record["meta"]["name"]) if is_train else "test"
        if split is None:
            stats["skipped"][SKIP_NOT_IN_SPLITS] += 1
            continue
        record["split"] = split
        if read_sizes:
            _add_size(record, images_dir, detail)
        by_split.setdefault(split, []).append(record)
        stats["records"][split] += 1
        stats["people"][split] += len(record["people"])
    stats["details"] = detail
    stats = {k: dict(v) if isinstance(v, Counter) else v for k, v in stats.items()}
    logger.info("MPII: %d images -> %s records, people %s, skipped %s", n, stats["records"], stats["people"],
                stats["skipped"])
    return by_split, stats


def _per_image(value: Any, n: int, what: str, mat_path: Any, allow_missing: bool = False) -> list[Any]:
    if value is None and allow_missing:
        return [None] * n
    if value is None:
        raise InputError(f"{mat_path}: RELEASE.{what} is missing")
    items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else [value]
    if len(items) != n:
        raise InputError(f"{mat_path}: RELEASE.{what} has {len(items)} entries, expected {n} (one per image)")
    return items


def _make_record(i: int, name: str, people: list[dict[str, Any]], act: Any, single: Any, anno: Any,
                 video_list: Sequence[str | None], images_dir: Any, relative_to: Any) -> Record:
    vididx = _int_or_none(_field(anno, "vididx"), unknown=None)
    video_id = video_list[vididx - 1] if vididx is not None and 1 <= vididx <= len(video_list) else None
    single_idx = [int(v) for v in np.atleast_1d(np.asarray(single if not _is_empty(single) else [], dtype=float))]
    return {
        "image": _image_path(name, images_dir, relative_to),
        "id": Path(name).stem,
        "activity": {
            "id": _int_or_none(_field(act, "act_id")),
            "name": _text(_field(act, "act_name")),
            "category": _text(_field(act, "cat_name")),
        },
        "people": people,
        "meta": {
            "name": name,
            "mpii_index": i,
            "video_index": vididx,
            "video_id": video_id,
            "frame_sec": _num(_field(anno, "frame_sec")),
            "single_person": single_idx,
        },
    }


def _assign_splits(pending: list[tuple[int, Record, bool]], split_files: Any, val_fraction: float,
                   seed: int) -> dict[str, str]:
    if split_files:
        return load_split_files(split_files)
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    return random_split((r["meta"]["name"] for _, r, is_train in pending if is_train), val_fraction, seed)


def _add_size(record: Record, images_dir: Any, detail: Counter) -> None:
    size = _image_size(Path(images_dir) / record["meta"]["name"])
    if size is None:
        detail["image file missing or unreadable"] += 1
        return
    record["width"], record["height"] = size


def write_mpii(by_split: dict[str, list[Record]], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``out_dir/<split>.jsonl`` atomically for every split (train and val always, even if empty)."""
    from focusclip.data.records import write_records

    out_dir = Path(out_dir)
    written = {}
    for split in sorted(set(by_split) | {"train", "val"}):
        path = out_dir / f"{split}.jsonl"
        write_records(path, by_split.get(split, []))
        written[split] = path
    return written


def format_conversion_stats(stats: dict[str, Any]) -> str:
    """A short human-readable summary of :func:`convert_mpii`'s stats."""
    lines = [f"annotated images in file: {stats['images']}"]
    for split, count in sorted(stats["records"].items()):
        lines.append(f"  {split}: {count} images, {stats['people'].get(split, 0)} people")
    if stats["skipped"]:
        lines.append("skipped images:")
        lines += [f"  {reason}: {count}" for reason, count in sorted(stats["skipped"].items())]
    if stats.get("details"):
        lines.append("notes:")
        lines += [f"  {what}: {count}" for what, count in sorted(stats["details"].items())]
    return "\n".join(lines)

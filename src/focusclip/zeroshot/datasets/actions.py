"""Activity benchmarks: Stanford 40 Actions and Kinetics-400 (one frame per clip)."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from focusclip.zeroshot.datasets.common import (
    VIDEO_EXTENSIONS,
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



# ------------------------------------------------------------------------------------ Stanford 40
def read_stanford40_actions(path: Path) -> list[str]:
    """``ImageSplits/actions.txt``: a header line, then ``<action> <count>`` per line, in dataset order."""
    lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty, expected a header line then '<action> <count>' lines")
    body = lines[1:] if not lines[0][-1].isdigit() else lines  # tolerate a file without header
    actions = [parts[0] for parts in body]
    if len(set(actions)) != len(actions):
        raise DatasetError(f"{path}: duplicate action names")
    return actions


def _stanford40_box(xml_path: Path) -> tuple[float, float, float, float] | None:
    """The first object's ``bndbox`` in a VOC-style Stanford 40 annotation (``None`` if absent)."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise DatasetError(f"{xml_path}: cannot read the VOC-style annotation ({e})") from None
    bb = root.find("object/bndbox")
    if bb is None:
        return None
    vals = [bb.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")]
    return parse_box(vals, str(xml_path))


@register_dataset('stanford40')
def load_stanford40(root: str | os.PathLike, split: str = "test", crop: bool = False) -> LoadedSet:
    """Stanford 40 Actions from ``JPEGImages/``, ``ImageSplits/{actions,<split>}.txt`` (+ ``XMLAnnotations/``).

    Class keys are the action names in ``actions.txt`` order (e.g. ``riding_a_horse``); an image's label
    is its file name without the ``_<nnn>.jpg`` suffix. ``crop=True`` crops to the annotated person box.
    """
    root = require_root(root, "stanford40")
    actions_txt = find_first(root, ["ImageSplits/actions.txt"], "stanford40", "class list")
    split_txt = find_first(root, [f"ImageSplits/{split}.txt"], "stanford40", f"{split} split list")
    actions = read_stanford40_actions(actions_txt)
    known = set(actions)
    out = LoadedSet(samples=[], classes=actions)
    for lineno, line in enumerate(split_txt.read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        action = re.sub(r"_\d+$", "", Path(name).stem)
        if action not in known:
            raise DatasetError(f"{split_txt}:{lineno}: image {name!r} names action {action!r}, "
                               f"which is not in {actions_txt}")
        box = None
        if crop:
            xml = root / "XMLAnnotations" / f"{Path(name).stem}.xml"
            if not xml.exists():
                raise DatasetLayoutError(f"stanford40: crop=True needs {xml}")
            box = _stanford40_box(xml)
        out.samples.append(Sample(source=root / "JPEGImages" / name, labels=(action,), box=box, id=name))
    return out


# ---------------------------------------------------------------------------------- Kinetics-400
def have_pyav() -> bool:
    """Whether PyAV (the optional ``av`` package) can be imported."""
    return importlib.util.find_spec("av") is not None


def _clip_source(split_dir: Path, stem: str) -> Path | None:
    for ext in VIDEO_EXTENSIONS:
        p = split_dir / f"{stem}{ext}"
        if p.exists():
            return p
    frames = split_dir / stem
    if frames.is_dir():
        return frames
    jpg = split_dir / f"{stem}.jpg"
    return jpg if jpg.exists() else None


@register_dataset('kinetics400')
def load_kinetics400(root: str | os.PathLike, split: str = "test", frame: str | float = "middle") -> LoadedSet:
    """Kinetics-400 from ``<split>.csv`` (``label, youtube_id, time_start, time_end, split``) and clips.

    A clip is ``<split>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (also .mkv/.webm/.avi), a folder of
    extracted frames ``<split>/<same stem>/*.jpg``, or one frame ``<split>/<same stem>.jpg``. Clips that
    are missing (many YouTube videos are gone) are skipped and counted. Class keys are the sorted labels
    of the CSV. ``frame`` picks the frame: "middle" (default), "first" or a fraction in [0, 1].
    """
    root = require_root(root, "kinetics400")
    csv_path = find_first(root, [f"{split}.csv", f"annotations/{split}.csv", f"kinetics400/{split}.csv"],
                          "kinetics400", f"{split} annotation CSV")
    rows = read_csv(csv_path, required=("label", "youtube_id", "time_start", "time_end"))
    split_dir = root / split
    if not split_dir.is_dir():
        raise DatasetLayoutError(f"kinetics400: clip folder {split_dir} not found (clips are expected as "
                                 f"{split_dir}/<youtube_id>_<start:06d>_<end:06d>.mp4)")
    classes = sorted({r["label"] for r in rows if r["label"]})
    out = LoadedSet(samples=[], classes=classes)
    for i, r in enumerate(rows, 2):
        if not r["label"]:
            out.skip("no label")
            continue
        try:
            stem = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}"
        except ValueError:
            raise DatasetError(f"{csv_path}:{i}: time_start/time_end must be numbers, got "
                               f"{r['time_start']!r}, {r['time_end']!r}") from None
        src = _clip_source(split_dir, stem)
        if src is None:
            out.skip("missing clip")
            continue
        out.samples.append(Sample(source=src, labels=(r["label"],), id=stem, frame=frame))
    n_videos = sum(1 for smp in out.samples if smp.source.suffix in VIDEO_EXTENSIONS)  # type: ignore[union-attr]
    if n_videos and not have_pyav():
        raise DatasetError(f"kinetics400: {n_videos} clips under {split_dir} are videos, and decoding them needs "
                           "PyAV: pip install av (or 'focusclip[video]'), or extract frames to "
                           f"{split_dir}/<clip stem>/*.jpg")
    if not out.samples and rows:
        raise DatasetLayoutError(f"kinetics400: none of the {len(rows)} clips of {csv_path} found under "
                                 f"{split_dir} (expected <youtube_id>_<start:06d>_<end:06d>.mp4)")
    return out

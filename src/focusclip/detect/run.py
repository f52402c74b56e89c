"""Folders of photos -> records with detected people, resumably (``focusclip data detect``).

Every image gets one line in the output JSONL as soon as it is done (appended, flushed and fsynced, so a
kill loses nothing finished); a rerun skips the images already there. An image that cannot be read or
that the detector fails on never stops the job: it gets a line in ``<out>.errors.jsonl`` (image, error),
is counted and named in the summary, and is tried again on the next run. Records carry no captions yet:
``focusclip describe`` writes them (rules offline, or an LLM).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from focusclip.data.counts import Counts
from focusclip.data.records import Record, relative_image_path
from focusclip.detect.base import Detection, Detector, person_record
from focusclip.io import JsonlAppender, open_rgb, read_jsonl

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files as given, plus every image below each given folder (sorted); duplicates dropped."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"image or folder not found: {p}")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def errors_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".errors.jsonl")


def detection_record(path: Path, image: Any, detection: Detection, detector: Detector,
                     relative_to: str | os.PathLike | None) -> Record:
    """The record of one photo: its people (MPII joints, boxes, face boxes) and what found them."""
    n_faces = len(detection.faces)
    return {"image": relative_image_path(path, relative_to), "width": image.width, "height": image.height,
            "people": [person_record(p) for p in detection.people], "captions": [],
            "detection": {"detector": detector.name, "max_people": detector.max_people, "faces": n_faces,
                          "face_boxes": [[round(v, 2) for v in f] for f in detection.faces]},
            "meta": {"detector": detector.describe()}}


def detect_images(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, detector: Detector,
                  progress_every: float = 10.0) -> Counts:
    """Detect people in every image of ``inputs`` not yet in ``out`` (module docstring); the counts of
    this run (``done``: images, people; ``skipped``: errors by type; ``notes``: no person, more faces
    than people found, images already done)."""
    from focusclip.progress import Progress

    out = Path(out)
    images = list_images(inputs)
    done = {r.get("image") for r in read_jsonl(out) if isinstance(r, dict)}
    todo = [p for p in images if relative_image_path(p, out.parent) not in done]
    counts = Counts()
    counts.notes["images already in the output (skipped)"] = len(images) - len(todo)
    logger.info("%d images: %d already in %s, %d to do", len(images), len(images) - len(todo), out, len(todo))
    if not todo:
        return counts
    with JsonlAppender(out) as sink, JsonlAppender(errors_path(out)) as errors, \
            Progress(len(todo), "detect", unit="img", every=progress_every) as progress:
        for path in todo:
            try:
                image = open_rgb(path)
                record = detection_record(path, image, detector.detect(image), detector, out.parent)
            except Exception as e:  # noqa: BLE001 - one bad photo never stops the job
                errors.write({"image": relative_image_path(path, out.parent), "error": f"{type(e).__name__}: {e}"})
                counts.skip(type(e).__name__, str(path))
                progress.update(1, failed=sum(counts.skipped.values()))
                continue
            sink.write(record)
            _count(record, detector, counts)
            progress.update(1, failed=sum(counts.skipped.values()))
    return counts


def _count(record: Record, detector: Detector, counts: Counts) -> None:
    n = len(record["people"])
    counts.done["images"] += 1
    counts.done["people"] += n
    if n == 0:
        counts.notes["images without a person found"] += 1
    if detector.max_people is not None and record["detection"]["faces"] > n:
        counts.notes[f"images with more faces than people found (the detector finds at most {detector.max_people})"] += 1

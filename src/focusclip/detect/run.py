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
from focusclip.errors import MissingInput
from focusclip.images import open_rgb
from focusclip.io import JsonlAppender, read_jsonl
from focusclip.processes import end_with_parent

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
            raise MissingInput(f"image or folder not found: {p}")
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


def _detect_one(path: Path, detector: Detector, relative_to: Path) -> tuple[Record | None, str | None]:
    """(record, None) or (None, "ErrorType: message") for one photo; never raises."""
    try:
        image = open_rgb(path)
        return detection_record(path, image, detector.detect(image), detector, relative_to), None
    except Exception as e:  # noqa: BLE001 - one bad photo never stops the job
        return None, f"{type(e).__name__}: {e}"


def _worker_loop(factory: Any, relative_to: Path, tasks: Any, results: Any) -> None:
    """A detection process: its own detector, photos from ``tasks`` until ``None``, answers to ``results``;
    it ends with its parent (:func:`focusclip.processes.end_with_parent`)."""
    end_with_parent()
    detector = factory()
    try:
        for i, path in iter(tasks.get, None):
            results.put((i, path, *_detect_one(path, detector, relative_to)))
    finally:
        detector.close()


def _results(todo: list[Path], detector: Detector, relative_to: Path, workers: int, factory: Any):
    """(path, record, error) per photo, in order: here, or in ``workers`` processes each with its own
    detector made by ``factory`` (a picklable callable)."""
    if workers <= 1 or factory is None:
        for path in todo:
            yield (path, *_detect_one(path, detector, relative_to))
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker_loop, args=(factory, relative_to, tasks, results), daemon=True)
             for _ in range(workers)]
    for proc in procs:
        proc.start()
    for item in enumerate(todo):
        tasks.put(item)
    for _ in procs:
        tasks.put(None)
    pending: dict[int, tuple] = {}
    try:
        for i in range(len(todo)):
            while i not in pending:
                k, *rest = results.get()
                pending[k] = tuple(rest)
            yield pending.pop(i)
    finally:  # finished: the workers have seen their sentinels; interrupted: stop them
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def detect_images(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, detector: Detector,
                  progress_every: float = 10.0, workers: int = 1, factory: Any = None) -> Counts:
    """Detect people in every image of ``inputs`` not yet in ``out`` (module docstring); the counts of
    this run (``done``: images, people; ``skipped``: errors by type; ``notes``: no person, more faces
    than people found, images already done). With ``workers > 1`` and a picklable ``factory`` making
    detectors, photos are processed by that many processes (records are still written in order here)."""
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
        for path, record, error in _results(todo, detector, out.parent, workers, factory):
            if record is None:
                errors.write({"image": relative_image_path(path, out.parent), "error": error})
                counts.skip(error.split(":", 1)[0], str(path))
            else:
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

"""What every benchmark loader returns, its errors, and small helpers for reading distributed layouts.

A loader turns a dataset root (in the layout the dataset is distributed in) into a :class:`LoadedSet`:
the dataset's class keys (or ``None`` when the task fixes them) and a list of :class:`Sample`. A sample
says where its pixels are (an image file, a video, or an in-memory grey array), an optional crop box,
and its label keys. Labels are *keys* (strings); the evaluator turns them into indices into the task's
class list, the same list its prompts are built from, so prompts and labels line up by construction.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from focusclip.errors import InputError

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


class DatasetError(InputError):
    """A dataset that cannot be read; the message names the file and what was expected."""


class DatasetLayoutError(DatasetError):
    """The root exists but does not hold the files the dataset's distributed layout has."""


class DatasetAbsent(DatasetError):  # noqa: N818 - it is a condition the evaluator skips, not a failure
    """The dataset root does not exist: the evaluator skips the dataset with one log line."""


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    ``source`` is a path to an image or video file, a folder of extracted frames, or a uint8 array
    (H, W) or (H, W, 3) of pixels. ``box`` (x1, y1, x2, y2) in source pixels crops the image.
    ``subject`` holds the boxes of the people the labels are about, in source pixels, without cropping:
    evaluation with focus (``focus="boxes"``) turns them into the heatmap a model focuses on.
    ``labels`` holds one key (single-label) or several (multi-label: a hit when any is in the top k).
    """

    source: Path | np.ndarray
    labels: tuple[str, ...]
    box: Box | None = None
    id: str = ""
    frame: str | float = "middle"
    subject: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            raise DatasetError(f"sample {self.id or self.source}: no label")


@dataclass
class LoadedSet:
    """A loader's answer: class keys from the dataset (``None`` when the task lists them) and samples.

    ``skipped`` counts what the loader left out and why (e.g. ``{"malformed name": 3}``).
    """

    samples: list[Sample]
    classes: list[str] | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def require_root(root: str | os.PathLike, dataset: str) -> Path:
    """The dataset root as a Path; :class:`DatasetAbsent` when it does not exist."""
    root = Path(root)
    if not root.exists():
        raise DatasetAbsent(f"{dataset}: no data at {root}")
    if not root.is_dir():
        raise DatasetLayoutError(f"{dataset}: {root} is not a folder")
    return root


def find_first(root: Path, candidates: Sequence[str], dataset: str, what: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists, else a layout error naming them."""
    for c in candidates:
        p = root / c
        if p.exists():
            return p
    expected = ", ".join(str(root / c) for c in candidates)
    raise DatasetLayoutError(f"{dataset}: {what} not found under {root}; expected one of: {expected}")


def read_csv(path: Path, required: Iterable[str] = ()) -> list[dict[str, str]]:
    """Read a CSV with a header into dicts (keys stripped); error naming the file if columns are missing."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DatasetError(f"{path}: empty CSV, expected a header line")
        reader.fieldnames = [c.strip() for c in reader.fieldnames]
        missing = [c for c in required if c not in reader.fieldnames]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return [{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()} for row in reader]


def parse_box(values: Sequence[Any], where: str) -> Box | None:
    """Four numbers x1 y1 x2 y2 -> a box; ``None`` when any is -1 (a missing box); error when malformed."""
    try:
        x1, y1, x2, y2 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: expected a box of 4 numbers x1 y1 x2 y2, got {list(values)}") from None
    if -1.0 in (x1, y1, x2, y2):
        return None
    if x2 <= x1 or y2 <= y1:
        raise DatasetError(f"{where}: box {[x1, y1, x2, y2]} has no area (expected x1 < x2, y1 < y2)")
    return (x1, y1, x2, y2)


#: video files a loader may list as samples (their middle or a chosen frame is read; zeroshot.images)
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")

_DATASETS: dict[str, Callable[..., LoadedSet]] = {}
#: dataset name -> loader ``(root, split=..., **options) -> LoadedSet``; a loader joins with register_dataset
DATASETS: Mapping[str, Callable[..., LoadedSet]] = MappingProxyType(_DATASETS)

L = TypeVar("L", bound=Callable[..., LoadedSet])


def register_dataset(name: str) -> Callable[[L], L]:
    """Decorator: make a loader ``(root, split=..., **options) -> LoadedSet`` the dataset ``name`` that task
    files (``"dataset": name``) and ``load_benchmark`` use.

    >>> @register_dataset("mydata")                       # doctest: +SKIP
    ... def load_mydata(root, split="test"):
    ...     ...
    """
    def register(loader: L) -> L:
        if _DATASETS.get(name, loader) is not loader:
            raise ValueError(f"dataset {name!r} is already registered by {_DATASETS[name].__qualname__}")
        _DATASETS[name] = loader
        return loader

    return register

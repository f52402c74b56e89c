"""What a build works on: the photos of its inputs, in a fixed order, cut into numbered partitions.

Inputs are photo files, folders of photos (searched recursively), list files (``.txt`` / ``.lst``: one
photo path per line, relative to the list file's folder) and WebDataset tar shards (``.tar``: every image
member, named ``SHARD.tar::MEMBER``). The first run writes the photo list to ``DIR/photos.txt`` and the
settings to ``DIR/plan.json``; a rerun checks that both are unchanged, so partition ``k`` always holds the
same photos and a finished partition is never redone.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from focusclip.detect.run import IMAGE_EXTENSIONS, list_images
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.io import atomic_write_json, atomic_write_text, read_json, read_text

PLAN_FILE = "plan.json"
PHOTOS_FILE = "photos.txt"
FORMAT = "focusclip-build-v1"
LIST_EXTENSIONS = (".txt", ".lst")
TAR_MEMBER = "::"  # SHARD.tar::MEMBER names a photo inside a tar shard


class PlanError(InputError):
    """An output folder that holds a build made with other inputs or settings."""


@dataclass(frozen=True)
class Partition:
    """Partition ``index``: the photos ``photos`` (sources as in ``photos.txt``), whose global positions
    start at ``first`` (the key of a photo's sample is its position)."""

    index: int
    first: int
    photos: tuple[str, ...]


def _list_file(path: Path) -> list[str]:
    out = []
    for n, line in enumerate(read_text(path, "photo list").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line) if Path(line).is_absolute() else path.parent / line
        if not p.is_file():
            raise MissingInput(f"{path}: line {n}: photo not found: {p}")
        out.append(str(p))
    return out


def _tar_members(path: Path) -> list[str]:
    try:
        with tarfile.open(path) as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError) as e:
        raise InputError(f"{path}: not a readable tar shard ({e})") from e
    return [f"{path}{TAR_MEMBER}{name}" for name in names if Path(name).suffix.lower() in IMAGE_EXTENSIONS]


def list_photos(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Every photo of ``inputs`` (module docstring), in order, each once."""
    if not inputs:
        raise UsageError("give at least one input: photo files, folders, list files or .tar shards")
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise MissingInput(f"input not found: {p}")
        if p.is_file() and p.suffix.lower() in LIST_EXTENSIONS:
            out += _list_file(p)
        elif p.is_file() and p.suffix.lower() == ".tar":
            out += _tar_members(p)
        else:
            out += [str(f) for f in list_images([p])]
    seen: set[str] = set()
    return [s for s in out if not (s in seen or seen.add(s))]


def make_partitions(photos: Sequence[str], size: int) -> list[Partition]:
    """``photos`` cut into runs of ``size`` (the last may be shorter)."""
    if size < 1:
        raise UsageError(f"partition size must be at least 1, got {size}")
    return [Partition(i // size, i, tuple(photos[i:i + size])) for i in range(0, len(photos), size)]


def _digest(photos: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(photos).encode("utf-8")).hexdigest()


def load_or_create_plan(out: Path, inputs: Sequence[str | os.PathLike], settings: Mapping[str, Any]
                        ) -> tuple[list[str], dict[str, Any]]:
    """``(photos, plan)`` of the build in ``out``: made now (written atomically), or the earlier run's
    when its inputs and settings are the same (:class:`PlanError` names what changed otherwise)."""
    photos = list_photos(inputs)
    plan = {"format": FORMAT, "inputs": [str(Path(i)) for i in inputs], **settings,
            "photos": len(photos), "photos_sha256": _digest(photos)}
    path = out / PLAN_FILE
    if path.exists():
        old = read_json(path, "build plan")
        if not isinstance(old, dict) or old.get("format") != FORMAT:
            raise PlanError(f"{path}: not a focusclip build plan ({FORMAT}); choose another --out")
        changed = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in plan.items() if old.get(k) != v]
        if changed:
            raise PlanError(f"{out} holds a build made with other inputs or settings ({'; '.join(changed)}); "
                            "rerun with the same arguments to continue it, or choose another --out")
        return photos, old
    if out.exists() and any(out.iterdir()):
        raise PlanError(f"{out} is not empty and holds no {PLAN_FILE}; choose a new or empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / PHOTOS_FILE, "".join(f"{s}\n" for s in photos))
    atomic_write_json(path, plan)
    return photos, plan

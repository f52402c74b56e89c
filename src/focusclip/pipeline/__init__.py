"""Photos -> people -> descriptions -> WebDataset shards in one resumable, streaming pass
(``focusclip data build``), on this machine or a Ray cluster.

The input photos are cut into partitions (:mod:`.plan`); each partition is detected, described and
written as one shard by the same code on every engine (:mod:`.partition`, :mod:`.engines`). The result
is what ``data detect``, ``describe --records-out`` and ``data shards --no-shuffle --shard-size N`` give
on the same photos (N the partition size), except that photos without a person are left out of the shards
(they have nothing to describe or focus on) and each sample is keyed by its photo's position in the plan.

```python
from focusclip.pipeline import BuildSpec, DescriberSpec, build_dataset
summary = build_dataset(["photos/"], "built/", BuildSpec(out="built/", describer=DescriberSpec("rules")))
# train with data.format: shards, data.train: built/shards
```
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focusclip.data.shards import FORMAT as SHARDS_FORMAT
from focusclip.data.shards import INDEX_FILE
from focusclip.errors import UsageError
from focusclip.io import atomic_write_json
from focusclip.pipeline.engines import ENGINES, run_local, run_ray
from focusclip.pipeline.partition import (
    SUBFOLDERS,
    BuildCounts,
    BuildSpec,
    DescriberSpec,
    PartitionResult,
    finish_cleanup,
    read_marker,
)
from focusclip.pipeline.plan import Partition, PlanError, list_photos, load_or_create_plan, make_partitions

logger = logging.getLogger(__name__)

DEFAULT_PARTITION_SIZE = 1000


@dataclass
class BuildSummary(BuildCounts):
    """What a build holds after this run: ``partitions`` finished of ``total``; the counts add up every
    finished partition (earlier runs' too); ``waiting`` partitions have records without a description."""

    total: int = 0
    partitions: int = 0
    finished_now: int = 0
    waiting: list[int] = field(default_factory=list)
    failed_descriptions: int = 0

    @property
    def complete(self) -> bool:
        return self.partitions == self.total

    def add(self, r: PartitionResult) -> None:
        self.partitions += 1
        self.add_counts(r)

    def format(self, out: str | os.PathLike) -> str:
        lines = [f"{out}: {self.partitions} of {self.total} partitions finished ({self.finished_now} in this run)",
                 f"  photos: {self.photos}", f"  samples (photos with people): {self.samples}",
                 f"  people: {self.people}"]
        if self.no_person:
            lines.append(f"  photos without a person (not in the shards): {self.no_person}")
        if self.bad_photos:
            lines.append(f"  unreadable photos (listed in errors/): {self.bad_photos}"
                         f" (e.g. {', '.join(self.bad_examples)})")
        if self.waiting:
            lines.append(f"  partitions waiting for descriptions: {len(self.waiting)} ({self.failed_descriptions} "
                         "records); rerun the same command to retry them")
        return "\n".join(lines)


def check_build_args(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, engine: str, workers: int,
                     concurrency: int, partition_size: int) -> None:
    """Usage errors before any work: counts, the engine, and an ``out`` folder that is (or lies inside, or
    holds) an input."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    for name, value in (("workers", workers), ("concurrency", concurrency), ("partition size", partition_size)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    out_r = Path(out).resolve()
    for item in inputs:
        item_r = Path(item).resolve()
        if out_r == item_r or item_r in out_r.parents or out_r in item_r.parents:
            raise UsageError(f"--out {out} and the input {item} overlap; the build writes only into a folder of "
                             "its own, outside its inputs")


def write_index(out: Path, results: Sequence[PartitionResult], total_photos: int, partition_size: int,
                complete: bool) -> dict[str, Any]:
    """``shards/index.json`` of the finished partitions (the format ``data shards`` writes, so
    ``data.format: shards`` trains on it); ``complete`` once every partition is finished."""
    shards = sorted((r.shard for r in results if r.shard), key=lambda s: s["file"])
    index = {"format": SHARDS_FORMAT, "source": str(out), "records": total_photos, "shard_size": partition_size,
             "seed": 0, "shuffle": False, "samples": sum(s["samples"] for s in shards), "complete": complete,
             "shards": shards}
    atomic_write_json(out / "shards" / INDEX_FILE, index)
    return index


def _clean_leftovers(out: Path) -> None:
    """Temporary files of a killed run (every output is written as ``.NAME.PID.tmp`` then renamed)."""
    for folder in ("shards", "records", "errors", "done"):
        for tmp in (out / folder).glob(".*.tmp"):
            tmp.unlink()


def build_dataset(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, spec: BuildSpec, *,
                  engine: str = "local", workers: int = 1, concurrency: int = 1,
                  partition_size: int = DEFAULT_PARTITION_SIZE, address: str | None = None,
                  gpus_per_worker: float = 0.0, progress_every: float = 10.0) -> BuildSummary:
    """Build (or continue building) the dataset of ``inputs`` in ``out`` (module docstring).

    Args:
        inputs: photo files, folders, list files (.txt/.lst) or WebDataset .tar shards.
        out: the build's folder (new, empty, or an earlier build of the same inputs and settings).
        spec: detector and describer (:class:`BuildSpec`; ``spec.out`` is set to ``out``).
        engine: ``local`` or ``ray``; workers: processes / Ray actors; concurrency: description
            requests in flight over all workers; partition_size: photos per partition (= per shard).
        address: a running Ray cluster (``ray`` engine; None starts a local instance).
        gpus_per_worker: GPUs per Ray actor (a GPU detector).

    Returns:
        :class:`BuildSummary` (counts over every finished partition, and what is still waiting).
    """
    from focusclip.progress import Progress

    check_build_args(inputs, out, engine, workers, concurrency, partition_size)
    out = Path(out)
    spec = dataclasses.replace(spec, out=str(out), concurrency=concurrency)  # every other field kept as given
    settings = {"partition_size": partition_size, "detector": spec.detector,
                "detector_options": spec.detector_options, "describer": spec.describer.settings()}
    photos, _ = load_or_create_plan(out, inputs, settings)
    for sub in SUBFOLDERS:
        (out / sub).mkdir(exist_ok=True)
    _clean_leftovers(out)
    parts = make_partitions(photos, partition_size)
    summary = BuildSummary(total=len(parts))
    finished: list[PartitionResult] = []
    todo: list[Partition] = []
    for part in parts:
        marker = read_marker(out, part.index)
        if marker is None:
            todo.append(part)
            continue
        finish_cleanup(out, part.index)
        finished.append(marker)
        summary.add(marker)
    logger.info("%d photos in %d partitions: %d finished earlier, %d to do", len(photos), len(parts),
                len(finished), len(todo))
    if todo:
        run = (run_local(spec, todo, workers, concurrency) if engine == "local" else
               run_ray(spec, todo, workers, concurrency, address=address, gpus_per_worker=gpus_per_worker))
        with Progress(len(photos), "build", unit="photo", every=progress_every,
                      initial=summary.photos) as progress:
            for result in run:
                progress.update(result.photos, samples=summary.samples + result.samples)
                if not result.finished:
                    summary.waiting.append(result.index)
                    summary.failed_descriptions += result.failed_descriptions
                    continue
                finished.append(result)
                summary.add(result)
                summary.finished_now += 1
                write_index(out, finished, len(photos), partition_size, complete=False)
    write_index(out, finished, len(photos), partition_size, complete=summary.complete)
    return summary


__all__ = ["DEFAULT_PARTITION_SIZE", "ENGINES", "BuildSpec", "BuildSummary", "DescriberSpec", "PlanError",
           "build_dataset", "check_build_args", "list_photos"]

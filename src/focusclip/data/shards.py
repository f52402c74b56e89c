"""WebDataset tar shards of a records file, and the training reader with exact per-sample epochs and resume.

Writing (``focusclip data shards RECORDS --out DIR --shard-size N``): records are put in a seeded order and
cut into ``DIR/shard-000000.tar``, ... of ``N`` samples each. A sample is three tar members sharing the key
``<position:09d>``: the image file's bytes as they are (``.jpg``, ``.png``, ...), the record as ``.json``
(coordinates in the original image's pixels, ``image`` kept for reference) and its captions as ``.txt``
(one per line). ``DIR/index.json`` lists every finished shard with its sample count and byte size; it is
rewritten atomically after each shard, and a rerun with the same arguments continues after the last
finished shard. Records whose image is missing or unreadable are skipped, counted and named; a record
without captions is refused before anything is written (training needs one per sample). The shard being
written goes to a hidden ``DIR/.shard-NNNNNN.<pid>.tmp`` renamed when complete: a run killed outright
(``kill -9``, power loss) can leave that file behind, and the rerun that continues the set removes it
(reported as a note).

Reading (``data.format: shards``, :class:`ShardDataset`): tar members are read through the ``webdataset``
library (its tar iterator and key grouping); images are decoded, transformed and their heatmaps rendered
in the DataLoader workers, with the same code as the records format
(:meth:`focusclip.data.dataset.FocusDataset.build_sample`).

Who reads what (:class:`ShardPlan`): each epoch the shard order is shuffled by ``(seed, epoch)`` and the
samples laid end to end; the first ``steps * world * batch`` of them are used (the rest are dropped, as
the records format drops its last partial batch). Rank ``r`` reads one contiguous stretch, and inside it
worker ``w`` of ``K`` one contiguous run holding its batches ``w, w + K, ...`` (the order a DataLoader
takes batches from its workers), shuffled through a seeded buffer. So within an epoch every used sample
is read exactly once over all ranks and workers, and each rank does the same number of steps. A run
resumed after ``k`` batches gives loader worker ``i`` the run of worker ``(i + k) % K`` (the DataLoader
starts asking at worker 0 again), which skips exactly its batches among the first ``k`` before
decoding anything: the same batches, in the same order, as an uninterrupted run. Exact resume needs the same number of
ranks and ``data.num_workers`` as the run that wrote the checkpoint. Splitting by whole shards (what
``webdataset.split_by_node`` does) cannot guarantee equal step counts per rank or one visit per sample;
this plan can, and it still reads each shard sequentially.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from focusclip.data.counts import Counts
from focusclip.data.records import Record, record_id, resolve_image
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.io import atomic_write_json, read_json

logger = logging.getLogger(__name__)

INDEX_FILE = "index.json"
FORMAT = "focusclip-shards-v1"
DEFAULT_SHUFFLE_BUFFER = 256


class ShardError(InputError):
    """A shard folder or tar that is not what :func:`write_shards` writes; names the file."""


# ------------------------------------------------------------------------------------- writing
def shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


def _order(n: int, seed: int, shuffle: bool) -> list[int]:
    return np.random.default_rng(seed).permutation(n).tolist() if shuffle else list(range(n))


def _sample(record: Record, root: Path, position: int) -> dict[str, Any]:
    """The tar members of one record (raises OSError / ValueError for an unusable image)."""
    from PIL import Image

    from focusclip.images import image_size

    path = resolve_image(record, root)
    width, height = image_size(path)  # as displayed (EXIF orientation), the frame of the coordinates
    with Image.open(path) as im:  # header only: which kind of image
        ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif"}.get(im.format or "", "")
        if not ext:
            raise ValueError(f"{path}: image format {im.format} is not stored in shards (JPEG, PNG, WebP, BMP, GIF)")
    if record.get("width") is None or record.get("height") is None:
        record = {**record, "width": width, "height": height}
    captions = [c for c in record.get("captions") or [] if isinstance(c, str)]
    return {"__key__": f"{position:09d}", ext: path.read_bytes(),
            "json": json.dumps(record, ensure_ascii=False).encode("utf-8"),
            "txt": "\n".join(" ".join(c.split()) for c in captions).encode("utf-8")}


def _write_tar(path: Path, items: Sequence[tuple[Record, Path, int]], on_skip: Any = None,
               progress: Any = None) -> int:
    """Write the samples of ``items`` ((record, image root, position) each) as the tar ``path``, atomically
    (a temporary file renamed into place, removed if anything fails); returns how many were skipped
    (unreadable images, reported to ``on_skip(record, error)``)."""
    import webdataset as wds

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    skipped = 0
    try:
        with tmp.open("wb") as f, wds.TarWriter(f, encoder=False, mtime=0.0) as sink:
            for record, root, position in items:
                try:
                    sink.write(_sample(record, root, position))
                except (OSError, ValueError) as e:
                    skipped += 1
                    if on_skip is not None:
                        on_skip(record, e)
                if progress is not None:
                    progress.update(1)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return skipped


def _count_skip(counts: Counts, record: Record, error: Exception) -> None:
    counts.skip("unreadable image", f"{record_id(record)} ({type(error).__name__}: {error})")


def write_shard_file(path: str | os.PathLike, items: Sequence[tuple[Record, Path, int]]) -> int:
    """One shard of samples ((record, image root, position) each, keyed by position) written atomically
    to ``path``, as :func:`write_shards` writes each of its shards; an unusable image raises. Returns the
    file's size in bytes."""

    def fail(record: Record, error: Exception) -> None:
        raise error

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_tar(path, items, fail)
    return path.stat().st_size


def write_shards(records_file: str | os.PathLike, out_dir: str | os.PathLike, shard_size: int = 1000,
                 seed: int = 0, shuffle: bool = True) -> tuple[dict[str, Any], Counts]:
    """Write the shards of a dataset file (records JSONL or custom CSV/JSONL) into ``out_dir``; resumable.

    Returns ``(index, counts)``; ``index`` is what ``out_dir/index.json`` holds.
    """
    from focusclip.data.sources import read_dataset_file
    from focusclip.progress import Progress

    if shard_size < 1:
        raise UsageError(f"shard_size must be >= 1, got {shard_size}")
    records, root = read_dataset_file(records_file)
    for k, record in enumerate(records):  # training needs a caption per sample: refuse before writing
        if not [c for c in record.get("captions") or [] if isinstance(c, str) and c.strip()]:
            raise ShardError(f"{records_file}: record {k + 1} ({record_id(record)}) has no captions; training needs "
                             "at least one per sample (write them with `focusclip describe`, or leave the "
                             "record out)")
    out_dir = Path(out_dir)
    params = {"format": FORMAT, "source": str(Path(records_file)), "records": len(records), "shard_size": shard_size,
              "seed": seed, "shuffle": shuffle}
    index = _resume_index(out_dir, params)
    stale = sorted(out_dir.glob(".shard-*.tmp"))  # a shard being written when an earlier run was killed
    for tmp in stale:
        tmp.unlink()
    order = _order(len(records), seed, shuffle)
    n_shards = math.ceil(len(records) / shard_size)
    counts = Counts()
    if stale:
        logger.info("%s: removed %d unfinished shard file(s) of an interrupted run", out_dir, len(stale))
        counts.notes["unfinished shard files of an interrupted run (removed)"] = len(stale)
    done = len(index["shards"])
    if done:
        logger.info("%s: %d of %d shards already written; continuing", out_dir, done, n_shards)
        counts.notes["shards already written (kept)"] = done
    with Progress(len(records), "shards", unit="rec", initial=done * shard_size) as progress:
        for s in range(done, n_shards):
            items = [(records[order[position]], root, position)
                     for position in range(s * shard_size, min((s + 1) * shard_size, len(records)))]
            n = len(items) - _write_tar(out_dir / shard_name(s), items, functools.partial(_count_skip, counts),
                                        progress)
            index["shards"].append({"file": shard_name(s), "samples": n,
                                    "bytes": (out_dir / shard_name(s)).stat().st_size})
            index["samples"] = sum(e["samples"] for e in index["shards"])
            index["complete"] = s == n_shards - 1
            atomic_write_json(out_dir / INDEX_FILE, index)
    if not n_shards:
        index["complete"] = True
        atomic_write_json(out_dir / INDEX_FILE, index)
    counts.done["shards"] = len(index["shards"])
    counts.done["samples"] = index["samples"]
    return index, counts


def _resume_index(out_dir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh index, or the one of an earlier run with the same parameters (its shards checked)."""
    path = out_dir / INDEX_FILE
    if not path.exists():
        if out_dir.is_dir() and any(out_dir.glob("shard-*.tar")):
            raise ShardError(f"{out_dir} holds shard files but no {INDEX_FILE}; choose an empty --out folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        return {**params, "samples": 0, "complete": False, "shards": []}
    index = read_json(path, "shard index")
    old = {k: index.get(k) for k in params}
    if old != dict(params):
        changed = ", ".join(f"{k}: {old[k]!r} -> {v!r}" for k, v in params.items() if old[k] != v)
        raise ShardError(f"{out_dir} holds shards written with other settings ({changed}); use another --out")
    for entry in index["shards"]:
        f = out_dir / entry["file"]
        if not f.is_file() or f.stat().st_size != entry["bytes"]:
            raise ShardError(f"{f}: missing or not the size {INDEX_FILE} records ({entry['bytes']} bytes); "
                             "the folder was changed after writing")
    return index


def read_index(folder: str | os.PathLike) -> dict[str, Any]:
    """``folder/index.json`` of a finished shard set (an error names what is wrong)."""
    folder = Path(folder)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise MissingInput(f"shard index not found: {path} (write shards with `focusclip data shards`)")
    index = read_json(path, "shard index")
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("shards"), list):
        raise ShardError(f"{path}: not a focusclip shard index (format {FORMAT})")
    if not index.get("complete"):
        raise ShardError(f"{path}: the shard set is incomplete ({len(index['shards'])} shards); rerun "
                         "`focusclip data shards` with the same arguments to finish it")
    return index


# ------------------------------------------------------------------------------------- the plan
@dataclass
class ShardPlan:
    """Which samples each rank and worker reads in an epoch (module docstring), for the trainer a drop-in
    for :class:`focusclip.train.distributed.ResumableDistributedSampler`: ``set_epoch(epoch, skip_batches)``
    and ``batches_per_epoch()``."""

    shard_samples: Sequence[int]
    batch_size: int
    world_size: int = 1
    rank: int = 0
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = True
    epoch: int = 0
    skip_batches: int = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = int(epoch), int(skip_batches)

    @property
    def total(self) -> int:
        return int(sum(self.shard_samples))

    def rank_range(self) -> tuple[int, int]:
        """This rank's stretch [start, stop) of the epoch's sample sequence."""
        if self.drop_last:
            per_rank = self.total // (self.world_size * self.batch_size) * self.batch_size
            return self.rank * per_rank, (self.rank + 1) * per_rank
        return self.rank * self.total // self.world_size, (self.rank + 1) * self.total // self.world_size

    def batches_per_epoch(self) -> int:
        start, stop = self.rank_range()
        return math.ceil((stop - start) / self.batch_size)

    def worker_range(self, worker: int, workers: int) -> tuple[int, int, int]:
        """Worker ``worker``'s run [start, stop) and how many of its samples come before ``skip_batches``."""
        start, stop = self.rank_range()
        n_batches = self.batches_per_epoch()
        before = sum(len(range(v, n_batches, workers)) for v in range(worker))
        mine = len(range(worker, n_batches, workers))
        lo = min(start + before * self.batch_size, stop)
        hi = min(lo + mine * self.batch_size, stop)
        skipped = len(range(worker, min(self.skip_batches, n_batches), workers)) * self.batch_size
        return lo, hi, min(skipped, hi - lo)

    def shard_order(self) -> list[int]:
        n = len(self.shard_samples)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng([self.seed, self.epoch]).permutation(n).tolist()


# ------------------------------------------------------------------------------------- reading
class ShardDataset(IterableDataset):
    """Training samples from a shard folder; ``plan`` (:class:`ShardPlan`) is set by the loader builder.

    ``transform``, ``heatmap``, ``captions``, ``on_error`` and ``seed`` as for
    :class:`focusclip.data.dataset.FocusDataset`. A bad sample (undecodable image) is replaced by the
    worker's previous good one (counted in ``bad_samples`` and logged), so batch counts, and therefore
    resume positions, never change; ``on_error="raise"`` raises.
    """

    def __init__(self, folder: str | os.PathLike, transform: Any, heatmap: str = "person", captions: str = "random",
                 on_error: str = "skip", seed: int = 0, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER):
        from focusclip.data.dataset import FocusDataset

        self.folder = Path(folder)
        self.index = read_index(self.folder)
        if heatmap == "file":
            raise ShardError(f"{self.folder}: heatmap 'file' is not read from shards (the PNGs are not stored); "
                             "use person, parts, boxes, points, auto or none")
        # the per-sample logic of the records format (captions, transform, heatmap after the transform)
        self.builder = FocusDataset([], root=self.folder, transform=transform, heatmap=heatmap, captions=captions,
                                    on_error=on_error, seed=seed)
        self.on_error = on_error
        self.shuffle_buffer = max(1, int(shuffle_buffer))
        self.plan: ShardPlan | None = None
        self.bad_samples: list[dict[str, str]] = []

    def __len__(self) -> int:
        """Samples in the shard set (an epoch uses the plan's share of them)."""
        return int(self.index["samples"])

    @property
    def shard_samples(self) -> list[int]:
        return [int(e["samples"]) for e in self.index["shards"]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample at ``index`` of the written order, or with ``on_error="skip"`` the first loadable one
        after it: a probe (the trainer checks that a sample loads before starting workers), reading the
        shards sequentially up to it. Training iterates the dataset instead."""
        from focusclip.data.dataset import SampleError

        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples in {self.folder}")
        plan = ShardPlan(self.shard_samples, 1, shuffle=False, drop_last=False)
        last: Exception | None = None
        for raw in self._raw(index, plan.total, plan):
            try:
                return self._decode(raw)
            except Exception as e:  # noqa: BLE001 - any decoding failure of one sample
                if self.on_error == "raise":
                    raise
                last = e
        raise SampleError(f"{self.folder}: no loadable sample from position {index} on (last error: {last})")

    def set_epoch(self, epoch: int) -> None:
        """Which caption ``captions="random"`` draws this epoch (the plan has its own ``set_epoch``)."""
        self.builder.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.plan is None:
            raise RuntimeError("ShardDataset needs a plan (focusclip.train.data.build_loader sets one)")
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # A DataLoader asks its workers in turn starting from worker 0, so after ``k`` consumed batches
        # loader worker ``i`` serves what worker ``(i + k) % K`` of the uninterrupted epoch would have.
        role = (worker + self.plan.skip_batches) % workers
        lo, hi, skip = self.plan.worker_range(role, workers)
        rng = np.random.default_rng([self.plan.seed, self.plan.epoch, self.plan.rank, role])
        stream = self._raw(lo, hi, self.plan)
        if self.plan.shuffle:
            stream = _buffer_shuffle(stream, self.shuffle_buffer, rng)
        last_good, owed = None, 0
        for k, raw in enumerate(stream):
            if k < skip:
                continue  # consumed before the resume point: never decoded
            try:
                sample = self._decode(raw)
            except Exception as e:  # noqa: BLE001 - any decoding failure of one sample
                if self.on_error == "raise":
                    raise
                self._note_bad(raw, e)
                if last_good is None:
                    owed += 1
                    continue
                sample = last_good
            for _ in range(1 + owed):
                yield sample
            last_good, owed = sample, 0
        if owed:
            from focusclip.data.dataset import SampleError

            raise SampleError(f"{self.folder}: none of the {owed} samples of worker {worker}'s share could be "
                              f"loaded (first: {self.bad_samples[0]})")

    def _raw(self, lo: int, hi: int, plan: ShardPlan) -> Iterator[dict[str, Any]]:
        """The undecoded samples at positions [lo, hi) of the plan's shard sequence for its epoch."""
        from webdataset.tariterators import group_by_keys, tar_file_iterator

        counts = self.shard_samples
        offset = 0
        for s in plan.shard_order():
            n = counts[s]
            first, last = max(lo - offset, 0), min(hi - offset, n)
            offset += n
            if first >= last:
                continue
            path = self.folder / self.index["shards"][s]["file"]
            with path.open("rb") as f:
                members = ({**m, "__url__": str(path)} for m in tar_file_iterator(f))
                for i, sample in enumerate(group_by_keys(members)):
                    if i >= last:
                        break
                    if i >= first:
                        yield sample

    def _decode(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        from focusclip.data.dataset import SampleError
        from focusclip.images import open_image_reduced

        key = raw.get("__key__", "?")
        where = f"{raw.get('__url__', self.folder)} sample {key}"
        if "json" not in raw:
            raise SampleError(f"{where}: no .json record member")
        record = json.loads(raw["json"])
        record.pop("heatmap", None)  # heatmap PNGs are not stored in shards: "auto" uses joints, points or boxes
        data = next((raw[e] for e in ("jpg", "png", "webp", "bmp", "gif") if e in raw), None)
        if data is None:
            raise SampleError(f"{where}: no image member (.jpg/.png/.webp/.bmp/.gif)")
        try:
            image, factor = open_image_reduced(io.BytesIO(data), "RGB", self.builder.draft_size())
        except Exception as e:
            raise SampleError(f"{where}: cannot decode the image: {type(e).__name__}: {e}") from e
        return self.builder.build_sample(record, int(key), image, factor, where)

    def _note_bad(self, raw: Mapping[str, Any], error: Exception) -> None:
        self.bad_samples.append({"key": str(raw.get("__key__")), "file": str(raw.get("__url__")), "error": str(error)})
        logger.warning("bad sample replaced by the previous one (%d in this worker): %s", len(self.bad_samples), error)


def _buffer_shuffle(items: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """A seeded shuffle through a buffer of ``size`` items (the whole stream when it is shorter)."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = int(rng.integers(size))
        yield buffer[i]
        buffer[i] = item
    for i in rng.permutation(len(buffer)):
        yield buffer[int(i)]

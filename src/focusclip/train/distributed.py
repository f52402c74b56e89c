"""Process-group setup for single-process, one-GPU and ``torchrun`` (multi-GPU / multi-node) training.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them the run is one process.
Data order is a pure function of ``(seed, epoch)`` (:class:`ResumableDistributedSampler`), so a run on N
processes sees the same global batches as one process, and a resumed run skips exactly the consumed ones.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from focusclip.runtime import resolve_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistInfo:
    """Join the process group started by ``torchrun`` (NCCL on GPUs, gloo on CPU), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=timedelta(minutes=timeout_minutes))
        logger.info("rank %d/%d (local %d) on %s", rank, world, local_rank, dev)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: object, info: DistInfo) -> list:
    """``obj`` of every rank, in rank order."""
    if not info.distributed:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


class ResumableDistributedSampler(DistributedSampler):
    """:class:`DistributedSampler` whose order is a pure function of ``(seed, epoch)`` and that can start
    mid-epoch: ``set_epoch(epoch, skip_batches=k)`` drops the first ``k`` batches of this rank.

    Rank ``r`` takes every ``world``-th index of the shuffled list, so global batch ``k`` (rank batches
    ``k`` of all ranks together) is the same set of samples as batch ``k`` of one process with the whole
    global batch.
    """

    def __init__(self, dataset: Dataset, batch_size: int, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.batch_size = batch_size
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip_batches * self.batch_size

    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(self.num_samples - self.skip, 0)

"""Training and validation data: records through :class:`focusclip.data.dataset.FocusDataset`, or
``kind: fake`` samples (deterministic tensors, for smoke tests and throughput checks, like open_clip's
synthetic data type), and loaders whose order is a pure function of ``(seed, epoch)``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from focusclip.data.records import Record, RecordError, record_id, record_split
from focusclip.errors import InputError
from focusclip.train.config import DataConfig
from focusclip.train.distributed import DistInfo, ResumableDistributedSampler

logger = logging.getLogger(__name__)

_FAKE_WORDS = ("running", "jumping", "sitting", "waving", "kicking", "climbing", "dancing", "lifting",
               "throwing", "reading", "cycling", "swimming")


class FakePairs(Dataset):
    """``n`` deterministic samples in ``num_classes`` visual/text patterns (sample ``i`` is class ``i % C``).

    Each class has its own colour pattern (plus per-sample noise) and caption, so a model can learn to
    match them; a sample depends only on ``(seed, index)``.
    """

    def __init__(self, n: int, image_size: int, num_classes: int = 4, seed: int = 0):
        if n < 1 or num_classes < 1:
            raise InputError("fake data needs n >= 1 and num_classes >= 1")
        self.n, self.size, self.num_classes, self.seed = n, image_size, num_classes, seed
        g = torch.Generator().manual_seed(seed)
        self.patterns = torch.randn(num_classes, 3, 4, 4, generator=g)
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        c = index % self.num_classes
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        s = self.size
        base = torch.nn.functional.interpolate(self.patterns[c][None], size=(s, s), mode="nearest")[0]
        image = base + 0.3 * torch.randn(3, s, s, generator=g)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        cx, cy = (torch.rand(2, generator=g) - 0.5).tolist()
        heatmap = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.2)[None]
        word = _FAKE_WORDS[c % len(_FAKE_WORDS)]
        text = f"a person {word} " + " ".join([word] * (1 + c // len(_FAKE_WORDS)))
        return {"image": image, "heatmap": heatmap, "text": text, "id": f"fake-{index}"}


#: which splits each reading takes: training, validation from the train file, validation from data.val
_TAKES = {"train": ("train", None), "val": ("val",), "val-file": ("val", None)}


def split_records(records: list[Record], takes: str, where: str) -> tuple[list[Record], dict[str, int]]:
    """The records of a file that a reading takes (see ``_TAKES``), and the other rows' count per split."""
    wanted = _TAKES[takes]
    chosen, others = [], {}
    for r in records:
        s = record_split(r)
        if s not in (None, "train", "val", "test"):
            raise RecordError(f"{where}: record {record_id(r)} has split {s!r}; expected train, val or test")
        if s in wanted:
            chosen.append(r)
        else:
            others[s or "unsplit"] = others.get(s or "unsplit", 0) + 1
    return chosen, others


def build_dataset(cfg: DataConfig, split: str, transform: Any, image_size: int, seed: int) -> Dataset | None:
    """The ``train`` or ``val`` dataset of the config (None when there is no validation data).

    A file's ``split`` column is honoured: training reads the train rows and the unsplit ones of
    ``data.train``; validation reads ``data.val`` (its val and unsplit rows) or, without it, the val rows of
    ``data.train``. Test rows are never read.
    """
    if cfg.format == "fake":
        n = cfg.fake_size if split == "train" else max(cfg.fake_size // 4, 1)
        return FakePairs(n, image_size, cfg.fake_classes, seed=seed if split == "train" else seed + 1)
    from focusclip.data.dataset import FocusDataset
    from focusclip.data.sources import read_dataset_file

    takes = "val-file" if split == "val" and cfg.val else split
    path = cfg.val if takes == "val-file" else cfg.train
    records, root = read_dataset_file(path)
    chosen, others = split_records(records, takes, str(path))
    if split == "train" and cfg.limit:
        chosen = chosen[: cfg.limit]
    if not chosen:
        if takes == "val":  # no data.val and no val rows in data.train: no validation
            return None
        what = "training records (train or unsplit rows)" if split == "train" else "validation records (val or unsplit rows)"
        raise RecordError(f"{path}: no {what}; the file has "
                          f"{', '.join(f'{v} {k}' for k, v in sorted(others.items())) or 'no records'} rows")
    ds = FocusDataset(chosen, root=cfg.root if cfg.root is not None else root, transform=transform,
                      heatmap=cfg.heatmap, captions=cfg.captions if split == "train" else "first",
                      on_error=cfg.on_error, seed=seed)
    logger.info("%s: %d records from %s%s", split, len(ds), path,
                f" (not used here: {', '.join(f'{v} {k}' for k, v in sorted(others.items()))} rows)" if others else "")
    return ds


def build_loader(dataset: Dataset, per_rank_batch: int, info: DistInfo, seed: int, shuffle: bool,
                 collate: Any, num_workers: int, drop_last: bool) -> tuple[DataLoader, ResumableDistributedSampler]:
    sampler = ResumableDistributedSampler(dataset, batch_size=per_rank_batch, num_replicas=info.world_size,
                                          rank=info.rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
    loader = DataLoader(dataset, batch_size=per_rank_batch, sampler=sampler, collate_fn=collate,
                        num_workers=num_workers, drop_last=drop_last, pin_memory=info.device.type == "cuda",
                        generator=torch.Generator(), persistent_workers=False)
    return loader, sampler


def start_epoch(loader: DataLoader, sampler: ResumableDistributedSampler, epoch: int, seed: int,
                skip_batches: int = 0) -> None:
    """Position data for ``epoch``: sampler order, caption draws and worker seeds all follow ``(seed, epoch)``."""
    sampler.set_epoch(epoch, skip_batches)
    ds = loader.dataset
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(seed * 1_000_003 + epoch)

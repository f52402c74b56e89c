"""Helper run under torchrun by tests/test_shards.py: every rank iterates two epochs of a shard set through
the training loader (build_dataset / build_loader / start_epoch) and writes the ids it saw, in order."""

from __future__ import annotations

import json
import sys

from focusclip.data.dataset import Collator
from focusclip.model import create_model_and_transforms
from focusclip.train.config import DataConfig
from focusclip.train.data import build_dataset, build_loader, start_epoch
from focusclip.train.distributed import init_distributed, teardown_distributed


def main(shards: str, out: str, batch: int, workers: int) -> None:
    info = init_distributed("cpu")
    _, _, eval_tf = create_model_and_transforms("focusclip-tiny", pretrained="none")
    cfg = DataConfig(format="shards", train=shards, heatmap="person", num_workers=workers)
    ds = build_dataset(cfg, "train", eval_tf, 64, seed=7)
    loader, plan = build_loader(ds, batch, info, 7, True, Collator(None), workers, drop_last=True)
    seen = {}
    for epoch in range(2):
        start_epoch(loader, plan, epoch, 7)
        seen[epoch] = [b["id"] for b in loader]
    with open(f"{out}.rank{info.rank}.json", "w", encoding="utf-8") as f:
        json.dump({"steps": plan.batches_per_epoch(), "epochs": seen}, f)
    teardown_distributed()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

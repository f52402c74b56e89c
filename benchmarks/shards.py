"""Benchmark: training-loader throughput from WebDataset shards vs from the image folder (records JSONL).

The same records feed both: a small synthetic world re-saved as 640x480 JPEGs, captioned by the rule-based
describer, written to shards with `focusclip.data.shards.write_shards`. Each side runs the loader the
trainer builds (`focusclip.train.data.build_loader`: the records sampler or the shard plan; FocusDataset's
per-sample code either way: JPEG decode, the joint transform, the ROI heatmap rendered after it, and the
Collator's tokenisation) after one untimed warm-up epoch each, for ``--repeats`` epochs per configuration in alternating
order (the median is reported), with 0 and 2 workers; images/s excludes the first batch (worker
start-up, and for shards the filling of the shuffle buffer).

    python benchmarks/shards.py --markdown
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from loader import add_captions, synthetic_records  # noqa: E402


def epoch_rate(dataset: Any, batch: int, workers: int, collate: Any, seed: int) -> dict[str, Any]:
    from focusclip.train.data import build_loader, start_epoch
    from focusclip.train.distributed import DistInfo

    loader, sampler = build_loader(dataset, batch, DistInfo(), seed, True, collate, workers, drop_last=True)
    start_epoch(loader, sampler, 0, seed)
    t0 = time.perf_counter()
    first, count = None, 0
    for b in loader:
        if first is None:
            first = time.perf_counter()
            continue
        count += b["image"].shape[0]
    end = time.perf_counter()
    return {"workers": workers, "images": count, "first_batch_s": first - t0,
            "images_per_s": count / (end - first) if count else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from focusclip.data.dataset import Collator, FocusDataset
    from focusclip.data.records import write_records
    from focusclip.data.shards import ShardDataset, write_shards
    from focusclip.model.factory import create_model_and_transforms, get_tokenizer

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "shards", "date": C.now_utc(), "command": C.command_line("shards.py", args.argv),
                              "machine": C.machine_description("cpu"), "model": args.model, "rows": []}
    _, train_tf, _ = create_model_and_transforms(args.model, pretrained="none")
    collate = Collator(get_tokenizer(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = add_captions(synthetic_records(root, args.n, args.seed, (480, 640)), args.seed)
        write_records(root / "records.jsonl", records)
        t = time.perf_counter()
        index, _ = write_shards(root / "records.jsonl", root / "shards", shard_size=args.shard_size)
        report["write_s"] = time.perf_counter() - t
        report["data"] = (f"synthetic world, {len(records)} images as 640x480 JPEG, {len(index['shards'])} shards "
                          f"of {args.shard_size}; {args.heatmap} heatmaps; {args.model} transforms "
                          f"({train_tf.resolution} px), batch {args.batch}")
        sources = {"image folder (records)": FocusDataset(root / "records.jsonl", transform=train_tf,
                                                          heatmap=args.heatmap, seed=args.seed),
                   "shards": ShardDataset(root / "shards", train_tf, heatmap=args.heatmap, seed=args.seed)}
        for ds in sources.values():  # warm-up (lazy imports, first calls of the transforms), untimed
            epoch_rate(ds, args.batch, 0, collate, args.seed)
        for workers in args.workers:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
            for rep in range(args.repeats):  # alternating order, so drift on a shared machine hits both
                for name in (list(sources) if rep % 2 == 0 else list(sources)[::-1]):
                    runs[name].append(epoch_rate(sources[name], args.batch, workers, collate, args.seed))
            for name, res in runs.items():
                rates = sorted(r["images_per_s"] for r in res)
                row = {**res[0], "images_per_s": statistics.median(rates), "all_images_per_s": rates}
                report["rows"].append({"source": name, **row})
                print(f"[shards] {name}, {workers} workers: {row['images_per_s']:.1f} images/s (median of "
                      f"{', '.join(f'{r:.1f}' for r in rates)})", flush=True)
    _print(report)
    return report


def _print(report: dict[str, Any]) -> None:
    rows = [[r["source"], r["workers"], r["images"], r["images_per_s"], ", ".join(f"{v:.0f}" for v in r["all_images_per_s"]),
             r["first_batch_s"]] for r in report["rows"]]
    print(f"- date: {report['date']}; command: `{report['command']}`")
    print(f"- machine: {C.machine_line(report['machine'])}")
    print(f"- data: {report['data']}; writing the shards took {report['write_s']:.2f} s")
    print()
    print(C.markdown_table(["source", "workers", "images", "images/s (median)", "runs", "first batch s"], rows))
    for w in sorted({r["workers"] for r in report["rows"]}):
        pair = {r["source"]: r["images_per_s"] for r in report["rows"] if r["workers"] == w}
        print(f"{w} workers: shards / image folder = {pair['shards'] / pair['image folder (records)']:.2f}x", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="synthetic world size")
    p.add_argument("--model", default="focusclip-lite0-minilm", help="whose transforms and tokenizer (224 px)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--heatmap", choices=("parts", "person"), default="parts")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads in the main process (default 1, as in each DataLoader worker: with 2, the "
                        "per-sample tensor ops fight over the cores and the numbers swing by 2-5x)")
    p.add_argument("--repeats", type=int, default=3, help="epochs per source and worker count (median reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true")
    return C.parse_args(p, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging(silence_truncation=True)
    return run(args)


if __name__ == "__main__":
    main()

"""``focusclip data shards``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("shards", help="write a dataset as WebDataset tar shards (train with data.format=shards)",
                        description="Cut RECORDS (a records JSONL or a custom CSV/JSONL) into OUT/shard-NNNNNN.tar "
                        "files of --shard-size samples (image bytes, the record as JSON, its captions as text) and "
                        "OUT/index.json. Rerunning the same command continues after the last finished shard.")
    p.add_argument("records", help="dataset file (records .jsonl or custom .csv/.jsonl)")
    p.add_argument("--out", required=True, help="output folder for the shards and index.json")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the order records are written in (default 0)")
    p.add_argument("--no-shuffle", action="store_true", help="keep the file's order (training still shuffles shards)")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.data.shards import write_shards
    from focusclip.io import check_dir_target, check_not_inputs

    check_dir_target("--out", args.out)
    check_not_inputs({"--out": args.out}, {"RECORDS": args.records})
    index, counts = write_shards(args.records, args.out, shard_size=args.shard_size, seed=args.seed,
                                 shuffle=not args.no_shuffle)
    print(counts.format(f"{args.records} -> {args.out}"))
    return 0

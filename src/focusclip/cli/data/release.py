"""``focusclip data release``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, split_files_out


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("release", help="records from the released MPII Pose Descriptions (paper setting)",
                        description="Build OUT/train.jsonl and OUT/val.jsonl from the MPII Pose Descriptions "
                        "release (<root>/<llm>/<split>.json). The paper trains on gpt-4-0613 train and validates "
                        "on gpt-3.5-turbo-0613 val; a missing LLM/split is an error, never substituted.")
    p.add_argument("--root", required=True, help="release folder holding <llm>/train.json, <llm>/val.json")
    p.add_argument("--images", required=True, help="folder of the MPII images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train-llm", default="gpt-4-0613", help="LLM of the train captions (default gpt-4-0613)")
    p.add_argument("--val-llm", default="gpt-3.5-turbo-0613",
                   help="LLM of the val captions (default gpt-3.5-turbo-0613)")
    p.add_argument("--overwrite", action="store_true", help="replace train.jsonl / val.jsonl already in OUT")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.data.records import write_records
    from focusclip.data.release import release_to_records
    from focusclip.io import check_dir_target, check_no_overwrite, check_not_inputs

    check_dir_target("--out", args.out)
    outputs = split_files_out(args.out, ("train", "val"))
    check_not_inputs({"--out": args.out, **outputs}, {"--root": args.root, "--images": args.images})
    check_no_overwrite(outputs.values(), args.overwrite)  # the release's own files are <root>/<llm>/<split>.json
    for split, llm in (("train", args.train_llm), ("val", args.val_llm)):
        records = release_to_records(args.root, llm, split, args.images, relative_to=args.out)
        n = write_records(Path(args.out) / f"{split}.jsonl", records)
        no_text = sum(not r["captions"] for r in records)
        print(f"{split}: {n} records from {llm} ({no_text} without a description) -> "
              f"{Path(args.out) / f'{split}.jsonl'}")
    return 0

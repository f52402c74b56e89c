"""``focusclip data coco``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, split_files_out


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("coco", help="COCO person keypoints + captions (as distributed) -> train/val records",
                        description="Read ROOT/annotations/person_keypoints_{train,val}2017.json and "
                        "captions_{train,val}2017.json with ROOT/{train,val}2017/ and write OUT/<split>.jsonl: one "
                        "record per image with its people (COCO's 17 keypoints as MPII's 16 joints) and its captions. "
                        "Crowd regions and small or sparsely labelled people are skipped and counted.")
    p.add_argument("--root", required=True, help="the COCO folder (annotations/, train2017/, val2017/)")
    p.add_argument("--out", required=True, help="output folder for train.jsonl / val.jsonl")
    p.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"],
                   help="which splits to convert (default: train val)")
    p.add_argument("--min-area", type=float, default=1024.0,
                   help="skip people whose annotated area is below this many pixels (default 32x32)")
    p.add_argument("--min-keypoints", type=int, default=1, help="skip people with fewer labelled keypoints (default 1)")
    p.add_argument("--visibility", choices=["annotated", "strict"], default="annotated",
                   help="'annotated': labelled keypoints count as visible, occluded ones are listed in 'occluded' "
                        "(default); 'strict': only keypoints COCO marks visible (v=2)")
    p.add_argument("--no-captions", action="store_true", help="do not read captions_<split>2017.json")
    p.add_argument("--include-empty", action="store_true",
                   help="also write images without a kept person (their heatmap is then the whole image)")
    p.add_argument("--overwrite", action="store_true", help="replace train.jsonl / val.jsonl already in OUT")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.data.coco import write_coco
    from focusclip.io import check_dir_target, check_no_overwrite, check_not_inputs

    check_dir_target("--out", args.out)
    outputs = split_files_out(args.out, args.splits)
    check_not_inputs({"--out": args.out, **outputs}, {"--root": args.root})
    check_no_overwrite(outputs.values(), args.overwrite)
    written, counts = write_coco(args.root, args.out, args.splits, min_area=args.min_area,
                                 min_keypoints=args.min_keypoints, visibility=args.visibility,
                                 captions=not args.no_captions, include_empty=args.include_empty)
    print(counts.format(f"COCO {args.root} -> {args.out}"))
    for path in written.values():
        print(f"wrote {path}")
    return 0

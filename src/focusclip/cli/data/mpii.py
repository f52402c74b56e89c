"""``focusclip data mpii``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, split_files_out


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("mpii", help="convert the official MPII .mat annotation to train/val JSONL records",
                        description="Convert mpii_human_pose_v1_u12_1.mat to OUT/train.jsonl and OUT/val.jsonl "
                        "(one record per image). The split comes from mmpose's split files when given, else a "
                        "seeded split of MPII's train images. Image paths are written relative to OUT "
                        "(absolute when --images is absolute).")
    p.add_argument("--annotations", required=True, help="mpii_human_pose_v1_u12_1.mat")
    p.add_argument("--images", required=True, help="folder of the MPII images")
    p.add_argument("--out", required=True, help="output folder for train.jsonl / val.jsonl")
    p.add_argument("--split-train", help="mmpose train split file (e.g. annotations/mpii_train.json)")
    p.add_argument("--split-val", help="mmpose val split file (e.g. annotations/mpii_val.json)")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="share of train images that go to val without split files (default 0.15)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split without split files (default 0)")
    p.add_argument("--include-test", action="store_true", help="also write test images to OUT/test.jsonl")
    p.add_argument("--visibility", choices=["annotated", "strict"], default="annotated",
                   help="'annotated': every annotated joint is visible (mmpose / release semantics, default); "
                   "'strict': joints MPII marks is_visible=0 get visible 0")
    p.add_argument("--no-sizes", action="store_true", help="do not open images to record width/height")
    p.add_argument("--overwrite", action="store_true", help="replace train.jsonl / val.jsonl already in OUT")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.data.mpii import convert_mpii, format_conversion_stats, write_mpii
    from focusclip.errors import UsageError
    from focusclip.io import check_dir_target, check_no_overwrite, check_not_inputs

    if bool(args.split_train) != bool(args.split_val):
        raise UsageError("give both --split-train and --split-val, or neither")
    check_dir_target("--out", args.out)
    outputs = split_files_out(args.out, ("train", "val", "test"))
    check_not_inputs({"--out": args.out, **outputs},
                     {"--annotations": args.annotations, "--images": args.images, "--split-train": args.split_train,
                      "--split-val": args.split_val})
    check_no_overwrite(outputs.values(), args.overwrite)
    splits = {"train": args.split_train, "val": args.split_val} if args.split_train else None
    by_split, stats = convert_mpii(args.annotations, args.images, split_files=splits,
                                   val_fraction=args.val_fraction, seed=args.seed,
                                   include_test=args.include_test, visibility=args.visibility,
                                   relative_to=args.out, read_sizes=not args.no_sizes)
    written = write_mpii(by_split, args.out)
    print(format_conversion_stats(stats))
    for split, path in written.items():
        print(f"wrote {path} ({len(by_split.get(split, []))} records)")
    return 0

"""``focusclip data cub``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, split_files_out


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("cub", help="CUB-200-2011 -> bird training records (box, 15 parts, texts)",
                        description="Write OUT/<split>.jsonl from the CUB-200-2011 release: the bird box and the 15 "
                        "part locations (for the points / parts heatmaps), the species, and texts: the ten captions "
                        "of Reed et al. 2016 (text_c10) when given, else a rule-based bird description. Splits: "
                        "'official' (train_test_split.txt -> train.jsonl, test.jsonl) or 'zeroshot' (seen classes "
                        "-> train.jsonl + val.jsonl, unseen classes -> unseen.jsonl).")
    p.add_argument("--root", required=True, help="the CUB_200_2011 folder (or the folder above it)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", choices=["official", "zeroshot"], default="official",
                   help="official: train_test_split.txt; zeroshot: seen classes for training, unseen for testing")
    p.add_argument("--text-c10", metavar="DIR", help="Reed et al.'s text_c10 folder (<class>/<image>.txt)")
    p.add_argument("--seen-classes", metavar="FILE",
                   help="zeroshot: training classes, one folder name per line (default ROOT/trainvalclasses.txt)")
    p.add_argument("--unseen-classes", metavar="FILE",
                   help="zeroshot: test classes (default ROOT/testclasses.txt)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="zeroshot: share of seen images in val.jsonl")
    p.add_argument("--seed", type=int, default=0, help="seed of the val share and the description phrasing")
    p.add_argument("--no-species", action="store_true", help="rule descriptions do not name the species")
    p.add_argument("--no-sizes", action="store_true", help="do not open images to record width/height")
    p.add_argument("--overwrite", action="store_true", help="replace the .jsonl files and classes.json already in OUT")
    return p


def run(args: argparse.Namespace) -> int:
    import functools
    from pathlib import Path

    from focusclip.data.cub import convert_cub, write_cub
    from focusclip.describe.birds import describe_bird
    from focusclip.io import check_dir_target, check_no_overwrite, check_not_inputs

    check_dir_target("--out", args.out)
    names = ("train", "test") if args.split == "official" else ("train", "val", "unseen")
    outputs = [*split_files_out(args.out, names).values(), Path(args.out) / "classes.json"]
    check_not_inputs({"--out": args.out}, {"--root": args.root, "--text-c10": args.text_c10})
    check_no_overwrite(outputs, args.overwrite)
    by_split, counts = convert_cub(args.root, args.split, text_c10=args.text_c10, seen_classes=args.seen_classes,
                                   unseen_classes=args.unseen_classes, val_fraction=args.val_fraction,
                                   seed=args.seed, relative_to=args.out, read_sizes=not args.no_sizes,
                                   describe=functools.partial(describe_bird, seed=args.seed,
                                                              species=not args.no_species))
    written = write_cub(by_split, args.out)
    print(counts.format(f"CUB {args.root} ({args.split} split) -> {args.out}"))
    for path in written.values():
        print(f"wrote {path}")
    return 0

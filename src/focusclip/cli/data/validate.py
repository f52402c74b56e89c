"""``focusclip data validate``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, non_negative_int, positive_int


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("validate", help="check a dataset: images, joints, captions, heatmaps",
                        description="Check every record of DATASET (a records .jsonl, a custom .csv/.jsonl, "
                        "or a folder with train.jsonl/val.jsonl) with the same rules the loaders apply, and print "
                        "counts per problem with the first offending records. Exit code 1 when there are errors.")
    p.add_argument("dataset", metavar="DATASET", help="a records or custom file, or a folder of split files")
    p.add_argument("--root", help="folder image paths are relative to (default: the file's folder)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-images", action="store_true", help="only check that image files exist (no decoding)")
    p.add_argument("--require-captions", action="store_true", help="a record without captions is an error")
    p.add_argument("--examples", type=non_negative_int, default=5,
                   help="offending records shown per problem (default 5)")
    p.add_argument("--workers", type=positive_int, default=4,
                   help="parallel worker threads decoding images (default 4)")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.data.validate import validate_dataset
    from focusclip.io import json_text

    report = validate_dataset(args.dataset, root=args.root, check_images=not args.no_images,
                              require_captions=args.require_captions, workers=args.workers,
                              max_examples=args.examples)
    print(json_text(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1

"""``focusclip data synth``."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, non_negative_int, positive_int


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("synth", help="render the built-in synthetic world (images + JSONL records)",
                        description="Render articulated MPII-skeleton people doing 12 activities (3 age "
                        "groups, 5 expressions) on cluttered backgrounds: DIR/images/*.jpg, train.jsonl, "
                        "val.jsonl, eval.jsonl, classes.json. Same seed -> identical output.")
    p.add_argument("--out", required=True, help="output folder DIR")
    p.add_argument("--n", type=positive_int, required=True, help="number of training images (10%% go to val)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224, at least 32)")
    p.add_argument("--eval-n", type=non_negative_int, default=None,
                   help="held-out eval images from a separate seed stream (default max(12, n/5))")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the n images in val.jsonl")
    p.add_argument("--crowd", type=non_negative_int, default=0,
                   help="multi-person scenes: this many more full-size, unannotated people (other activities) "
                        "beside the labelled subject, 0..3 (default 0)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="parallel worker processes (the output does not depend on it)")
    p.add_argument("--no-sheet", action="store_true", help="do not write DIR/contact_sheet.png")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a world already in DIR")
    return p


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from focusclip.data.records import read_records
    from focusclip.data.synthetic import contact_sheet, generate_world

    t0 = time.monotonic()
    info = generate_world(args.out, n=args.n, seed=args.seed, image_size=args.size, eval_n=args.eval_n,
                          workers=args.workers, val_fraction=args.val_fraction, overwrite=args.overwrite,
                          crowd=args.crowd)
    took = time.monotonic() - t0
    if not args.no_sheet:
        recs = read_records(info["train_jsonl"])
        if recs:
            contact_sheet(recs, args.out, Path(args.out) / "contact_sheet.png", n=16)
    total = info["train"] + info["val"] + info["eval"]
    print(f"synthetic world in {args.out}: train={info['train']} val={info['val']} eval={info['eval']} "
          f"({total} images at {args.size}px in {took:.1f}s, {total / max(took, 1e-9):.0f} img/s)")
    return 0

"""``focusclip data detect``."""

from __future__ import annotations

import argparse
import sys

from focusclip.cli._args import (
    DETECTOR_NAMES,
    Subparsers,
    add_detector_options,
    detector_options,
    positive_int,
)


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser("detect", help="records from photos without keypoints: detected people (MPII joints, boxes)",
                        description="Find people in IMAGES (files or folders, searched recursively) and append one "
                        "record per image to --out: MPII joints with visibility, person and face boxes. Rerunning "
                        "skips images already there; unreadable images go to <out>.errors.jsonl and are retried "
                        "next time. Then write texts with `focusclip describe`.")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="records JSONL (appended to; rerun to resume)")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default="mediapipe",
                   help="mediapipe: BlazePose + face detection, offline, every person whose face shows (default); "
                        "mediapipe-tasks: MediaPipe's PoseLandmarker, needs a .task file; rtmo: one-stage "
                        "multi-person; rtmpose: top-down on YOLOX or mediapipe boxes; all but mediapipe need "
                        "--detector-weights")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="processes, each with its own detector (default 1; 2 uses both cores of a 2-core machine)")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import functools

    from focusclip.detect import create_detector
    from focusclip.detect.run import detect_images, errors_path
    from focusclip.io import check_file_target, check_not_inputs

    options = detector_options(args.detector, args)  # usage errors first
    check_file_target("--out", args.out)
    check_not_inputs({"--out": args.out, "--out's errors": errors_path(args.out)},
                     {f"IMAGE {i}": p for i, p in enumerate(args.images)})
    detector = create_detector(args.detector, **options)
    try:
        counts = detect_images(args.images, args.out, detector, workers=args.workers,
                               factory=functools.partial(create_detector, args.detector, **options))
    except KeyboardInterrupt:
        print(f"interrupted; finished images are in {args.out}; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        detector.close()
    print(counts.format(f"{args.detector} -> {args.out}"))
    if counts.skipped:
        print(f"{sum(counts.skipped.values())} images failed (listed in {errors_path(args.out)}); rerun the same "
              "command to retry them", file=sys.stderr)
        return 1
    return 0

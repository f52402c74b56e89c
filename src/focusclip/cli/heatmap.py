"""``focusclip heatmap``: draw an ROI heatmap (and skeleton) over an image."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import (
    DETECTOR_NAMES,
    Subparsers,
    add_detector_options,
    make_detector,
    positive_float,
    positive_int,
)

logger = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("heatmap", help="draw an ROI heatmap (and skeleton) over an image")
    p.add_argument("image", help="input image")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--keypoints", metavar="FILE",
                     help="JSON: a record with 'people', a list of people {joints, visible}, "
                          "or a 16x2 / Px16x2 array ([-1, -1] = invisible), in the image's displayed pixels")
    src.add_argument("--boxes", metavar="FILE", help="JSON list of [x1, y1, x2, y2] boxes")
    src.add_argument("--detect", nargs="?", const="mediapipe", choices=DETECTOR_NAMES, metavar="DETECTOR",
                     help="find the people with a detector (mediapipe, the offline default; mediapipe-tasks or "
                          "rtmo with --detector-weights)")
    p.add_argument("--mode", choices=["person", "parts"], default="person",
                   help="keypoint heatmap: one Gaussian per person or per body-part group")
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"),
                   help="heatmap resolution (default: the image's)")
    p.add_argument("--min-sigma", type=positive_float, default=1.0, help="smallest Gaussian sigma, heatmap pixels")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay, 0..1")
    p.add_argument("--out", required=True, help="overlay PNG to write")
    p.add_argument("--save-heatmap", metavar="PNG", help="also write the heatmap as an 8-bit grey PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out / --save-heatmap files")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.drawing import heatmap_to_image
    from focusclip.images import open_rgb
    from focusclip.io import check_file_target, check_no_overwrite, check_not_inputs
    from focusclip.overlays import detected_overlay, overlay_from_files, write_png

    outputs = {"--out": args.out, "--save-heatmap": args.save_heatmap}
    check_not_inputs(outputs, {"IMAGE": args.image, "--keypoints": args.keypoints, "--boxes": args.boxes})
    for name, path in outputs.items():
        if path:
            check_file_target(name, path)
    check_no_overwrite([p for p in outputs.values() if p], args.overwrite)
    image = open_rgb(args.image)
    if args.detect:
        with make_detector(args.detect, args) as detector:
            overlay, heat = detected_overlay(image, args.image, detector, args.mode, args.size, args.min_sigma,
                                             args.alpha)
    else:
        overlay, heat = overlay_from_files(image, args.keypoints, args.boxes, args.mode, args.size,
                                           args.min_sigma, args.alpha)
    write_png(args.out, overlay)
    logger.info("overlay written to %s", args.out)
    if args.save_heatmap:
        write_png(args.save_heatmap, heatmap_to_image(heat))
        logger.info("heatmap (%dx%d) written to %s", heat.shape[1], heat.shape[0], args.save_heatmap)
    return 0

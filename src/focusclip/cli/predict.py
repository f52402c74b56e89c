"""``focusclip predict``: zero-shot predictions for images."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import (
    DEFAULT_TEMPLATE_HELP,
    DETECTOR_NAMES,
    MODEL_HELP,
    Subparsers,
    add_detector_options,
    make_detector,
    positive_float,
    positive_int,
    read_lines,
)

logger = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="zero-shot predictions for images with a trained model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help="comma-separated class names, e.g. 'running,sitting,jumping'")
    labels.add_argument("--labels-file", help="a text file with one class name per line")
    p.add_argument("--template", action="append", default=None, help=DEFAULT_TEMPLATE_HELP)
    p.add_argument("--topk", type=positive_int, default=3, help="labels shown per image (default 3)")
    p.add_argument("--scale", type=positive_float, default=None,
                   help="softmax scale of the probabilities (default: the model's own: 1/temperature for "
                        "NT-Xent-trained models, else its logit scale)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--keypoints", action="append", default=None,
                   help="keypoints JSON per image (in order; see `focusclip heatmap`): one answer per person it "
                        "lists (numbered 1, 2, ... in file order), beside the whole image's, and the ROI overlay "
                        "with the people numbered")
    p.add_argument("--boxes", action="append", default=None,
                   help="boxes JSON per image ([[x1, y1, x2, y2], ...]): one answer per box, as --keypoints")
    p.add_argument("--detect", nargs="?", const="mediapipe", choices=DETECTOR_NAMES, metavar="DETECTOR",
                   help="find the people with a detector (default mediapipe): one answer per person found, as "
                        "--keypoints")
    p.add_argument("--focus", default=None, metavar="MODE",
                   help="how each person is focused: auto (the default: the model's own mechanism, else attention on a "
                        "ViT and blur on another tower), "
                        "attention (any ViT, untouched CLIPs included), crop, blur, circle, dim (every model), "
                        "alpha / pool (models trained with them); docs/focus.md")
    p.add_argument("--person", type=positive_int, default=None, metavar="K",
                   help="ask about person K only (1-based, as numbered on the overlay)")
    p.add_argument("--csv", default=None, metavar="PATH",
                   help="also write the answers as CSV: one row per image, person (0 = the whole image) and rank")
    p.add_argument("--overlay-dir", default=".", help="where overlays go (<image stem>_roi.png)")
    p.add_argument("--overwrite", action="store_true", help="replace overlays (and --csv) already there")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.errors import UsageError
    from focusclip.io import json_text
    from focusclip.predict import DEFAULT_TEMPLATE, ZeroShotClassifier, format_predictions

    # one label per line of a file; a --labels text is split at commas (focusclip.labels.parse_labels)
    labels = read_lines(args.labels_file, "labels file") if args.labels_file else args.labels
    sources = [f"--{kind}" for kind in ("keypoints", "boxes", "detect") if getattr(args, kind)]
    if len(sources) > 1:
        raise UsageError(f"give the people one way: {' or '.join(sources)}, not both")
    if not sources:
        for flag, value in (("--focus", args.focus), ("--person", args.person), ("--csv", args.csv)):
            if value is not None:
                raise UsageError(f"{flag} asks about people: give them with --keypoints, --boxes or --detect")
        clf = ZeroShotClassifier.from_pretrained(args.model, labels, args.template or [DEFAULT_TEMPLATE],
                                                 device=args.device, scale=args.scale)
        results = clf.predict(args.images, topk=args.topk, batch_size=args.batch_size)
        print(json_text(results, indent=2) if args.json else format_predictions(results))
        return 0
    return _run_people(args, labels)


def _run_people(args: argparse.Namespace, labels) -> int:
    """One answer per person (issue 20): the people's subjects, numbered overlays, predict_people, output."""
    from focusclip.io import check_file_target, check_no_overwrite, check_not_inputs, json_text
    from focusclip.model.focus import FOCUS_AT_INFERENCE
    from focusclip.model.focus.inference import resolve_focus
    from focusclip.overlays import check_overlay_targets, write_people_overlay
    from focusclip.people import read_subjects
    from focusclip.predict import DEFAULT_TEMPLATE, ZeroShotClassifier, format_people, write_people_csv

    focus = args.focus or "auto"
    if focus not in FOCUS_AT_INFERENCE:
        from focusclip.errors import UsageError

        raise UsageError(f"--focus {focus!r}: choose one of {', '.join(FOCUS_AT_INFERENCE)}")
    files = {kind: _per_image(getattr(args, kind), args.images, kind) for kind in ("keypoints", "boxes")
             if getattr(args, kind)}
    inputs = {f"IMAGE {i}": p for i, p in enumerate(args.images)}
    for kind, paths in files.items():
        inputs |= {f"--{kind} {i}": p for i, p in enumerate(paths)}
    if args.csv:
        check_file_target("--csv", args.csv)
        check_not_inputs({"--csv": args.csv}, inputs)
        check_no_overwrite([args.csv], args.overwrite)
    check_overlay_targets(args.images, args.overlay_dir, args.overwrite)
    clf = ZeroShotClassifier.from_pretrained(args.model, labels, args.template or [DEFAULT_TEMPLATE],
                                             device=args.device, scale=args.scale)
    resolve_focus(clf.model, focus)  # a mode this model cannot use fails before any image is read
    if args.detect:
        with make_detector(args.detect, args) as detector:
            subjects = read_subjects(args.images, detector=detector)
    else:
        subjects = read_subjects(args.images, keypoints=files.get("keypoints"), boxes=files.get("boxes"))
    results = clf.predict_people(args.images, subjects, focus=focus, topk=args.topk, person=args.person,
                                 batch_size=args.batch_size)
    for i, (image, r) in enumerate(zip(args.images, results)):
        roi = {f"--{kind}": paths[i] for kind, paths in files.items()}
        r["overlay"] = str(write_people_overlay(image, args.overlay_dir, args.images, subjects[i], roi))
    if args.csv:
        write_people_csv(args.csv, results)
        logger.info("wrote %s", args.csv)
    print(json_text(results, indent=2) if args.json else format_people(results))
    return 0


def _per_image(files: list[str], images: list[str], kind: str) -> list[str]:
    from focusclip.errors import UsageError

    if len(files) != len(images):
        raise UsageError(f"--{kind} was given {len(files)} times for {len(images)} images; give one per image")
    return files

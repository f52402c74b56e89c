"""``focusclip predict``: zero-shot predictions for images."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import (
    DEFAULT_TEMPLATE_HELP,
    DETECTOR_NAMES,
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
    p.add_argument("--model", required=True, help="a saved model directory (focusclip.save_model), a CLIP name "
                                                  "(openclip:ViT-B-16/openai, hfclip:FOLDER, ...) or a registered "
                                                  "model name (see `focusclip models`)")
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
                   help="keypoints JSON per image (in order; see `focusclip heatmap`): draw the ROI overlay and, "
                        "for a model whose focus acts at inference (roi.mode attention/alpha/pool), ask about "
                        "the people it marks")
    p.add_argument("--boxes", action="append", default=None,
                   help="boxes JSON per image: the ROI overlay and focus, as --keypoints")
    p.add_argument("--detect", nargs="?", const="mediapipe", choices=DETECTOR_NAMES, metavar="DETECTOR",
                   help="find the people with a detector (default mediapipe): the ROI overlay and focus, as "
                        "--keypoints")
    p.add_argument("--overlay-dir", default=".", help="where overlays go (<image stem>_roi.png)")
    p.add_argument("--overwrite", action="store_true", help="replace overlays already in --overlay-dir")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from focusclip.overlays import check_overlay_targets, write_overlay
    from focusclip.predict import DEFAULT_TEMPLATE, ZeroShotClassifier, format_predictions

    # one label per line of a file; a --labels text is split at commas (focusclip.labels.parse_labels)
    labels = read_lines(args.labels_file, "labels file") if args.labels_file else args.labels
    overlays = {kind: _per_image(getattr(args, kind), args.images, kind) for kind in ("keypoints", "boxes")
                if getattr(args, kind)}
    if overlays or args.detect:
        check_overlay_targets(args.images, args.overlay_dir, args.overwrite)
    clf = ZeroShotClassifier.from_pretrained(args.model, labels, args.template or [DEFAULT_TEMPLATE],
                                             device=args.device, scale=args.scale)
    written: dict[int, str] = {}
    heatmaps: list = [None] * len(args.images)
    for kind, files in overlays.items():
        for i, (image, spec) in enumerate(zip(args.images, files)):
            written[i], heatmaps[i] = write_overlay(image, args.overlay_dir, args.images, **{kind: spec})
    if args.detect:
        with make_detector(args.detect, args) as detector:
            for i, image in enumerate(args.images):
                written[i], heatmaps[i] = write_overlay(image, args.overlay_dir, args.images, detector=detector)
    focus = bool(written) and clf.focus_at_inference
    if written and not focus:
        logger.info("this model's focus (roi.mode) does not act at inference: the people only draw the overlays")
    results = clf.predict(args.images, topk=args.topk, batch_size=args.batch_size,
                          heatmaps=heatmaps if focus else None)
    for i, r in enumerate(results):
        if i in written:
            r["overlay"] = str(written[i])
            r["focus"] = focus and heatmaps[i] is not None
    print(json.dumps(results, indent=2) if args.json else format_predictions(results))
    return 0


def _per_image(files: list[str], images: list[str], kind: str) -> list[str]:
    from focusclip.errors import UsageError

    if len(files) != len(images):
        raise UsageError(f"--{kind} was given {len(files)} times for {len(images)} images; give one per image")
    return files

"""The command line: ``focusclip <verb> ...``. Parses arguments, calls the library, prints results.

Every verb is one ``_add_<verb>(subparsers)`` function that builds its parser and sets ``func`` to a
``_run_<verb>(args) -> int`` function; ``_VERBS`` lists them. Library imports happen inside the run
functions so that ``focusclip --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

log = logging.getLogger("focusclip")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


# --------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model configs")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from focusclip.factory import get_model_config, list_models

    for name in list_models():
        cfg = get_model_config(name)
        roi = "ROI" if cfg.get("roi", {}).get("enabled") else "   "
        print(f"{name:28s} {roi}  vision={cfg['vision']['timm_model_name']}  "
              f"text={cfg['text'].get('hf_model_name', 'tiny')}  embed_dim={cfg['embed_dim']}")
    return 0


# -------------------------------------------------------------------------------------- heatmap
def _add_heatmap(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("heatmap", help="draw an ROI heatmap (and skeleton) over an image")
    p.add_argument("image", help="input image")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--keypoints", metavar="FILE",
                     help="JSON: a record with 'people', a list of people {joints, visible}, "
                          "or a 16x2 / Px16x2 array ([-1, -1] = invisible)")
    src.add_argument("--boxes", metavar="FILE", help="JSON list of [x1, y1, x2, y2] boxes")
    p.add_argument("--mode", choices=["person", "parts"], default="person",
                   help="keypoint heatmap: one Gaussian per person or per body-part group")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="heatmap resolution (default: the image's)")
    p.add_argument("--min-sigma", type=float, default=1.0, help="smallest Gaussian sigma, heatmap pixels")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay")
    p.add_argument("--out", required=True, help="overlay PNG to write")
    p.add_argument("--save-heatmap", metavar="PNG", help="also write the heatmap as an 8-bit grey PNG")
    p.set_defaults(func=_run_heatmap)


def _run_heatmap(args: argparse.Namespace) -> int:
    from PIL import Image

    from focusclip import heatmaps as hm
    from focusclip.io import atomic_save

    try:
        with Image.open(args.image) as im:
            image = im.convert("RGB")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ValueError(f"{args.image}: not a readable image ({e})") from None
    img_size = (image.height, image.width)
    size = tuple(args.size) if args.size else img_size
    if args.keypoints:
        joints, visible, src_size = hm.read_keypoints_file(args.keypoints)
        src_size = src_size or img_size
        heat = hm.keypoints_heatmap(joints, visible, size, args.mode, src_size, args.min_sigma)
        overlay = hm.overlay_heatmap(image, heat, alpha=args.alpha)
        scale = (img_size[1] / src_size[1], img_size[0] / src_size[0])
        overlay = hm.draw_skeleton(overlay, joints * scale, visible)
        log.info("%d people, %d visible joints", len(joints), int((visible > 0).sum()))
    else:
        boxes = hm.read_boxes_file(args.boxes)
        heat = hm.boxes_heatmap(boxes, size, img_size, args.min_sigma)
        overlay = hm.overlay_heatmap(image, heat, alpha=args.alpha)
        log.info("%d boxes", len(boxes))
    atomic_save(args.out, lambda f: overlay.save(f, format="PNG"))
    log.info("overlay written to %s", args.out)
    if args.save_heatmap:
        atomic_save(args.save_heatmap, lambda f: hm.heatmap_to_image(heat).save(f, format="PNG"))
        log.info("heatmap (%dx%d) written to %s", size[1], size[0], args.save_heatmap)
    return 0


# ---------------------------------------------------------------------------------- registry
_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_heatmap,
    _add_models,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focusclip",
        description="FocusCLIP: subject-focused language-image pretraining and zero-shot classification.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for add in _VERBS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as e:
        log.debug("error", exc_info=True)
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"focusclip {args.verb}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

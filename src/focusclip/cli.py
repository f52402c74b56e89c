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


# ------------------------------------------------------------------------------------- describe
def _add_describe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "describe",
        help="write pose descriptions for records (LLM or offline rules; resumable), merge them, or --stats",
        description="Describe each record's pose with the paper's single-shot LLM prompt (any OpenAI-"
        "compatible endpoint) or the offline rule-based describer. Results are appended to --out; "
        "rerunning the same command resumes (finished records are skipped, failed ones retried).",
    )
    p.add_argument("records", nargs="?", help="records JSONL")
    p.add_argument("--out", help="descriptions JSONL (appended to; rerun to resume)")
    p.add_argument("--backend", choices=["openai", "rules"], help="openai: LLM endpoint; rules: offline")
    g = p.add_argument_group("openai backend")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    g.add_argument("--model", default="gpt-4-0613", help="model name (default: %(default)s, as in the paper)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="name of the environment variable holding the API key (default: %(default)s)")
    g.add_argument("--workers", type=int, default=8, help="concurrent requests (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=0.5)
    g.add_argument("--max-tokens", type=int, default=512)
    g.add_argument("--frequency-penalty", type=float, default=1.0)
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    g.add_argument("--max-retries", type=int, default=6, help="retries on 429/5xx/timeouts (default: %(default)s)")
    g.add_argument("--retry-base-delay", type=float, default=1.0, help="first backoff in seconds (doubles)")
    r = p.add_argument_group("rules backend")
    r.add_argument("--seed", type=int, default=0, help="seed of the phrasing variants")
    r.add_argument("--attributes", action=argparse.BooleanOptionalAction, default=True,
                   help="mention the records' attribute labels (age, expression) when present (default: on)")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--records-out", help="also write the records with their descriptions as captions here")
    p.add_argument("--caption-mode", choices=["replace", "append"], default="replace",
                   help="replace the records' captions or append to them (default: %(default)s)")
    p.add_argument("--merge", action="store_true", help="only merge --out into --records-out; describe nothing")
    p.add_argument("--stats", metavar="FILE", help="print statistics of a descriptions file and exit")
    p.add_argument("--json", action="store_true", help="with --stats: print JSON")
    p.set_defaults(func=_run_describe)


def _run_describe(args: argparse.Namespace) -> int:
    import json
    import os

    from focusclip.data.records import read_records
    from focusclip.describe import (
        OpenAIDescriber,
        RetryPolicy,
        RulesDescriber,
        describe_records,
        description_stats,
        format_stats,
        load_texts,
        merge_captions,
    )

    if args.stats:
        stats = description_stats(load_texts(args.stats))
        print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
        return 0
    if not args.records or not args.out:
        raise ValueError("give a records JSONL and --out DESCRIPTIONS.jsonl (or --stats FILE)")
    if args.merge:
        if not args.records_out:
            raise ValueError("--merge needs --records-out")
        n, described = merge_captions(args.records, args.out, args.records_out, args.caption_mode)
        print(f"{n} records ({described} with a description) -> {args.records_out}")
        return 0
    if args.backend is None:
        raise ValueError("choose --backend openai (LLM endpoint) or --backend rules (offline)")
    if args.backend == "rules":
        describer = RulesDescriber(seed=args.seed, attributes=args.attributes)
        workers = 1
    else:
        api_key = os.environ.get(args.api_key_env) or None
        if api_key is None and not args.base_url:
            raise ValueError(f"the environment variable {args.api_key_env} is not set; put your API key "
                             "there (or pass --base-url for a local server that needs none)")
        describer = OpenAIDescriber(
            args.model, base_url=args.base_url, api_key=api_key, timeout=args.timeout,
            temperature=args.temperature, max_tokens=args.max_tokens,
            frequency_penalty=args.frequency_penalty,
            retry=RetryPolicy(max_retries=args.max_retries, base_delay=args.retry_base_delay),
        )
        workers = args.workers
    records = read_records(args.records)
    try:
        summary = describe_records(records, args.out, describer, workers=workers, limit=args.limit)
    except KeyboardInterrupt:
        print(f"interrupted; finished results are in {args.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        if hasattr(describer, "close"):
            describer.close()
    print(f"{summary.described} described, {summary.failed} failed, {summary.skipped} already done "
          f"-> {args.out}")
    if args.records_out:
        n, described = merge_captions(args.records, args.out, args.records_out, args.caption_mode)
        print(f"{n} records ({described} with a description) -> {args.records_out}")
    if summary.failed:
        print(f"{summary.failed} records failed (error lines in {args.out}); rerun the same command to "
              "retry them", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------------- data
# `focusclip data <command>`: one `_add_data_<command>(dsub)` / `_run_data_<command>(args)` pair per
# command, listed in `_DATA_COMMANDS` below `_add_data`.

# data synth
def _add_data_synth(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("synth", help="render the built-in synthetic world (images + JSONL records)",
                        description="Render articulated MPII-skeleton people doing 12 activities (3 age "
                        "groups, 5 expressions) on cluttered backgrounds: DIR/images/*.jpg, train.jsonl, "
                        "val.jsonl, eval.jsonl, classes.json. Same seed -> identical output.")
    p.add_argument("--out", required=True, help="output folder DIR")
    p.add_argument("--n", type=int, required=True, help="number of training images (10%% go to val)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--eval-n", type=int, default=None,
                   help="held-out eval images from a separate seed stream (default max(12, n/5))")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the n images in val.jsonl")
    p.add_argument("--workers", type=int, default=1, help="worker processes (output does not depend on it)")
    p.add_argument("--no-sheet", action="store_true", help="do not write DIR/contact_sheet.png")
    p.set_defaults(func=_run_data_synth)


def _run_data_synth(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from focusclip.data.records import read_records
    from focusclip.data.synthetic import contact_sheet, generate_world

    t0 = time.monotonic()
    info = generate_world(args.out, n=args.n, seed=args.seed, image_size=args.size, eval_n=args.eval_n,
                          workers=args.workers, val_fraction=args.val_fraction)
    took = time.monotonic() - t0
    if not args.no_sheet:
        recs = read_records(info["train_jsonl"])
        if recs:
            contact_sheet(recs, args.out, Path(args.out) / "contact_sheet.png", n=16)
    total = info["train"] + info["val"] + info["eval"]
    print(f"synthetic world in {args.out}: train={info['train']} val={info['val']} eval={info['eval']} "
          f"({total} images at {args.size}px in {took:.1f}s, {total / max(took, 1e-9):.0f} img/s)")
    return 0


# data (the verb): add sibling commands (`data mpii`, `data validate`, ...) to this list.
_DATA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data_synth,
]


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build datasets (synthetic world, ...)")
    dsub = p.add_subparsers(dest="data_cmd", metavar="COMMAND")
    for add in _DATA_COMMANDS:
        add(dsub)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)


# ---------------------------------------------------------------------------------- registry
_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data,
    _add_describe,
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

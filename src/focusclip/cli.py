"""The command line: ``focusclip <verb> ...``. Parses arguments, calls the library, prints results.

Every verb is one ``_add_<verb>(subparsers)`` function that builds its parser and sets ``func`` to a
``_run_<verb>(args) -> int`` function; ``_VERBS`` lists them (``data`` commands: ``_DATA_COMMANDS``).
Library imports happen inside the run functions so that ``focusclip --help`` stays fast.

Errors: :func:`main` is the one place that turns an exception into one line ``focusclip <verb>: error:
...`` on stderr, exit status 2 for usage errors and 1 for failures; ``-v`` (before or after the verb) also
prints the traceback. Every command refuses to write over its own inputs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

logger = logging.getLogger("focusclip")

DEFAULT_TEMPLATE_HELP = "prompt template with {c} for the label (repeat to average several; default "\
                        "'a photo of a person {c}')"


class _VerbParser(argparse.ArgumentParser):
    """A verb's parser: accepts ``-v`` / ``-q`` after the verb too, and records its command name (``prog``)
    for error messages. Its defaults never override what the main parser already set."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="debug log output; errors show their traceback")
        self.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="warnings and errors only")
        self.set_defaults(command=self.prog)


def _bounded(cast: Callable[[str], float], lowest: float, strict: bool, noun: str) -> Callable[[str], float]:
    """An argparse ``type``: ``cast`` the text and require ``> lowest`` (strict) or ``>= lowest``."""
    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if value < lowest or (strict and value == lowest):
            raise argparse.ArgumentTypeError(f"must be {'more than' if strict else 'at least'} {lowest:g}, got {value}")
        return value

    return parse


_positive_int = _bounded(int, 1, False, "a whole number")
_non_negative_int = _bounded(int, 0, False, "a whole number")
_positive_float = _bounded(float, 0, True, "a number")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def _read_lines(path: str, what: str) -> list[str]:
    from focusclip.io import read_text

    return [line.strip() for line in read_text(path, what).splitlines() if line.strip()]


# --------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model configs")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from focusclip.model import get_model_config, list_models

    for name in list_models():
        cfg = get_model_config(name)
        roi = f"ROI:{cfg['roi'].get('mode', 'highlight')}" if cfg.get("roi", {}).get("enabled") else ""
        clip = cfg.get("clip") or {}
        if clip.get("open_clip_model"):
            towers = f"open_clip={clip['open_clip_model']}" + (f"/{clip['pretrained']}" if clip.get("pretrained") else "")
        elif clip.get("hf_clip_model"):
            towers = f"hf_clip={clip['hf_clip_model']}"
        else:
            towers = (f"vision={cfg['vision'].get('timm_model_name', '?')}  "
                      f"text={cfg['text'].get('hf_model_name', 'tiny')}  embed_dim={cfg['embed_dim']}")
        print(f"{name:28s} {roi:15s} {towers}")
    print("\nany CLIP by name: openclip:ARCH/TAG, openclip:ARCH@FILE, openclip:local-dir:FOLDER, "
          "hfclip:HUB_ID_OR_FOLDER; prefix focusclip: adds the ROI branch (docs/pretrained-clip.md)")
    return 0


# -------------------------------------------------------------------------------------- heatmap
def _add_heatmap(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("heatmap", help="draw an ROI heatmap (and skeleton) over an image")
    p.add_argument("image", help="input image")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--keypoints", metavar="FILE",
                     help="JSON: a record with 'people', a list of people {joints, visible}, "
                          "or a 16x2 / Px16x2 array ([-1, -1] = invisible), in the image's displayed pixels")
    src.add_argument("--boxes", metavar="FILE", help="JSON list of [x1, y1, x2, y2] boxes")
    src.add_argument("--detect", nargs="?", const="mediapipe", choices=["mediapipe", "rtmo"], metavar="DETECTOR",
                     help="find the people with a detector (mediapipe, the offline default, or rtmo)")
    p.add_argument("--mode", choices=["person", "parts"], default="person",
                   help="keypoint heatmap: one Gaussian per person or per body-part group")
    p.add_argument("--size", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="heatmap resolution (default: the image's)")
    p.add_argument("--min-sigma", type=_positive_float, default=1.0, help="smallest Gaussian sigma, heatmap pixels")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay, 0..1")
    p.add_argument("--out", required=True, help="overlay PNG to write")
    p.add_argument("--save-heatmap", metavar="PNG", help="also write the heatmap as an 8-bit grey PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing --out / --save-heatmap files")
    _add_detector_options(p)
    p.set_defaults(func=_run_heatmap)


def _run_heatmap(args: argparse.Namespace) -> int:
    from focusclip.drawing import heatmap_to_image, overlay_from_files
    from focusclip.images import open_rgb
    from focusclip.io import atomic_save, check_file_target, check_no_overwrite, check_not_inputs

    outputs = {"--out": args.out, "--save-heatmap": args.save_heatmap}
    check_not_inputs(outputs, {"IMAGE": args.image, "--keypoints": args.keypoints, "--boxes": args.boxes})
    for name, path in outputs.items():
        if path:
            check_file_target(name, path)
    check_no_overwrite([p for p in outputs.values() if p], args.overwrite)
    image = open_rgb(args.image)
    if args.detect:
        with _make_detector(args.detect, args) as detector:
            overlay, heat = _detected_overlay(image, args.image, detector, args.mode, args.size, args.min_sigma,
                                              args.alpha)
    else:
        overlay, heat = overlay_from_files(image, args.keypoints, args.boxes, args.mode, args.size,
                                           args.min_sigma, args.alpha)
    atomic_save(args.out, lambda f: overlay.save(f, format="PNG"))
    logger.info("overlay written to %s", args.out)
    if args.save_heatmap:
        atomic_save(args.save_heatmap, lambda f: heatmap_to_image(heat).save(f, format="PNG"))
        logger.info("heatmap (%dx%d) written to %s", heat.shape[1], heat.shape[0], args.save_heatmap)
    return 0


def _detected_overlay(image, name: str, detector, mode: str = "person", size=None, min_sigma: float = 1.0,
                      alpha: float = 0.5):
    """``(overlay, heatmap)`` of the people a detector finds in ``image`` (an empty map, warned, when none)."""
    from focusclip.drawing import overlay_from_detector

    overlay, heat, people = overlay_from_detector(image, detector, mode, size, min_sigma, alpha)
    if not people:
        logger.warning("%s: no person found; the ROI heatmap is empty", name)
    return overlay, heat


# ------------------------------------------------------------------------------------- describe
def _add_describe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "describe",
        help="write pose descriptions for records (LLM or offline rules; resumable), merge them, or --stats",
        description="Describe each record's pose with the paper's single-shot LLM prompt (any OpenAI-"
        "compatible endpoint) or the offline rule-based describer. Results are appended to --out; "
        "rerunning the same command resumes (finished records are skipped, failed ones retried).",
    )
    p.add_argument("records", nargs="?", help="records JSONL, or a custom CSV/JSONL")
    p.add_argument("--out", help="descriptions JSONL (appended to; rerun to resume)")
    p.add_argument("--backend", choices=["openai", "rules"], help="openai: LLM endpoint; rules: offline")
    g = p.add_argument_group("openai backend")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    g.add_argument("--model", default="gpt-4-0613", help="model name (default: %(default)s, as in the paper)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="name of the environment variable holding the API key (default: %(default)s)")
    g.add_argument("--concurrency", type=_positive_int, default=8,
                   help="requests in flight at once (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (default: %(default)s)")
    g.add_argument("--max-tokens", type=_positive_int, default=512,
                   help="most new tokens per description (default: %(default)s)")
    g.add_argument("--frequency-penalty", type=float, default=1.0,
                   help="OpenAI frequency penalty (default: %(default)s, as in the paper)")
    g.add_argument("--timeout", type=_positive_float, default=60.0, help="seconds per request (default: %(default)s)")
    g.add_argument("--max-retries", type=_non_negative_int, default=6,
                   help="retries on 429/5xx/timeouts (default: %(default)s)")
    g.add_argument("--retry-base-delay", type=_positive_float, default=1.0,
                   help="first backoff in seconds (doubles)")
    r = p.add_argument_group("rules backend")
    r.add_argument("--seed", type=int, default=0, help="seed of the phrasing variants")
    r.add_argument("--attributes", action=argparse.BooleanOptionalAction, default=True,
                   help="mention the records' attribute labels (age, expression) when present (default: on)")
    p.add_argument("--limit", type=_positive_int, help="only the first N records")
    p.add_argument("--records-out", help="also write the records with their descriptions as captions here")
    p.add_argument("--merge-mode", choices=["replace", "append"], default="replace",
                   help="with --records-out: the description replaces the records' captions or is appended "
                        "to them (default: %(default)s)")
    p.add_argument("--merge", action="store_true", help="only merge --out into --records-out; describe nothing")
    p.add_argument("--stats", metavar="FILE", help="print statistics of a descriptions file and exit")
    p.add_argument("--json", action="store_true", help="with --stats: print JSON")
    p.set_defaults(func=_run_describe)


def _run_describe(args: argparse.Namespace) -> int:
    import json
    import os

    from focusclip.data.sources import read_dataset_file
    from focusclip.describe import (
        OpenAIDescriber,
        RetryPolicy,
        RulesDescriber,
        collect_descriptions,
        describe_records,
        description_stats,
        format_description_stats,
        merge_captions,
    )
    from focusclip.errors import UsageError
    from focusclip.io import check_not_inputs

    if args.stats:
        stats = description_stats(collect_descriptions(args.stats))
        print(json.dumps(stats, indent=2) if args.json else format_description_stats(stats))
        return 0
    if not args.records or not args.out:
        raise UsageError("give a records JSONL and --out DESCRIPTIONS.jsonl (or --stats FILE)")
    check_not_inputs({"--out": args.out, "--records-out": args.records_out}, {"RECORDS": args.records})
    check_not_inputs({"--records-out": args.records_out}, {"--out": args.out})
    if args.merge:
        if not args.records_out:
            raise UsageError("--merge needs --records-out")
        n, described = merge_captions(args.records, args.out, args.records_out, args.merge_mode)
        print(f"{n} records ({described} with a description) -> {args.records_out}")
        return 0
    if args.backend is None:
        raise UsageError("choose --backend openai (LLM endpoint) or --backend rules (offline)")
    if args.backend == "rules":
        describer = RulesDescriber(seed=args.seed, attributes=args.attributes)
        concurrency = 1
    else:
        api_key = os.environ.get(args.api_key_env) or None
        if api_key is None and not args.base_url:
            raise UsageError(f"the environment variable {args.api_key_env} is not set; put your API key "
                             "there (or pass --base-url for a local server that needs none)")
        describer = OpenAIDescriber(
            args.model, base_url=args.base_url, api_key=api_key, timeout=args.timeout,
            temperature=args.temperature, max_tokens=args.max_tokens,
            frequency_penalty=args.frequency_penalty,
            retry=RetryPolicy(max_retries=args.max_retries, base_delay=args.retry_base_delay),
        )
        concurrency = args.concurrency
    records, _ = read_dataset_file(args.records)
    try:
        summary = describe_records(records, args.out, describer, workers=concurrency, limit=args.limit,
                                   fsync=args.backend == "openai")  # rules are cheap to redo
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
        n, described = merge_captions(args.records, args.out, args.records_out, args.merge_mode)
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
    p.add_argument("--n", type=_positive_int, required=True, help="number of training images (10%% go to val)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels (default 224, at least 32)")
    p.add_argument("--eval-n", type=_non_negative_int, default=None,
                   help="held-out eval images from a separate seed stream (default max(12, n/5))")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the n images in val.jsonl")
    p.add_argument("--crowd", type=_non_negative_int, default=0,
                   help="multi-person scenes: this many more full-size, unannotated people (other activities) "
                        "beside the labelled subject, 0..3 (default 0)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="parallel worker processes (the output does not depend on it)")
    p.add_argument("--no-sheet", action="store_true", help="do not write DIR/contact_sheet.png")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a world already in DIR")
    p.set_defaults(func=_run_data_synth)


def _run_data_synth(args: argparse.Namespace) -> int:
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


# data mpii
def _add_data_mpii(dsub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_data_mpii)


def _split_files_out(out: str, splits: Sequence[str]) -> dict[str, object]:
    from pathlib import Path

    return {f"--out's {s}.jsonl": Path(out) / f"{s}.jsonl" for s in splits}


def _run_data_mpii(args: argparse.Namespace) -> int:
    from focusclip.data.mpii import convert_mpii, format_conversion_stats, write_mpii
    from focusclip.errors import UsageError
    from focusclip.io import check_dir_target, check_no_overwrite, check_not_inputs

    if bool(args.split_train) != bool(args.split_val):
        raise UsageError("give both --split-train and --split-val, or neither")
    check_dir_target("--out", args.out)
    outputs = _split_files_out(args.out, ("train", "val", "test"))
    check_not_inputs(outputs, {"--annotations": args.annotations, "--split-train": args.split_train,
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


# data release
def _add_data_release(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("release", help="records from the released MPII Pose Descriptions (paper setting)",
                        description="Build OUT/train.jsonl and OUT/val.jsonl from the MPII Pose Descriptions "
                        "release (<root>/<llm>/<split>.json). The paper trains on gpt-4-0613 train and validates "
                        "on gpt-3.5-turbo-0613 val; a missing LLM/split is an error, never substituted.")
    p.add_argument("--root", required=True, help="release folder holding <llm>/train.json, <llm>/val.json")
    p.add_argument("--images", required=True, help="folder of the MPII images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train-llm", default="gpt-4-0613", help="LLM of the train captions (default gpt-4-0613)")
    p.add_argument("--val-llm", default="gpt-3.5-turbo-0613",
                   help="LLM of the val captions (default gpt-3.5-turbo-0613)")
    p.add_argument("--overwrite", action="store_true", help="replace train.jsonl / val.jsonl already in OUT")
    p.set_defaults(func=_run_data_release)


def _run_data_release(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.data.records import write_records
    from focusclip.data.release import release_to_records
    from focusclip.io import check_dir_target, check_no_overwrite

    check_dir_target("--out", args.out)
    outputs = _split_files_out(args.out, ("train", "val"))
    check_no_overwrite(outputs.values(), args.overwrite)  # the release's own files are <root>/<llm>/<split>.json
    for split, llm in (("train", args.train_llm), ("val", args.val_llm)):
        records = release_to_records(args.root, llm, split, args.images, relative_to=args.out)
        n = write_records(Path(args.out) / f"{split}.jsonl", records)
        no_text = sum(not r["captions"] for r in records)
        print(f"{split}: {n} records from {llm} ({no_text} without a description) -> "
              f"{Path(args.out) / f'{split}.jsonl'}")
    return 0


# data validate
def _add_data_validate(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("validate", help="check a dataset: images, joints, captions, heatmaps",
                        description="Check every record of DATASET (a records .jsonl, a custom .csv/.jsonl, "
                        "or a folder with train.jsonl/val.jsonl) with the same rules the loaders apply, and print "
                        "counts per problem with the first offending records. Exit code 1 when there are errors.")
    p.add_argument("dataset", metavar="DATASET", help="a records or custom file, or a folder of split files")
    p.add_argument("--root", help="folder image paths are relative to (default: the file's folder)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-images", action="store_true", help="only check that image files exist (no decoding)")
    p.add_argument("--require-captions", action="store_true", help="a record without captions is an error")
    p.add_argument("--examples", type=_non_negative_int, default=5,
                   help="offending records shown per problem (default 5)")
    p.add_argument("--workers", type=_positive_int, default=4,
                   help="parallel worker threads decoding images (default 4)")
    p.set_defaults(func=_run_data_validate)


def _run_data_validate(args: argparse.Namespace) -> int:
    import json

    from focusclip.data.validate import validate_dataset

    report = validate_dataset(args.dataset, root=args.root, check_images=not args.no_images,
                              require_captions=args.require_captions, workers=args.workers,
                              max_examples=args.examples)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


# data coco
def _add_data_coco(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("coco", help="COCO person keypoints + captions (as distributed) -> train/val records",
                        description="Read ROOT/annotations/person_keypoints_{train,val}2017.json and "
                        "captions_{train,val}2017.json with ROOT/{train,val}2017/ and write OUT/<split>.jsonl: one "
                        "record per image with its people (COCO's 17 keypoints as MPII's 16 joints) and its captions. "
                        "Crowd regions and small or sparsely labelled people are skipped and counted.")
    p.add_argument("--root", required=True, help="the COCO folder (annotations/, train2017/, val2017/)")
    p.add_argument("--out", required=True, help="output folder for train.jsonl / val.jsonl")
    p.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"],
                   help="which splits to convert (default: train val)")
    p.add_argument("--min-area", type=float, default=1024.0,
                   help="skip people whose annotated area is below this many pixels (default 32x32)")
    p.add_argument("--min-keypoints", type=int, default=1, help="skip people with fewer labelled keypoints (default 1)")
    p.add_argument("--visibility", choices=["annotated", "strict"], default="annotated",
                   help="'annotated': labelled keypoints count as visible, occluded ones are listed in 'occluded' "
                        "(default); 'strict': only keypoints COCO marks visible (v=2)")
    p.add_argument("--no-captions", action="store_true", help="do not read captions_<split>2017.json")
    p.add_argument("--include-empty", action="store_true",
                   help="also write images without a kept person (their heatmap is then the whole image)")
    p.add_argument("--overwrite", action="store_true", help="replace train.jsonl / val.jsonl already in OUT")
    p.set_defaults(func=_run_data_coco)


def _run_data_coco(args: argparse.Namespace) -> int:
    from focusclip.data.coco import write_coco
    from focusclip.io import check_dir_target, check_no_overwrite

    check_dir_target("--out", args.out)
    check_no_overwrite(_split_files_out(args.out, args.splits).values(), args.overwrite)
    written, counts = write_coco(args.root, args.out, args.splits, min_area=args.min_area,
                                 min_keypoints=args.min_keypoints, visibility=args.visibility,
                                 captions=not args.no_captions, include_empty=args.include_empty)
    print(counts.format(f"COCO {args.root} -> {args.out}"))
    for path in written.values():
        print(f"wrote {path}")
    return 0


# data cub
def _add_data_cub(dsub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_data_cub)


def _run_data_cub(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.data.cub import convert_cub, write_cub
    from focusclip.io import check_dir_target, check_no_overwrite

    check_dir_target("--out", args.out)
    names = ("train", "test") if args.split == "official" else ("train", "val", "unseen")
    check_no_overwrite([*_split_files_out(args.out, names).values(), Path(args.out) / "classes.json"], args.overwrite)
    by_split, counts = convert_cub(args.root, args.split, text_c10=args.text_c10, seen_classes=args.seen_classes,
                                   unseen_classes=args.unseen_classes, val_fraction=args.val_fraction,
                                   seed=args.seed, relative_to=args.out, read_sizes=not args.no_sizes,
                                   species=not args.no_species)
    written = write_cub(by_split, args.out)
    print(counts.format(f"CUB {args.root} ({args.split} split) -> {args.out}"))
    for path in written.values():
        print(f"wrote {path}")
    return 0


# data shards
def _add_data_shards(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("shards", help="write a dataset as WebDataset tar shards (train with data.format=shards)",
                        description="Cut RECORDS (a records JSONL or a custom CSV/JSONL) into OUT/shard-NNNNNN.tar "
                        "files of --shard-size samples (image bytes, the record as JSON, its captions as text) and "
                        "OUT/index.json. Rerunning the same command continues after the last finished shard.")
    p.add_argument("records", help="dataset file (records .jsonl or custom .csv/.jsonl)")
    p.add_argument("--out", required=True, help="output folder for the shards and index.json")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the order records are written in (default 0)")
    p.add_argument("--no-shuffle", action="store_true", help="keep the file's order (training still shuffles shards)")
    p.set_defaults(func=_run_data_shards)


def _run_data_shards(args: argparse.Namespace) -> int:
    from focusclip.data.shards import write_shards
    from focusclip.io import check_dir_target

    check_dir_target("--out", args.out)
    index, counts = write_shards(args.records, args.out, shard_size=args.shard_size, seed=args.seed,
                                 shuffle=not args.no_shuffle)
    print(counts.format(f"{args.records} -> {args.out}"))
    return 0


# data detect (and the detector options shared with `heatmap --detect` / `predict --detect`)
def _add_detector_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--detector-weights", metavar="PATH|URL",
                   help="rtmo: the RTMO .onnx (or its ONNX SDK .zip), by local path or URL (downloaded once)")
    g.add_argument("--min-visibility", type=float, default=None,
                   help="joints below this confidence are invisible (default: mediapipe 0.5, rtmo 0.3)")


def _make_detector(name: str, args: argparse.Namespace):
    from focusclip.detect import create_detector

    return create_detector(name, **_detector_options(name, args))


def _detector_options(name: str, args: argparse.Namespace) -> dict[str, object]:
    from focusclip.errors import UsageError

    options: dict[str, object] = {}
    if name == "rtmo":
        if not args.detector_weights:
            raise UsageError("the rtmo detector needs --detector-weights PATH|URL (an RTMO .onnx or ONNX SDK .zip)")
        options["weights"] = args.detector_weights
    if args.min_visibility is not None:
        options["min_keypoint_score" if name == "rtmo" else "min_visibility"] = args.min_visibility
    return options


def _add_data_detect(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("detect", help="records from photos without keypoints: detected people (MPII joints, boxes)",
                        description="Find people in IMAGES (files or folders, searched recursively) and append one "
                        "record per image to --out: MPII joints with visibility, person and face boxes. Rerunning "
                        "skips images already there; unreadable images go to <out>.errors.jsonl and are retried "
                        "next time. Then write texts with `focusclip describe`.")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="records JSONL (appended to; rerun to resume)")
    p.add_argument("--detector", choices=["mediapipe", "rtmo"], default="mediapipe",
                   help="mediapipe: BlazePose, offline, one person per image (default); rtmo: multi-person, "
                        "needs --detector-weights")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="processes, each with its own detector (default 1; 2 uses both cores of a 2-core machine)")
    _add_detector_options(p)
    p.set_defaults(func=_run_data_detect)


def _run_data_detect(args: argparse.Namespace) -> int:
    import functools

    from focusclip.detect import create_detector
    from focusclip.detect.run import detect_images, errors_path
    from focusclip.io import check_file_target, check_not_inputs

    check_file_target("--out", args.out)
    check_not_inputs({"--out": args.out, "--out's errors": errors_path(args.out)},
                     {f"IMAGE {i}": p for i, p in enumerate(args.images)})
    options = _detector_options(args.detector, args)
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


# data (the verb): add sibling commands (`data mpii`, `data validate`, ...) to this list.
_DATA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data_synth,
    _add_data_mpii,
    _add_data_release,
    _add_data_validate,
    _add_data_coco,
    _add_data_cub,
    _add_data_shards,
    _add_data_detect,
]


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build and check datasets (synthetic world, MPII, releases, validation)")
    dsub = p.add_subparsers(dest="data_cmd", metavar="COMMAND")
    for add in _DATA_COMMANDS:
        add(dsub)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)


# ----------------------------------------------------------------------------------------- eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="zero-shot evaluation on the paper's benchmarks (or your own tasks)",
                       description="Zero-shot classification on human-centric benchmarks read from their "
                                   "distributed layouts (docs/datasets.md). Results are keyed by task and "
                                   "model fingerprint: an existing --out file is extended, not recomputed.")
    p.add_argument("--model", help="saved model directory (focusclip.save_model), a CLIP name "
                                   "(openclip:ViT-B-16/openai, openclip:ARCH@FILE, hfclip:ID_OR_FOLDER) or a "
                                   "registered model name (see `focusclip models`)")
    p.add_argument("--base", help="with --interpolate: the zero-shot model --model was fine-tuned from "
                                  "(a saved directory or a CLIP name)")
    p.add_argument("--interpolate", metavar="ALPHAS",
                   help="WiSE-FT path: evaluate (1 - a) * base + a * model for each a, e.g. 0,0.25,0.5,0.75,1; "
                        "writes a table and <out stem>_interpolation.png")
    p.add_argument("--tasks", default="paper",
                   help="paper | all | extra | synthetic | task names | a tasks .json file; comma separated")
    p.add_argument("--data-root", default="data/{dataset}",
                   help="dataset folders: a template with {dataset}, a folder holding one folder per dataset, "
                        "or one dataset's own folder (e.g. the demo's runs/demo/data)")
    p.add_argument("--out", default="results.json", help="results JSON (extended); a .md table is written beside it")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--workers", type=_non_negative_int, default=2,
                   help="parallel worker processes loading images (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--subset", type=_positive_int, default=None,
                   help="at most N images per task (a fixed random subset)")
    p.add_argument("--ensemble", action="store_true", help="average each class over the task's extra templates")
    p.add_argument("--focus", choices=["boxes"], default=None,
                   help="boxes: instead of cropping to the person boxes the datasets ship (Stanford40, EMOTIC, "
                        "LAGENDA, CUB; the synthetic world's subjects), show whole images and focus the model on "
                        "the boxes (roi.mode attention / alpha / pool; docs/focus.md)")
    p.add_argument("--force", action="store_true", help="recompute results already in --out")
    p.add_argument("--no-confusion", action="store_true", help="do not draw confusion-matrix PNGs")
    p.add_argument("--dataset-option", action="append", default=[], metavar="DATASET.KEY=VALUE",
                   help="an extra option for a dataset's loader, e.g. ferplus.fer2013_csv=data/fer2013/fer2013.csv "
                        "(repeatable; values are parsed as YAML scalars)")
    p.add_argument("--list", action="store_true", help="list the registered tasks and sets, then exit")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.errors import OutputError, UsageError
    from focusclip.io import atomic_write_text, check_file_target, check_not_inputs
    from focusclip.model.factory import load_model_spec
    from focusclip.zeroshot.evaluate import check_data_root, evaluate
    from focusclip.zeroshot.report import markdown_table
    from focusclip.zeroshot.tasks import list_sets, load_registry, resolve_tasks

    if args.list:
        registry = load_registry()
        print("sets: " + ", ".join(list_sets(registry)))
        for t in registry.values():
            print(f"{t.name:18s} {t.dataset:12s} {t.group:9s} k={t.k}  sets={','.join(t.sets)}  "
                  f"{t.templates[0]!r}")
        return 0
    if not args.model:
        raise UsageError("--model is required (a saved model directory, a CLIP name or a registered model name)")
    if bool(args.base) != bool(args.interpolate):
        raise UsageError("--interpolate and --base go together: --model FINETUNED --base ZERO_SHOT "
                         "--interpolate 0,0.5,1")
    tasks = resolve_tasks(args.tasks)  # before loading the model: a misspelt task fails fast
    check_data_root(args.data_root)
    md = Path(args.out).with_suffix(".md")
    check_file_target("--out", args.out)
    check_not_inputs({"--out": args.out, "--out's table": md}, {"--model": args.model, "--tasks": args.tasks})
    if md.exists() and not Path(args.out).exists():
        raise OutputError(f"{md} exists but {args.out} does not, so focusclip eval did not write it; choose "
                          "another --out")
    options = _dataset_options(args.dataset_option)
    if args.interpolate:
        return _eval_interpolation(args, tasks, options)
    loaded = load_model_spec(args.model, device=None)
    data = evaluate(loaded.model, loaded.tokenizer, loaded.transform, tasks, args.data_root,
                    batch_size=args.batch_size, workers=args.workers, device=args.device, limit=args.subset,
                    ensemble=args.ensemble, out=args.out, force=args.force, model_name=loaded.name,
                    confusion=not args.no_confusion, dataset_options=options, focus=args.focus)
    fingerprint = data["model"]
    if not any(key.endswith("@" + fingerprint) for key in data["results"]):
        logger.warning("no task could be evaluated (every dataset is absent under %s); nothing written",
                       args.data_root)
        return 1
    table = markdown_table(data, fingerprint)
    atomic_write_text(md, f"# Zero-shot results: {loaded.name} ({fingerprint})\n\n{table}")
    print(table)
    logger.info("results: %s, table: %s", args.out, md)
    return 0


def _eval_interpolation(args: argparse.Namespace, tasks: list, options: dict) -> int:
    from pathlib import Path

    from focusclip.io import atomic_write_text, check_not_inputs
    from focusclip.model.factory import load_model_spec
    from focusclip.model.merge import parse_alphas
    from focusclip.zeroshot.interpolation import (
        evaluate_interpolation,
        interpolation_table,
        plot_interpolation,
    )

    alphas = parse_alphas(args.interpolate)
    out = Path(args.out)
    png, md = out.with_name(f"{out.stem}_interpolation.png"), out.with_name(f"{out.stem}_interpolation.md")
    check_not_inputs({"--out": out, "--out's plot": png, "--out's table": md},
                     {"--model": args.model, "--base": args.base})
    finetuned = load_model_spec(args.model)
    base = load_model_spec(args.base).model
    path = evaluate_interpolation(base, finetuned.model, alphas, finetuned.tokenizer, finetuned.transform, tasks,
                                  args.data_root, out=out, model_name=finetuned.name, batch_size=args.batch_size,
                                  workers=args.workers, device=args.device, limit=args.subset,
                                  ensemble=args.ensemble, force=args.force, confusion=False, dataset_options=options)
    if not any(v is not None for values in path["scores"].values() for v in values):
        logger.warning("no task could be evaluated (every dataset is absent under %s)", args.data_root)
        return 1
    table = interpolation_table(path)
    plot_interpolation(path, png, title=f"WiSE-FT: {Path(args.base).name} -> {finetuned.name}")
    atomic_write_text(md, f"# WiSE-FT path: {args.base} (alpha 0) -> {args.model} (alpha 1)\n\n{table}\n")
    print(table)
    logger.info("results: %s, plot: %s", out, png)
    return 0


def _dataset_options(items: list[str]) -> dict[str, dict[str, object]]:
    """``["ferplus.fer2013_csv=x.csv"]`` -> ``{"ferplus": {"fer2013_csv": "x.csv"}}``."""
    from focusclip.errors import UsageError
    from focusclip.train.config import parse_value

    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        dataset, dot, option = key.strip().partition(".")
        if not (sep and dot and dataset and option):
            raise UsageError(f"--dataset-option {item!r}: expected DATASET.KEY=VALUE, e.g. "
                             "ferplus.fer2013_csv=data/fer2013/fer2013.csv")
        out.setdefault(dataset, {})[option] = parse_value(raw)
    return out


# ---------------------------------------------------------------------------------------- serve
def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page + JSON API for zero-shot classification (needs focusclip[app])",
                       description="Start the web page (Gradio) and the JSON API (POST /api/predict, "
                       "/api/embed) on HOST:PORT. Offers every saved model below --models-root and the "
                       "registered configs; works offline. See docs/serve.md.")
    p.add_argument("--models-root", default="runs", help="folder searched for saved models (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=_non_negative_int, default=7860, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--model", help="model preselected on the page and used by the API when none is named "
                   "(an id from GET /api/models; default: a trained FocusCLIP model)")
    p.add_argument("--no-registered", action="store_true", help="offer only saved models, not registered configs")
    p.add_argument("--clip", action="append", default=[], metavar="NAME",
                   help="also offer this CLIP checkpoint, e.g. openclip:ViT-B-16/openai or hfclip:DIR (repeatable; "
                        "hub names need a network the first time)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for inference (default: torch's, one per core); "
                   "1 answers faster on a busy machine")
    p.add_argument("--max-upload-mb", type=_positive_float, default=20.0, help="largest photo in MB (default: %(default)s)")
    p.add_argument("--max-megapixels", type=_positive_float, default=40.0,
                   help="largest photo in megapixels, checked before decoding (default: %(default)s)")
    p.add_argument("--max-images", type=_positive_int, default=32, help="photos per request (default: %(default)s)")
    p.add_argument("--detect", choices=["auto", "mediapipe", "rtmo", "none"], default="auto", metavar="DETECTOR",
                   help="pose detector for photos without an ROI file: auto (mediapipe when installed, the "
                        "default), mediapipe, rtmo (needs --detector-weights) or none")
    _add_detector_options(p)
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from focusclip.serve import missing_app_modules

    missing = missing_app_modules()
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed; pip install 'focusclip[app]'")
    from focusclip.serve.app import ServeConfig, serve
    from focusclip.serve.uploads import MIB, UploadLimits

    file_bytes = int(args.max_upload_mb * MIB)
    limits = UploadLimits(max_file_bytes=file_bytes, max_pixels=int(args.max_megapixels * 1e6),
                          max_images=args.max_images, max_request_bytes=max(128 * MIB, 2 * file_bytes))
    serve(ServeConfig(models_root=args.models_root, host=args.host, port=args.port, default_model=args.model,
                      registered=not args.no_registered, clip_models=tuple(args.clip), device=args.device,
                      threads=args.threads, limits=limits, detector=args.detect,
                      detector_options=_detector_options(args.detect, args) if args.detect != "none" else {}))
    return 0


# ---------------------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a YAML config (one process, one GPU, or torchrun DDP)",
        description="Train FocusCLIP / the CLIP baseline. Settings come from --config and key=value "
        "overrides with dotted keys (optim.lr=1e-3 data.heatmap=parts model.name=clip-tiny). Several "
        "GPUs or nodes: torchrun --nproc_per_node 8 -m focusclip.cli train --config X.yaml")
    p.add_argument("--config", help="YAML config (see configs/); without it the defaults are used")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=1e-3")
    p.add_argument("--resume", metavar="latest|PATH", help="continue from the newest checkpoint of out_dir "
                   "(latest) or from a checkpoint file (same as resume=...)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume even though the config differs from the checkpoint's (the changes are listed; "
                        "the earlier RUN/config.yaml is kept beside the new one)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import os

    from focusclip.train import load_config, train
    from focusclip.train.config import dump_config

    overrides = list(args.overrides) + ([f"resume={args.resume}"] if args.resume else [])
    cfg = load_config(args.config, overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    result = train(cfg, allow_config_change=args.allow_config_change)
    if int(os.environ.get("RANK", "0")) == 0:
        best = result["best"]
        print(f"run {result['run_dir']}: {result['stopped']} at step {result['step']} (epoch {result['epoch']}), "
              f"loss {result['loss']}, val loss {result['val_loss']}, best {best['metric']} {best['value']} "
              f"at step {best['step']}; final model: {result['model_final']}")
    return 0


# -------------------------------------------------------------------------------------- predict
def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="zero-shot predictions for images with a trained model")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", required=True, help="a saved model directory (focusclip.save_model), a CLIP name "
                                                  "(openclip:ViT-B-16/openai, hfclip:FOLDER, ...) or a registered "
                                                  "model name (see `focusclip models`)")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", help="comma-separated class names, e.g. 'running,sitting,jumping'")
    labels.add_argument("--labels-file", help="a text file with one class name per line")
    p.add_argument("--template", action="append", default=None, help=DEFAULT_TEMPLATE_HELP)
    p.add_argument("--topk", type=_positive_int, default=3, help="labels shown per image (default 3)")
    p.add_argument("--scale", type=_positive_float, default=None,
                   help="softmax scale of the probabilities (default: the model's own: 1/temperature for "
                        "NT-Xent-trained models, else its logit scale)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--keypoints", action="append", default=None,
                   help="keypoints JSON per image (in order; see `focusclip heatmap`): draw the ROI overlay and, "
                        "for a model whose focus acts at inference (roi.mode attention/alpha/pool), ask about "
                        "the people it marks")
    p.add_argument("--boxes", action="append", default=None,
                   help="boxes JSON per image: the ROI overlay and focus, as --keypoints")
    p.add_argument("--detect", nargs="?", const="mediapipe", choices=["mediapipe", "rtmo"], metavar="DETECTOR",
                   help="find the people with a detector (default mediapipe): the ROI overlay and focus, as "
                        "--keypoints")
    p.add_argument("--overlay-dir", default=".", help="where overlays go (<image stem>_roi.png)")
    p.add_argument("--overwrite", action="store_true", help="replace overlays already in --overlay-dir")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    _add_detector_options(p)
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import json

    from focusclip.predict import DEFAULT_TEMPLATE, ZeroShotClassifier, format_predictions

    if args.labels_file:
        labels = _read_lines(args.labels_file, "labels file")
    else:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    overlays = {kind: _per_image(getattr(args, kind), args.images, kind) for kind in ("keypoints", "boxes")
                if getattr(args, kind)}
    if overlays or args.detect:
        _check_overlay_targets(args.images, args.overlay_dir, args.overwrite)
    clf = ZeroShotClassifier.from_pretrained(args.model, labels, args.template or [DEFAULT_TEMPLATE],
                                             device=args.device, scale=args.scale)
    written: dict[int, str] = {}
    heatmaps: list = [None] * len(args.images)
    for kind, files in overlays.items():
        for i, (image, spec) in enumerate(zip(args.images, files)):
            written[i], heatmaps[i] = _write_overlay(image, spec, kind, args.overlay_dir, args.images)
    if args.detect:
        with _make_detector(args.detect, args) as detector:
            for i, image in enumerate(args.images):
                written[i], heatmaps[i] = _write_detected_overlay(image, detector, args.overlay_dir, args.images)
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


def _overlay_path(image: str, out_dir: str):
    from pathlib import Path

    return Path(out_dir) / f"{Path(image).stem}_roi.png"


def _check_overlay_targets(images: list[str], out_dir: str, overwrite: bool) -> None:
    """Before any work: no overlay may be an input, two images must not share an overlay name, and existing
    overlays need --overwrite."""
    from focusclip.errors import UsageError
    from focusclip.io import check_no_overwrite, check_not_inputs

    seen: dict[str, str] = {}
    for image in images:
        out = str(_overlay_path(image, out_dir))
        if out in seen:
            raise UsageError(f"{seen[out]} and {image} would both write the overlay {out}; give the images "
                             "different names")
        seen[out] = image
    inputs = {f"IMAGE {i}": p for i, p in enumerate(images)}
    for out in seen:
        check_not_inputs({"--overlay-dir": out}, inputs)
    check_no_overwrite(seen, overwrite)


def _write_detected_overlay(image: str, detector, out_dir: str, inputs: list[str]):
    """(overlay path, heatmap at the image's size) of the people a detector finds in ``image``."""

    from focusclip.images import open_rgb
    from focusclip.io import atomic_save, check_not_inputs

    out = _overlay_path(image, out_dir)
    check_not_inputs({"overlay": out}, {f"IMAGE {i}": p for i, p in enumerate(inputs)})
    overlay, heat = _detected_overlay(open_rgb(image), image, detector)
    atomic_save(out, lambda f: overlay.save(f, format="PNG"))
    return out, heat


def _per_image(files: list[str], images: list[str], kind: str) -> list[str]:
    from focusclip.errors import UsageError

    if len(files) != len(images):
        raise UsageError(f"--{kind} was given {len(files)} times for {len(images)} images; give one per image")
    return files


def _write_overlay(image: str, spec: str, kind: str, out_dir: str, inputs: list[str]):
    """(overlay path, heatmap at the image's size) of a keypoints / boxes file."""

    from focusclip.drawing import overlay_from_files
    from focusclip.images import open_rgb
    from focusclip.io import atomic_save, check_not_inputs

    out = _overlay_path(image, out_dir)
    check_not_inputs({"overlay": out}, {f"IMAGE {i}": p for i, p in enumerate(inputs)} | {f"--{kind}": spec})
    overlay, heat = overlay_from_files(open_rgb(image), **{kind: spec})
    atomic_save(out, lambda f: overlay.save(f, format="PNG"))
    return out, heat


# ---------------------------------------------------------------------------------------- embed
def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="write image or text embeddings of a model to .npy")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (or give --texts / --texts-file)")
    p.add_argument("--images", dest="images_opt", nargs="+", default=None, help=argparse.SUPPRESS)  # 0.1 spelling
    p.add_argument("--model", required=True, help="a saved model directory, a CLIP name "
                                                  "(openclip:ViT-B-16/openai, hfclip:FOLDER, ...) or a registered name")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--texts", nargs="+", help="texts to embed")
    src.add_argument("--texts-file", help="a text file with one text per line")
    p.add_argument("--out", required=True, help="output .npy (a .txt listing the inputs is written beside it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing .npy / .txt")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="inputs per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.errors import UsageError
    from focusclip.io import check_file_target, check_not_inputs
    from focusclip.model.factory import load_model_spec
    from focusclip.predict import embed_images, embed_texts, save_embeddings

    images = list(args.images) + list(args.images_opt or [])
    if bool(images) == bool(args.texts or args.texts_file):
        raise UsageError("give image files, or --texts / --texts-file (one kind of input per call)")
    npy = Path(args.out).with_suffix(".npy")
    check_file_target("--out", npy)
    check_not_inputs({"--out": npy, "--out's index": npy.with_suffix(".txt")},
                     {f"IMAGE {i}": p for i, p in enumerate(images)} | {"--texts-file": args.texts_file})
    loaded = load_model_spec(args.model)
    if images:
        names = images
        emb = embed_images(loaded.model, names, loaded.transform, batch_size=args.batch_size, device=args.device)
    else:
        names = _read_lines(args.texts_file, "texts file") if args.texts_file else list(args.texts)
        emb = embed_texts(loaded.model, loaded.tokenizer, names, batch_size=args.batch_size, device=args.device)
    npy, index = save_embeddings(npy, emb, [n.replace("\n", " ") for n in names], overwrite=args.overwrite)
    logger.info("wrote %s %s and %s", npy, tuple(emb.shape), index)
    return 0


# ---------------------------------------------------------------------------------------- merge
def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="WiSE-FT: interpolate the weights of a zero-shot and a fine-tuned model",
                       description="Write (1 - alpha) * BASE + alpha * FINETUNED as a saved model (the fine-tuned "
                       "model's architecture and ROI branch). Both must be of one architecture.")
    p.add_argument("--base", required=True, help="the zero-shot model: a saved directory or a CLIP name "
                                                 "(openclip:ViT-B-16/openai, hfclip:FOLDER, ...)")
    p.add_argument("--finetuned", required=True, help="the fine-tuned model directory")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the fine-tuned model (default %(default)s)")
    p.add_argument("--out", required=True, help="output model directory (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds files")
    p.set_defaults(func=_run_merge)


def _run_merge(args: argparse.Namespace) -> int:
    from focusclip.io import check_new_folder, check_not_inputs
    from focusclip.model import get_tokenizer, load_model, save_model
    from focusclip.model.factory import load_model_spec
    from focusclip.model.merge import merge_models

    check_new_folder("--out", args.out, args.overwrite)
    check_not_inputs({"--out": args.out}, {"--base": args.base, "--finetuned": args.finetuned})
    base = load_model_spec(args.base).model
    merged = merge_models(base, load_model(args.finetuned), args.alpha)
    save_model(merged, args.out, get_tokenizer(args.finetuned),
               extra={"merge": {"base": args.base, "finetuned": args.finetuned, "alpha": args.alpha}})
    print(f"merged (1 - {args.alpha:g}) x {args.base} + {args.alpha:g} x {args.finetuned} -> {args.out}")
    return 0


# --------------------------------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a model built on open_clip / Hugging Face CLIP as that library's checkpoint",
                       description="open_clip models: OUT/open_clip_model.safetensors + open_clip_config.json "
                       "(open_clip.create_model_and_transforms('local-dir:OUT'), or (ARCH, pretrained=the file)). "
                       "Hugging Face models: CLIPModel.save_pretrained(OUT) with tokenizer and image processor. "
                       "The ROI branch's own parameters are dropped.")
    p.add_argument("--model", required=True, help="a saved model directory")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds files")
    p.add_argument("--format", choices=["open_clip", "hf"], help="checked against the model's library (default: it)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from focusclip.io import check_new_folder, check_not_inputs
    from focusclip.model import get_tokenizer, load_model
    from focusclip.model.export import export_model

    check_new_folder("--out", args.out, args.overwrite)
    check_not_inputs({"--out": args.out}, {"--model": args.model})
    model = load_model(args.model)
    out = export_model(model, args.out, get_tokenizer(args.model), args.format)
    clip = model.config["clip"]
    if clip.get("open_clip_model"):
        print(f"open_clip checkpoint in {out}: open_clip.create_model_and_transforms('local-dir:{out}')")
    else:
        print(f"Hugging Face CLIP in {out}: CLIPModel.from_pretrained('{out}')")
    return 0


# ----------------------------------------------------------------------------------------- demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    from focusclip.experiments.demo import DemoConfig

    d = DemoConfig()
    p = sub.add_parser("demo", help="the whole story offline: synthetic world -> descriptions -> train "
                                    "FocusCLIP and CLIP -> zero-shot -> report")
    p.add_argument("--out", default=d.out_dir, help="output folder (report.md, figures, runs, data)")
    p.add_argument("--model", default=d.model, help="towers: focusclip-MODEL and clip-MODEL (e.g. tiny)")
    _add_recipe_options(p, d)
    p.set_defaults(func=_run_demo)


def _add_recipe_options(p: argparse.ArgumentParser, d) -> None:
    """The options of a recipe that trains several arms (demo, ablate), with ``d``'s defaults."""
    p.add_argument("--n-train", type=_positive_int, default=d.n_train, help="training + validation images")
    p.add_argument("--n-eval", type=_positive_int, default=d.n_eval, help="held-out zero-shot images")
    p.add_argument("--image-size", type=_positive_int, default=d.image_size, help="training resolution (pixels)")
    p.add_argument("--epochs", type=_positive_int, default=d.epochs, help="training epochs per arm")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="global batch size")
    p.add_argument("--lr", type=_positive_float, default=d.lr, help="AdamW learning rate")
    p.add_argument("--text-unlocked-layers", type=int, default=d.text_unlocked_layers,
                   help="train only the last N text-tower layers; -1 trains the whole tower")
    p.add_argument("--seeds", default=",".join(map(str, d.seeds)), help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--workers", type=_non_negative_int, default=d.workers,
                   help="parallel worker processes loading images")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d.precision,
                   help="training precision (auto: bf16 where the CPU/GPU computes it natively, after a check)")


def _recipe_kwargs(args: argparse.Namespace) -> dict:
    from focusclip.errors import UsageError

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds!r}: expected comma-separated whole numbers, e.g. 0,1,2") from None
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    return dict(out_dir=args.out, n_train=args.n_train, n_eval=args.n_eval, model=args.model,
                image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                text_unlocked_layers=args.text_unlocked_layers, seeds=seeds, workers=args.workers,
                precision=args.precision)


def _run_demo(args: argparse.Namespace) -> int:
    from focusclip.experiments.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(**_recipe_kwargs(args)))
    print(result["table"])
    print(f"\nreport: {result['report']}")
    return 0


# ---------------------------------------------------------------------------------------- ablate
def _add_ablate(sub: argparse._SubParsersAction) -> None:
    from focusclip.experiments.ablate import MODES, AblateConfig

    d = AblateConfig()
    p = sub.add_parser("ablate", help="compare focus mechanisms (roi.mode) on the same data, budget and seeds",
                       description="Train one arm per focus mode on the synthetic world (multi-person scenes by "
                       "default), evaluate each zero-shot without and with focus at inference, and write a table "
                       "(mean ± std over seeds, difference to none), a bar chart and report.md. Finished arms "
                       "are reused. See docs/focus.md.")
    p.add_argument("--out", default=d.out_dir, help="output folder (report.md, figures, runs, data, results)")
    p.add_argument("--modes", default=",".join(d.modes),
                   help=f"comma-separated arms out of {', '.join(MODES)} (none: the CLIP baseline)")
    p.add_argument("--model", default=d.model,
                   help="one model config for every arm (attention / alpha need a ViT tower, pool a conv tower)")
    _add_recipe_options(p, d)
    p.add_argument("--crowd", type=_non_negative_int, default=d.crowd,
                   help="more full-size, unlabelled people beside the labelled subject in every scene "
                        "(0: single-subject scenes)")
    p.add_argument("--tasks", default=",".join(d.tasks),
                   help="zero-shot tasks or sets (as focusclip eval --tasks); other datasets than the synthetic "
                        "world are read from --data-root")
    p.add_argument("--data-root", default=d.data_root, help="where the datasets of --tasks are (as focusclip eval)")
    p.add_argument("--train-config", default=None, metavar="YAML",
                   help="a training config whose keys replace the recipe's (each arm keeps its name, folder, "
                        "seed and mode)")
    p.set_defaults(func=_run_ablate)


def _run_ablate(args: argparse.Namespace) -> int:
    from focusclip.experiments.ablate import AblateConfig, run_ablation

    cfg = AblateConfig(**_recipe_kwargs(args), crowd=args.crowd, modes=[m.strip() for m in args.modes.split(",")
                                                                        if m.strip()],
                       tasks=[t.strip() for t in args.tasks.split(",") if t.strip()], data_root=args.data_root,
                       train_config=args.train_config)
    result = run_ablation(cfg)
    print(result["table"])
    print(f"\nreport: {result['report']}")
    return 0


# ---------------------------------------------------------------------------------- registry
_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_ablate,
    _add_data,
    _add_demo,
    _add_describe,
    _add_embed,
    _add_eval,
    _add_export,
    _add_heatmap,
    _add_merge,
    _add_models,
    _add_predict,
    _add_serve,
    _add_train,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focusclip",
        description="FocusCLIP: subject-focused language-image pretraining and zero-shot classification.",
    )
    from focusclip import __version__

    parser.add_argument("--version", action="version", version=f"focusclip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="debug log output; errors show their traceback")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help="warnings and errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_VerbParser)
    for add in _VERBS:
        add(sub)
    return parser


def _error_line(e: BaseException) -> tuple[str, int]:
    """One line for an exception and the exit status: 2 for usage errors, 1 for other failures."""
    from focusclip.errors import FocusCLIPError

    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if "Original Traceback" in text:  # an error re-raised from a DataLoader worker: keep its last line
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    if isinstance(e, FocusCLIPError):
        return text, e.exit_code
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or text}", 1
    if isinstance(e, ValueError | KeyError | FileNotFoundError | ImportError):
        return text, 1
    return f"unexpected {type(e).__name__}: {text} (rerun with -v for the traceback, and please report it)", 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error argparse has already printed
        return int(e.code or 0)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place errors become messages
        if args.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        text, code = _error_line(e)
        print(f"{args.command}: error: {' '.join(text.split())}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

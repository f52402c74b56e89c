"""``focusclip embed``: image or text embeddings to .npy."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import (
    MODEL_HELP,
    Subparsers,
    add_detector_options,
    make_detector,
    positive_int,
    read_lines,
)

logger = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("embed", help="write image or text embeddings of a model to .npy")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (or give --texts / --texts-file)")
    p.add_argument("--images", dest="images_opt", nargs="+", default=None, help=argparse.SUPPRESS)  # 0.1 spelling
    p.add_argument("--model", required=True, help=MODEL_HELP)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--texts", nargs="+", help="texts to embed")
    src.add_argument("--texts-file", help="a text file with one text per line")
    p.add_argument("--out", required=True, help="output .npy (a .txt listing the inputs is written beside it; with "
                                                "people a .csv naming each row's photo and person)")
    people = p.add_argument_group("one embedding per person (docs/focus.md)")
    people.add_argument("--keypoints", action="append", default=None,
                        help="keypoints JSON per image (in order): one row per person it lists")
    people.add_argument("--boxes", action="append", default=None, help="boxes JSON per image: one row per box")
    people.add_argument("--detect", nargs="?", const="mediapipe", choices=["mediapipe", "rtmo"], metavar="DETECTOR",
                        help="one row per person a detector finds (default mediapipe)")
    people.add_argument("--focus", default=None, metavar="MODE",
                        help="how each person is focused: auto (default), attention, crop, blur, circle, dim, alpha, "
                             "pool (as focusclip predict --focus)")
    people.add_argument("--person", type=positive_int, default=None, metavar="K", help="only person K of each photo")
    p.add_argument("--overwrite", action="store_true", help="replace an existing .npy / .txt")
    p.add_argument("--batch-size", type=positive_int, default=32, help="inputs per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
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
                     {f"IMAGE {i}": p for i, p in enumerate(images)} | {"--texts-file": args.texts_file,
                                                                         "--model": args.model})
    sources = [f"--{kind}" for kind in ("keypoints", "boxes", "detect") if getattr(args, kind)]
    if sources:
        return _embed_people(args, images, sources, npy)
    for flag, value in (("--focus", args.focus), ("--person", args.person)):
        if value is not None:
            raise UsageError(f"{flag} asks about people: give them with --keypoints, --boxes or --detect")
    loaded = load_model_spec(args.model)
    if images:
        names = images
        emb = embed_images(loaded.model, names, loaded.transform, batch_size=args.batch_size, device=args.device)
    else:
        names = read_lines(args.texts_file, "texts file") if args.texts_file else list(args.texts)
        emb = embed_texts(loaded.model, loaded.tokenizer, names, batch_size=args.batch_size, device=args.device)
    npy, index = save_embeddings(npy, emb, [n.replace("\n", " ") for n in names], overwrite=args.overwrite)
    logger.info("wrote %s %s and %s", npy, tuple(emb.shape), index)
    return 0


def _embed_people(args: argparse.Namespace, images: list[str], sources: list[str], npy) -> int:
    """One embedding per person: the rows file (.csv) names each row's photo and person."""
    from focusclip.errors import UsageError
    from focusclip.io import check_not_inputs
    from focusclip.model.factory import load_model_spec
    from focusclip.model.focus import FOCUS_AT_INFERENCE
    from focusclip.model.focus.inference import resolve_focus
    from focusclip.people import read_subjects
    from focusclip.predict import embed_people, save_people_embeddings

    if len(sources) > 1:
        raise UsageError(f"give the people one way: {' or '.join(sources)}, not both")
    if not images:
        raise UsageError(f"{sources[0]} gives the people of image files; give the images")
    focus = args.focus or "auto"
    if focus not in FOCUS_AT_INFERENCE:
        raise UsageError(f"--focus {focus!r}: choose one of {', '.join(FOCUS_AT_INFERENCE)}")
    files = {kind: getattr(args, kind) for kind in ("keypoints", "boxes") if getattr(args, kind)}
    inputs = {f"IMAGE {i}": p for i, p in enumerate(images)}
    for kind, paths in files.items():
        inputs |= {f"--{kind} {i}": p for i, p in enumerate(paths)}
    check_not_inputs({"--out's rows": npy.with_suffix(".csv")}, inputs)
    loaded = load_model_spec(args.model)
    resolve_focus(loaded.model, focus)
    if args.detect:
        with make_detector(args.detect, args) as detector:
            subjects = read_subjects(images, detector=detector)
    else:
        subjects = read_subjects(images, keypoints=files.get("keypoints"), boxes=files.get("boxes"))
    emb, rows = embed_people(loaded.model, images, subjects, focus=focus, transform=loaded.transform,
                             batch_size=args.batch_size, device=args.device, person=args.person)
    npy, table = save_people_embeddings(npy, emb, rows, overwrite=args.overwrite)
    logger.info("wrote %s %s and %s (one row per person)", npy, tuple(emb.shape), table)
    return 0

"""``focusclip embed``: image or text embeddings to .npy."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import Subparsers, positive_int, read_lines

logger = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
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
    p.add_argument("--batch-size", type=positive_int, default=32, help="inputs per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
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

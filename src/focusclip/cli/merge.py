"""``focusclip merge``: WiSE-FT weight interpolation of two models."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("merge", help="WiSE-FT: interpolate the weights of a zero-shot and a fine-tuned model",
                       description="Write (1 - alpha) * BASE + alpha * FINETUNED as a saved model (the fine-tuned "
                       "model's architecture and ROI branch). Both must be of one architecture.")
    p.add_argument("--base", required=True, help="the zero-shot model: a saved directory, hf-hub:ORG/NAME or a "
                                                 "CLIP name (openclip:ViT-B-16/openai, hfclip:FOLDER, ...)")
    p.add_argument("--finetuned", required=True, help="the fine-tuned model: a saved directory or hf-hub:ORG/NAME")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the fine-tuned model (default %(default)s)")
    p.add_argument("--out", required=True, help="output model directory (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds files")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.io import check_new_folder, check_not_inputs
    from focusclip.model import get_tokenizer, load_model, save_model
    from focusclip.model.factory import load_model_spec
    from focusclip.model.merge import check_alpha, merge_models

    check_alpha(args.alpha, "--alpha")  # before loading either model
    check_new_folder("--out", args.out, args.overwrite)
    check_not_inputs({"--out": args.out}, {"--base": args.base, "--finetuned": args.finetuned})
    base = load_model_spec(args.base).model
    merged = merge_models(base, load_model(args.finetuned), args.alpha)
    save_model(merged, args.out, get_tokenizer(args.finetuned),
               extra={"merge": {"base": args.base, "finetuned": args.finetuned, "alpha": args.alpha}})
    print(f"merged (1 - {args.alpha:g}) x {args.base} + {args.alpha:g} x {args.finetuned} -> {args.out}")
    return 0

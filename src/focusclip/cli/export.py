"""``focusclip export``: a model back to its open_clip / Hugging Face checkpoint."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="write a model built on open_clip / Hugging Face CLIP as that library's checkpoint",
                       description="open_clip models: OUT/open_clip_model.safetensors + open_clip_config.json "
                       "(open_clip.create_model_and_transforms('local-dir:OUT'), or (ARCH, pretrained=the file)). "
                       "Hugging Face models: CLIPModel.save_pretrained(OUT) with tokenizer and image processor. "
                       "The ROI branch's own parameters are dropped.")
    p.add_argument("--model", required=True, help="a saved model directory or hf-hub:ORG/NAME[@REVISION]")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds files")
    p.add_argument("--format", choices=["open_clip", "hf"], help="checked against the model's library (default: it)")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.io import check_new_folder, check_not_inputs
    from focusclip.model import get_tokenizer, load_model
    from focusclip.model.export import check_export, export_model
    from focusclip.model.towers import clip_family

    check_new_folder("--out", args.out, args.overwrite)
    check_not_inputs({"--out": args.out}, {"--model": args.model})
    check_export(args.model, args.format)  # from its config: before the weights load
    model = load_model(args.model)
    out = export_model(model, args.out, get_tokenizer(args.model), args.format)
    print(clip_family(model.config["clip"]).exported.format(out=out))
    return 0

"""``focusclip train``: train a model from a YAML config."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
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
    return p


def run(args: argparse.Namespace) -> int:
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

"""``focusclip ablate``: which focus works best, on the same data, budget and seeds."""

from __future__ import annotations

import argparse

from focusclip.cli._args import (
    Subparsers,
    add_recipe_options,
    non_negative_int,
    positive_float,
    positive_int,
    recipe_kwargs,
)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    from focusclip.experiments.ablate import AblateConfig, inference_modes, trained_modes

    d = AblateConfig()
    p = sub.add_parser("ablate", help="compare focus mechanisms and inference-time focus modes on the same data, "
                                      "budget and seeds",
                       description="Pretrain a small CLIP once per seed on plain-captioned synthetic images "
                       "(cached), fine-tune one arm per focus mechanism from it (plus the demo's towers), evaluate each "
                       "zero-shot about the labelled subject of crowd scenes on the whole image and with every "
                       "focus mode at inference it can host, and write a table (mean ± std over seeds), the "
                       "verdict in words, a bar chart and report.md. Finished runs are reused. See docs/focus.md.")
    p.add_argument("--out", default=d.out_dir, help="output folder (report.md, figures, runs, data, results)")
    p.add_argument("--modes", default=",".join(d.modes),
                   help=f"ViT arms to train, out of {', '.join(trained_modes())} (none: the CLIP baseline)")
    p.add_argument("--model", default=d.model, help="the ViT arms' model config (attention / alpha need a ViT)")
    p.add_argument("--conv-modes", default=",".join(d.conv_modes),
                   help="arms on the demo's towers (highlight: the demo's model; pool); '' for none")
    p.add_argument("--conv-model", default=d.conv_model, help="the conv arms' model config (the demo's towers)")
    p.add_argument("--focus-modes", default=",".join(d.focus_modes),
                   help=f"inference-time focus modes tried on every arm that can host them, out of "
                        f"{', '.join(inference_modes())}; '' for none (each model's own mechanism is always tried)")
    p.add_argument("--base", default=d.base,
                   help="where the ViT arms start: pretrained (the cached synthetic-pretrained CLIP, built when "
                        "missing), none (random initialisation) or a saved model directory of --model")
    p.add_argument("--pretrain-only", action="store_true",
                   help="build (or find) the pretrained CLIP of each seed, print where, stop")
    p.add_argument("--pretrain-dir", default=d.pretrain_dir, help="cache folder of the pretrained CLIP")
    p.add_argument("--pretrain-n", type=positive_int, default=d.pretrain_n, help="pretraining images")
    p.add_argument("--pretrain-epochs", type=positive_int, default=d.pretrain_epochs, help="pretraining epochs")
    p.add_argument("--pretrain-batch-size", type=positive_int, default=d.pretrain_batch_size,
                   help="pretraining batch size")
    p.add_argument("--pretrain-lr", type=positive_float, default=d.pretrain_lr, help="pretraining learning rate")
    add_recipe_options(p, d)
    p.add_argument("--patch-size", type=non_negative_int, default=d.patch_size,
                   help="the ViT's patch size (0: the model config's)")
    p.add_argument("--conv-image-size", type=positive_int, default=d.conv_image_size,
                   help="the conv arms' resolution (pixels)")
    p.add_argument("--crowd", type=non_negative_int, default=d.crowd,
                   help="more full-size, unlabelled people beside the labelled subject in every scene "
                        "(0: single-subject scenes)")
    p.add_argument("--tasks", default=",".join(d.tasks),
                   help="zero-shot tasks or sets (as focusclip eval --tasks); other datasets than the synthetic "
                        "world are read from --data-root")
    p.add_argument("--data-root", default=d.data_root, help="where the datasets of --tasks are (as focusclip eval)")
    p.add_argument("--train-config", default=None, metavar="YAML",
                   help="a training config whose keys replace the recipe's (each arm keeps its name, folder, "
                        "seed and mode)")
    return p


def _items(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from focusclip.experiments.ablate import AblateConfig, pretrained_base, run_ablation

    cfg = AblateConfig(**recipe_kwargs(args), crowd=args.crowd, modes=_items(args.modes),
                       conv_model=args.conv_model, conv_modes=_items(args.conv_modes),
                       focus_modes=_items(args.focus_modes), base=args.base, pretrain_dir=args.pretrain_dir,
                       pretrain_n=args.pretrain_n, pretrain_epochs=args.pretrain_epochs,
                       pretrain_lr=args.pretrain_lr, pretrain_batch_size=args.pretrain_batch_size, patch_size=args.patch_size,
                       conv_image_size=args.conv_image_size, tasks=_items(args.tasks), data_root=args.data_root,
                       train_config=args.train_config)
    if args.pretrain_only:
        cfg.check()
        for seed in cfg.seeds:
            print(f"pretrained CLIP, seed {seed}: {pretrained_base(cfg, seed)}")
        return 0
    result = run_ablation(cfg)
    print(result["table"])
    print(f"\nreport: {result['report']}")
    return 0

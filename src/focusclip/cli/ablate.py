"""``focusclip ablate``: compare focus mechanisms on the same data, budget and seeds."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, add_recipe_options, non_negative_int, recipe_kwargs


def add_parser(sub: Subparsers) -> None:
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
    add_recipe_options(p, d)
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


def run(args: argparse.Namespace) -> int:
    from focusclip.experiments.ablate import AblateConfig, run_ablation

    cfg = AblateConfig(**recipe_kwargs(args), crowd=args.crowd, modes=[m.strip() for m in args.modes.split(",")
                                                                        if m.strip()],
                       tasks=[t.strip() for t in args.tasks.split(",") if t.strip()], data_root=args.data_root,
                       train_config=args.train_config)
    result = run_ablation(cfg)
    print(result["table"])
    print(f"\nreport: {result['report']}")
    return 0

"""``focusclip demo``: the whole story offline, end to end."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers, add_recipe_options, recipe_kwargs


def add_parser(sub: Subparsers) -> None:
    from focusclip.experiments.demo import DemoConfig

    d = DemoConfig()
    p = sub.add_parser("demo", help="the whole story offline: synthetic world -> descriptions -> train "
                                    "FocusCLIP and CLIP -> zero-shot -> report")
    p.add_argument("--out", default=d.out_dir, help="output folder (report.md, figures, runs, data)")
    p.add_argument("--model", default=d.model, help="towers: focusclip-MODEL and clip-MODEL (e.g. tiny)")
    add_recipe_options(p, d)
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.experiments.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(**recipe_kwargs(args)))
    print(result["table"])
    print(f"\nreport: {result['report']}")
    return 0

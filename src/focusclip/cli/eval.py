"""``focusclip eval``: zero-shot evaluation, and the WiSE-FT path with ``--interpolate``."""

from __future__ import annotations

import argparse
import logging

from focusclip.cli._args import MODEL_HELP, Subparsers, non_negative_int, positive_int

logger = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="zero-shot evaluation on the paper's benchmarks (or your own tasks)",
                       description="Zero-shot classification on human-centric benchmarks read from their "
                                   "distributed layouts (docs/datasets.md). Results are keyed by task and "
                                   "model fingerprint: an existing --out file is extended, not recomputed.")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--base", help="with --interpolate: the zero-shot model --model was fine-tuned from "
                                  "(a saved directory, hf-hub:ORG/NAME or a CLIP name)")
    p.add_argument("--interpolate", metavar="ALPHAS",
                   help="WiSE-FT path: evaluate (1 - a) * base + a * model for each a, e.g. 0,0.25,0.5,0.75,1; "
                        "writes a table and <out stem>_interpolation.png")
    p.add_argument("--tasks", default="paper",
                   help="paper | all | extra | synthetic | task names | a tasks .json file; comma separated")
    p.add_argument("--data-root", default="data/{dataset}",
                   help="dataset folders: a template with {dataset}, a folder holding one folder per dataset, "
                        "or one dataset's own folder (e.g. the demo's runs/demo/data)")
    p.add_argument("--out", default="results.json", help="results JSON (extended); a .md table is written beside it")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--workers", type=non_negative_int, default=2,
                   help="parallel worker processes loading images (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--subset", type=positive_int, default=None,
                   help="at most N images per task (a fixed random subset)")
    p.add_argument("--ensemble", action="store_true", help="average each class over the task's extra templates")
    p.add_argument("--focus", choices=["boxes"], default=None,
                   help="boxes: instead of cropping to the person boxes the datasets ship (Stanford40, EMOTIC, "
                        "LAGENDA, CUB; the synthetic world's subjects), show whole images and focus the model on "
                        "the boxes (roi.mode attention / alpha / pool; docs/focus.md)")
    p.add_argument("--focus-mode", default=None, metavar="MODE",
                   help="with --focus boxes: how to focus (auto, attention, alpha, pool, crop, blur, circle, dim; "
                        "default: the model's own mechanism): attention works on any ViT, crop / blur / circle / "
                        "dim on every model, untouched CLIPs included (docs/focus.md)")
    p.add_argument("--force", action="store_true", help="recompute results already in --out")
    p.add_argument("--no-confusion", action="store_true", help="do not draw confusion-matrix PNGs")
    p.add_argument("--dataset-option", action="append", default=[], metavar="DATASET.KEY=VALUE",
                   help="an extra option for a dataset's loader, e.g. ferplus.fer2013_csv=data/fer2013/fer2013.csv "
                        "(repeatable; values are parsed as YAML scalars)")
    p.add_argument("--list", action="store_true", help="list the registered tasks and sets, then exit")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.errors import OutputError, UsageError
    from focusclip.io import atomic_write_text, check_file_target, check_not_inputs
    from focusclip.model.factory import load_model_spec
    from focusclip.zeroshot.datasets import parse_dataset_options
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
    if args.interpolate is not None:
        from focusclip.model.merge import parse_alphas

        parse_alphas(args.interpolate)  # before anything is loaded; "" is an error, not "no --interpolate"
    if bool(args.base) != (args.interpolate is not None):
        raise UsageError("--interpolate and --base go together: --model FINETUNED --base ZERO_SHOT "
                         "--interpolate 0,0.5,1")
    if args.focus_mode is not None:
        from focusclip.model.focus import FOCUS_AT_INFERENCE

        if args.focus_mode not in FOCUS_AT_INFERENCE:
            raise UsageError(f"--focus-mode {args.focus_mode!r}: choose one of {', '.join(FOCUS_AT_INFERENCE)}")
        if args.focus is None:
            raise UsageError("--focus-mode needs --focus boxes (the boxes to focus on)")
    tasks = resolve_tasks(args.tasks)  # before loading the model: a misspelt task fails fast
    check_data_root(args.data_root)
    md = Path(args.out).with_suffix(".md")
    check_file_target("--out", args.out)
    check_not_inputs({"--out": args.out, "--out's table": md}, {"--model": args.model, "--tasks": args.tasks})
    if md.exists() and not Path(args.out).exists():
        raise OutputError(f"{md} exists but {args.out} does not, so focusclip eval did not write it; choose "
                          "another --out")
    options = parse_dataset_options(args.dataset_option)
    if args.interpolate is not None:
        return _eval_interpolation(args, tasks, options)
    loaded = load_model_spec(args.model, device=None)
    data = evaluate(loaded.model, loaded.tokenizer, loaded.transform, tasks, args.data_root,
                    batch_size=args.batch_size, workers=args.workers, device=args.device, limit=args.subset,
                    ensemble=args.ensemble, out=args.out, force=args.force, model_name=loaded.name,
                    confusion=not args.no_confusion, dataset_options=options, focus=args.focus,
                    focus_mode=args.focus_mode)
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

"""Argparse helpers shared by the verb modules of :mod:`focusclip.cli` (not a verb: its name starts with ``_``).

Verb modules import what they need from here: ``from focusclip.cli._args import positive_int, ...``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE_HELP = "prompt template with {c} for the label (repeat to average several; default "\
                        "'a photo of a person {c}')"

#: What a verb module's ``add_parser`` receives (``argparse._SubParsersAction``).
Subparsers = argparse._SubParsersAction


def bounded(cast: Callable[[str], float], lowest: float, strict: bool, noun: str) -> Callable[[str], float]:
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


positive_int = bounded(int, 1, False, "a whole number")
non_negative_int = bounded(int, 0, False, "a whole number")
positive_float = bounded(float, 0, True, "a number")


def read_lines(path: str, what: str) -> list[str]:
    """The non-blank lines of a text file, stripped (errors name the file as ``what``)."""
    from focusclip.io import read_text

    return [line.strip() for line in read_text(path, what).splitlines() if line.strip()]


def split_files_out(out: str, splits: Sequence[str]) -> dict[str, object]:
    """``{"--out's train.jsonl": OUT/train.jsonl, ...}``: the split files a ``data`` command writes."""
    return {f"--out's {s}.jsonl": Path(out) / f"{s}.jsonl" for s in splits}


# ------------------------------------------------------------------ detector options (heatmap, predict, serve, data detect)
def add_detector_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--detector-weights", metavar="PATH|URL",
                   help="rtmo: the RTMO .onnx (or its ONNX SDK .zip), by local path or URL (downloaded once)")
    g.add_argument("--min-visibility", type=float, default=None,
                   help="joints below this confidence are invisible (default: mediapipe 0.5, rtmo 0.3)")


def detector_options(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The constructor options of detector ``name`` from :func:`add_detector_options`' flags."""
    from focusclip.detect import detector_options as options

    return options(name, weights=args.detector_weights, min_visibility=args.min_visibility)


def make_detector(name: str, args: argparse.Namespace) -> Any:
    from focusclip.detect import create_detector

    return create_detector(name, **detector_options(name, args))


# ------------------------------------------------------------------ recipe options (demo, ablate)
def add_recipe_options(p: argparse.ArgumentParser, d: Any) -> None:
    """The options of a recipe that trains several arms (demo, ablate), with ``d``'s defaults."""
    p.add_argument("--n-train", type=positive_int, default=d.n_train, help="training + validation images")
    p.add_argument("--n-eval", type=positive_int, default=d.n_eval, help="held-out zero-shot images")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help="training resolution (pixels)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="training epochs per arm")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="global batch size")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="AdamW learning rate")
    p.add_argument("--text-unlocked-layers", type=int, default=d.text_unlocked_layers,
                   help="train only the last N text-tower layers; -1 trains the whole tower")
    p.add_argument("--seeds", default=",".join(map(str, d.seeds)), help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--workers", type=non_negative_int, default=d.workers,
                   help="parallel worker processes loading images")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d.precision,
                   help="training precision (auto: bf16 where the CPU/GPU computes it natively, after a check)")


def recipe_kwargs(args: argparse.Namespace) -> dict:
    """The recipe config's keyword arguments from :func:`add_recipe_options`' flags (and ``--out``, ``--model``)."""
    from focusclip.experiments.toolkit import parse_seeds

    seeds = parse_seeds(args.seeds)  # distinct whole numbers >= 0, refused before any work
    return dict(out_dir=args.out, n_train=args.n_train, n_eval=args.n_eval, model=args.model,
                image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                text_unlocked_layers=args.text_unlocked_layers, seeds=seeds, workers=args.workers,
                precision=args.precision)

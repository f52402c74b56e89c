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

#: What ``--model`` accepts in every verb (all go through focusclip.model.factory.load_model_spec).
MODEL_HELP = ("a saved model directory (focusclip.save_model), a saved model on the Hugging Face Hub "
              "(hf-hub:ORG/NAME[@REVISION]), a CLIP name (openclip:ViT-B-16/openai, openclip:ARCH@FILE, "
              "hfclip:ID_OR_FOLDER) or a registered model name (see `focusclip models`)")

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
#: the detectors' names (focusclip.detect.DETECTORS, spelled out so --help does not import the library)
DETECTOR_NAMES = ("mediapipe", "mediapipe-tasks", "rtmo", "rtmpose")


def add_detector_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--detector-weights", metavar="PATH|URL",
                   help="mediapipe-tasks: a PoseLandmarker .task file; rtmo / rtmpose: the model's .onnx (or its "
                        "ONNX SDK .zip); by local path or URL (downloaded once into $FOCUSCLIP_CACHE)")
    g.add_argument("--person-weights", metavar="PATH|URL",
                   help="rtmpose: a YOLOX person detector .onnx for the person boxes (default: the people the "
                        "mediapipe detector finds, offline)")
    g.add_argument("--min-visibility", type=float, default=None,
                   help="joints below this confidence are invisible (default: mediapipe 0.5, rtmo 0.3)")
    g.add_argument("--max-people", type=positive_int, default=None, metavar="N",
                   help="keep at most N people per photo, the highest-scoring (default: every person found; "
                        "mediapipe with 1: one fast whole-photo pass; mediapipe-tasks: 8)")


def detector_options(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The constructor options of detector ``name`` from :func:`add_detector_options`' flags."""
    from focusclip.detect import detector_options as options

    return options(name, weights=args.detector_weights, min_visibility=args.min_visibility,
                   max_people=getattr(args, "max_people", None), person_weights=getattr(args, "person_weights", None))


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
    from focusclip.errors import UsageError

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds!r}: expected comma-separated whole numbers, e.g. 0,1,2") from None
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    return dict(out_dir=args.out, n_train=args.n_train, n_eval=args.n_eval, model=args.model,
                image_size=args.image_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                text_unlocked_layers=args.text_unlocked_layers, seeds=seeds, workers=args.workers,
                precision=args.precision)


# ------------------------------------------------------------------ describer options (describe, data build)
def add_describer_options(p: argparse.ArgumentParser, concurrency: int = 8, backend: str | None = None) -> None:
    """``--backend`` and the options of each describer backend (``create_describer``'s arguments)."""
    p.add_argument("--backend", choices=["openai", "rules"], default=backend, help="openai: LLM endpoint; rules: offline")
    g = p.add_argument_group("openai backend")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    g.add_argument("--model", default="gpt-4-0613", help="model name (default: %(default)s, as in the paper)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="name of the environment variable holding the API key (default: %(default)s)")
    g.add_argument("--concurrency", type=positive_int, default=concurrency,
                   help="requests in flight at once (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (default: %(default)s)")
    g.add_argument("--max-tokens", type=positive_int, default=512,
                   help="most new tokens per description (default: %(default)s)")
    g.add_argument("--frequency-penalty", type=float, default=1.0,
                   help="OpenAI frequency penalty (default: %(default)s, as in the paper)")
    g.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per request (default: %(default)s)")
    g.add_argument("--max-retries", type=non_negative_int, default=6,
                   help="retries on 429/5xx/timeouts (default: %(default)s)")
    g.add_argument("--retry-base-delay", type=positive_float, default=1.0,
                   help="first backoff in seconds (doubles)")
    r = p.add_argument_group("rules backend")
    r.add_argument("--seed", type=int, default=0, help="seed of the phrasing variants")
    r.add_argument("--attributes", action=argparse.BooleanOptionalAction, default=True,
                   help="mention the records' attribute labels (age, expression) when present (default: on)")


def describer_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``focusclip.describe.create_describer``'s keyword arguments from :func:`add_describer_options`' flags."""
    return {"seed": args.seed, "attributes": args.attributes, "model": args.model, "base_url": args.base_url,
            "api_key_env": args.api_key_env, "timeout": args.timeout, "temperature": args.temperature,
            "max_tokens": args.max_tokens, "frequency_penalty": args.frequency_penalty,
            "max_retries": args.max_retries, "retry_base_delay": args.retry_base_delay}

"""The command line: ``focusclip <verb> ...``. Parses arguments, calls the library, prints results.

Every verb is one ``_add_<verb>(subparsers)`` function that builds its parser and sets ``func`` to a
``_run_<verb>(args) -> int`` function; ``_VERBS`` lists them. Library imports happen inside the run
functions so that ``focusclip --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

log = logging.getLogger("focusclip")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


# --------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model configs")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from focusclip.factory import get_model_config, list_models

    for name in list_models():
        cfg = get_model_config(name)
        roi = "ROI" if cfg.get("roi", {}).get("enabled") else "   "
        print(f"{name:28s} {roi}  vision={cfg['vision']['timm_model_name']}  "
              f"text={cfg['text'].get('hf_model_name', 'tiny')}  embed_dim={cfg['embed_dim']}")
    return 0


# ---------------------------------------------------------------------------------- registry
_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_models,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focusclip",
        description="FocusCLIP: subject-focused language-image pretraining and zero-shot classification.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for add in _VERBS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError) as e:
        log.debug("error", exc_info=True)
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"focusclip {args.verb}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

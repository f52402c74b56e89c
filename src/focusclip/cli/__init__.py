"""The command line: ``focusclip <verb> ...``. Parses arguments, calls the library, prints results.

One module per verb: ``focusclip/cli/<verb>.py`` defines ``add_parser(sub) -> ArgumentParser`` (builds the
verb's parser with ``sub.add_parser("<verb>", ...)``) and ``run(args) -> int``. :func:`add_verbs` finds
them by themselves: every module or package of this folder whose name does not start with ``_`` is a
verb, so adding a verb is adding one file (no list to edit). ``data``'s commands are the modules of
``cli/data/``, found the same way. Shared argparse helpers are in :mod:`focusclip.cli._args`. Library
imports happen inside the ``run`` functions so that ``focusclip --help`` stays fast. See
docs/internals.md, "Adding a verb".

Errors: :func:`main` is the one place that turns an exception into one line ``focusclip <verb>: error:
...`` on stderr, exit status 2 for usage errors and 1 for failures; ``-v`` (before or after the verb) also
prints the traceback. Every command refuses to write over its own inputs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

logger = logging.getLogger("focusclip")


class _VerbParser(argparse.ArgumentParser):
    """A verb's parser: accepts ``-v`` / ``-q`` after the verb too, and records its command name (``prog``)
    for error messages. Its defaults never override what the main parser already set."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="debug log output; errors show their traceback")
        self.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="warnings and errors only")
        self.set_defaults(command=self.prog)


def verb_modules(package: ModuleType) -> list[ModuleType]:
    """The verb modules of a package of verbs (this one, ``cli.data``): every module or subpackage whose
    name does not start with ``_``, in name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def add_verbs(sub: argparse._SubParsersAction, package: ModuleType) -> None:
    """Add the parser of every verb module of ``package`` to ``sub``; each parser runs its module's ``run``."""
    for module in verb_modules(package):
        module.add_parser(sub).set_defaults(func=module.run)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focusclip",
        description="FocusCLIP: subject-focused language-image pretraining and zero-shot classification.",
    )
    from focusclip import __version__

    parser.add_argument("--version", action="version", version=f"focusclip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="debug log output; errors show their traceback")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help="warnings and errors only")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_VerbParser)
    add_verbs(sub, sys.modules[__name__])
    return parser


def _error_line(e: BaseException) -> tuple[str, int]:
    """One line for an exception and the exit status: 2 for usage errors, 1 for other failures."""
    from focusclip.errors import FocusCLIPError

    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if "Original Traceback" in text:  # an error re-raised from a DataLoader worker: keep its last line
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    if isinstance(e, FocusCLIPError):
        return text, e.exit_code
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or text}", 1
    if isinstance(e, ValueError | KeyError | FileNotFoundError | ImportError):
        return text, 1
    return f"unexpected {type(e).__name__}: {text} (rerun with -v for the traceback, and please report it)", 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error argparse has already printed
        return int(e.code or 0)
    _setup_logging(-1 if args.quiet else args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (`focusclip ... | head`) shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (`| head`): what it wanted was printed. Point stdout at devnull so the
        # interpreter's final flush does not print a BrokenPipeError report (Python's documented recipe).
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place errors become messages
        if args.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        text, code = _error_line(e)
        print(f"{args.command}: error: {' '.join(text.split())}", file=sys.stderr)
        return code

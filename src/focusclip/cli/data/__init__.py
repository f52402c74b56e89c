"""``focusclip data <command>``: build and check datasets. Each command is one module of this folder
(``cli/data/<command>.py`` with ``add_parser(dsub)`` and ``run(args)``), found by
:func:`focusclip.cli.add_verbs` as the verbs are."""

from __future__ import annotations

import argparse
import sys

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    from focusclip.cli import add_verbs

    p = sub.add_parser("data", help="build and check datasets (synthetic world, MPII, releases, validation)")
    dsub = p.add_subparsers(dest="data_cmd", metavar="COMMAND")
    add_verbs(dsub, sys.modules[__name__])
    p.set_defaults(print_data_help=p.print_help)
    return p


def run(args: argparse.Namespace) -> int:
    """``focusclip data`` without a command: its help, exit status 2."""
    args.print_data_help()
    return 2

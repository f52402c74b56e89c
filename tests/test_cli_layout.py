"""The command line's layout: one module per verb, found by itself (docs/internals.md, "Adding a verb")."""

from __future__ import annotations

import sys

import focusclip.cli
import focusclip.cli.data
from focusclip.cli import build_parser, main, verb_modules

VERB = '''
"""``focusclip hello``: a verb added as one file."""

import argparse


def add_parser(sub):
    p = sub.add_parser("hello", help="say hello")
    p.add_argument("--name", default="world")
    return p


def run(args: argparse.Namespace) -> int:
    print(f"hello {args.name}")
    return 3
'''


def _verbs(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "verb").choices


def test_a_new_verb_module_registers_itself(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(VERB)
    (tmp_path / "_helpers.py").write_text("raise AssertionError('a module starting with _ is not a verb')\n")
    monkeypatch.setattr(focusclip.cli, "__path__", [*focusclip.cli.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "focusclip.cli.hello", raising=False)
    try:
        assert "hello" in _verbs(build_parser())
        assert main(["hello", "--name", "focus"]) == 3
        assert capsys.readouterr().out == "hello focus\n"
    finally:
        sys.modules.pop("focusclip.cli.hello", None)


def test_a_new_data_command_registers_itself(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(VERB)
    monkeypatch.setattr(focusclip.cli.data, "__path__", [*focusclip.cli.data.__path__, str(tmp_path)])
    try:
        assert main(["data", "hello"]) == 3
        assert capsys.readouterr().out == "hello world\n"
    finally:
        sys.modules.pop("focusclip.cli.data.hello", None)


def test_every_verb_module_defines_add_parser_and_run():
    verbs = verb_modules(focusclip.cli)
    names = {m.__name__.rsplit(".", 1)[1] for m in verbs}
    assert {"data", "eval", "predict", "serve", "train", "heatmap", "describe"} <= names
    assert "_args" not in names and "__main__" not in names
    for module in [*verbs, *verb_modules(focusclip.cli.data)]:
        assert callable(module.add_parser) and callable(module.run), module.__name__
    assert set(_verbs(build_parser())) == names  # each module adds exactly its verb


def test_data_without_a_command_prints_its_help(capsys):
    assert main(["data"]) == 2
    assert "validate" in capsys.readouterr().out

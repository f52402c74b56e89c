"""The docs run (issue 21, "Docs that run"): every ```python block and every `focusclip` command of README.md and
docs/*.md is checked, so a renamed option or function breaks a test, not a reader.

Parsing is Sybil's (the maintained tool for executable documentation: its Markdown code-block lexer and its
``<!-- skip: next "reason" -->`` directive); the rules, documented for writers in docs/contributing-docs.md:

- a ```python block runs (the blocks of one page share one namespace, in a scratch folder holding a tiny
  trained model at the demo's path, photos ``me.jpg`` / ``person.jpg`` / ``two_people.jpg`` and
  ``my_data/``), unless ``<!-- skip: next "reason" -->`` (Sybil's directive) stands before it;
- in a ```bash block, every line that starts with ``focusclip`` is parsed by the command line's own parser
  (option names, choices, value types; nothing runs); ``<!-- docs-test: run -->`` before the block runs its
  commands for real (in-process, exit status 0 expected), ``<!-- docs-test: no-parse -->`` leaves it alone
  (placeholders such as ``IMAGE...`` or ``[--json]``);
- ``<!-- docs-test: slow -->`` before a block: it runs only in the slow test (``-m slow``).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sybil import Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.example import NotEvaluated
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer
from sybil.region import Region

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "_docs_test_next"  #: the namespace key holding the docs-test directive for the next block
DIRECTIVES = ("run", "no-parse", "slow")


class DocsTestParser:
    """``<!-- docs-test: run | no-parse | slow -->``: how the next code block is checked."""

    def __init__(self) -> None:
        self.lexer = DirectiveInHTMLCommentLexer(directive="docs-test")

    def __call__(self, document) -> Any:
        for lexed in self.lexer(document):
            words = tuple(w for w in lexed.lexemes["arguments"].split() if w != "-->")
            if not words or any(w not in DIRECTIVES for w in words):
                raise ValueError(f"{document.path}: unknown docs-test directive {words}; known: {DIRECTIVES}")
            yield Region(lexed.start, lexed.end, words, _remember)


def _remember(example) -> None:
    example.namespace[MARK] = example.parsed


def _directives(example) -> tuple[str, ...]:
    return tuple(example.namespace.pop(MARK, ()))


def _check_slow(example, words: tuple[str, ...]) -> None:
    if "slow" in words and not example.namespace["_slow"]:
        example.namespace["_skipped_slow"].append(example.line)
        raise NotEvaluated()


_python = PythonEvaluator()


def evaluate_python(example) -> None:
    _check_slow(example, _directives(example))
    _python(example)


def command_lines(source: str) -> list[list[str]]:
    """The ``focusclip`` commands of a bash block as argument lists (continuation lines joined, comments
    dropped; a pipe or redirection ends the command)."""
    out = []
    for line in source.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "focusclip":
            continue
        cut = next((i for i, w in enumerate(words) if w in ("|", ">", ">>", "&&", ";", "2>&1")), len(words))
        out.append(words[1:cut])
    return out


def evaluate_bash(example) -> None:
    from focusclip.cli import build_parser, main

    words = _directives(example)
    if "no-parse" in words:
        raise NotEvaluated()
    _check_slow(example, words)
    for argv in command_lines(example.parsed):
        where = f"{example.path}:{example.line}: focusclip {shlex.join(argv)}"
        if "run" in words:
            rc = main(argv)
            assert rc == 0, f"{where} exited with {rc}"
            continue
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            if e.code:  # --help exits 0
                raise AssertionError(f"{where}: the command line refuses this (see above); fix the docs, or put "
                                     "<!-- docs-test: no-parse --> before a block of placeholders") from None


SYBIL = Sybil(parsers=[DocsTestParser(), SkipParser(), CodeBlockParser("python", evaluate_python),
                       CodeBlockParser("bash", evaluate_bash)], path="..", patterns=["README.md", "docs/*.md"])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """What the docs' examples expect in the current folder: the demo's trained model (a tiny one), photos,
    and the custom-data example as ``my_data/``."""
    import torch

    import focusclip

    root = tmp_path_factory.mktemp("docs")
    torch.manual_seed(0)
    focusclip.save_model(focusclip.create_model("focusclip-tiny"), root / "runs/demo/runs/focusclip-seed0/model-final",
                         focusclip.get_tokenizer("focusclip-tiny"))
    rng = np.random.default_rng(0)
    for name, (w, h) in {"me.jpg": (96, 128), "you.jpg": (128, 96), "person.jpg": (120, 160),
                         "two_people.jpg": (160, 120)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
    shutil.copytree(ROOT / "examples" / "custom", root / "my_data")
    from focusclip.data.records import read_records, write_records
    from focusclip.data.synthetic import generate_world
    from focusclip.describe.rules import describe_record

    info = generate_world(root / "runs" / "mpii", 12, 0, image_size=48, eval_n=0, show_progress=False)
    for split in ("train_jsonl", "val_jsonl"):  # a records folder as `data mpii` + `describe` leave it
        records = read_records(info[split])
        write_records(info[split], [{**r, "captions": [describe_record(r)]} for r in records])
    return root


def _run_page(page: Path, workspace: Path, tmp_path: Path, slow: bool) -> None:
    folder = tmp_path / "cwd"
    shutil.copytree(workspace, folder)
    old = Path.cwd()
    os.chdir(folder)
    try:
        document = SYBIL.parse(page)
        document.namespace.update(_slow=slow, _skipped_slow=[])
        for example in document:
            try:
                example.evaluate()
            except NotEvaluated:
                pass
            except pytest.skip.Exception:
                raise
            except Exception as e:  # noqa: BLE001 - Sybil's skip directive raises unittest.SkipTest
                if type(e).__name__ == "SkipTest":
                    continue
                raise AssertionError(f"{page.relative_to(ROOT)} line {example.line}: {type(e).__name__}: {e}") from e
    finally:
        os.chdir(old)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_docs_run(page, workspace, tmp_path):
    _run_page(page, workspace, tmp_path, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if "docs-test: slow" in p.read_text(encoding="utf-8")],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_run_slow_blocks_too(page, workspace, tmp_path):
    _run_page(page, workspace, tmp_path, slow=True)


def test_command_lines_are_what_the_shell_would_pass():
    assert command_lines("focusclip eval --model m \\\n   --out r.json   # comment\nls\n"
                         "focusclip describe --stats d.jsonl | head\n") == [
        ["eval", "--model", "m", "--out", "r.json"], ["describe", "--stats", "d.jsonl"]]

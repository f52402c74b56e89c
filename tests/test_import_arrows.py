"""Imports follow the documented arrows (docs/internals.md, "The data flow, one direction"): checked on
the source, including imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "focusclip"


def project_imports(relpath: str) -> set[str]:
    """Every ``focusclip...`` module a source file imports, at the top or inside functions."""
    tree = ast.parse((SRC / relpath).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("focusclip"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("focusclip"))
    return found


@pytest.mark.parametrize("relpath, forbidden", [
    ("drawing.py", ("focusclip.data.keypoint_files", "focusclip.detect", "focusclip.io", "focusclip.overlays")),
    ("data/cub.py", ("focusclip.describe",)),
    ("zeroshot/images.py", ("focusclip.zeroshot.datasets.actions",)),
    ("model/focus/alpha.py", ("focusclip.model.focus.attention",)),
    ("labels.py", ("focusclip.predict", "focusclip.serve", "focusclip.cli")),
    ("save_format.py", ("focusclip",)),
])
def test_a_module_does_not_import_against_the_flow(relpath, forbidden):
    bad = sorted(m for m in project_imports(relpath) if m.startswith(forbidden))
    assert not bad, f"{relpath} imports {bad}"


def test_no_library_module_imports_the_command_line():
    offenders = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                       if "cli" not in p.relative_to(SRC).parts
                       and any(m.startswith("focusclip.cli") for m in project_imports(str(p.relative_to(SRC)))))
    assert not offenders

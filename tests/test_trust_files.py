"""Issue 21 (trust, second pass), files: the usual permissions for every file we write (item 8), CSV and
JSON output a spreadsheet or a JSON parser takes as it is (item 9), and shard writing (item 13)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

import focusclip
from focusclip.io import atomic_open, atomic_save, atomic_write_json, default_file_mode


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ item 8
def test_atomic_writers_give_the_usual_mode(tmp_path, umask):
    expected = 0o666 & ~umask
    assert default_file_mode() == expected
    atomic_write_json(tmp_path / "a.json", {"x": 1})

    def private_writer(name: str) -> None:  # what safetensors does: create the file 0600
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)

    atomic_save(tmp_path / "b.bin", private_writer)
    with atomic_open(tmp_path / "c.txt") as f:
        f.write("c")
    for name in ("a.json", "b.bin", "c.txt"):
        assert _mode(tmp_path / name) == expected, name


def test_saved_and_exported_models_are_readable_by_others(tmp_path, umask, hf_clip_dir, open_clip_dir):
    """model.safetensors was 0600 whatever the umask (safetensors creates it so): a server running as
    another user could not read the demo's models."""
    from focusclip.model.export import export_model

    expected = 0o666 & ~umask
    torch.manual_seed(0)
    saved = focusclip.save_model(focusclip.create_model("clip-tiny"), tmp_path / "m", focusclip.get_tokenizer("clip-tiny"))
    assert _mode(saved / "model.safetensors") == expected and _mode(saved / "config.json") == expected
    for source, name in ((hf_clip_dir, "hf"), (open_clip_dir, "oc")):
        prefix = "hfclip:" if name == "hf" else "openclip:local-dir:"
        model = focusclip.create_model(f"{prefix}{source}")
        out = export_model(model, tmp_path / f"export-{name}", tokenizer=focusclip.get_tokenizer(f"{prefix}{source}"))
        weights = [p for p in Path(out).iterdir() if p.suffix == ".safetensors"]
        assert weights and all(_mode(p) == expected for p in weights), [(p.name, oct(_mode(p))) for p in weights]

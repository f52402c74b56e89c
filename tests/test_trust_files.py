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


# ------------------------------------------------------------------------------ item 9
@pytest.mark.parametrize("label", ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_results_csv_escapes_formulas(label):
    import csv
    import io

    from focusclip.serve.results import to_csv

    results = [{"image": "=cmd.png", "predictions": [{"label": label, "prob": 0.5, "score": 0.25},
                                                      {"label": "a person", "prob": 0.5, "score": -0.5}]}]
    rows = list(csv.reader(io.StringIO(to_csv(results), newline="")))
    from focusclip.serve.results import TABLE_HEADERS

    label_col, cosine_col = TABLE_HEADERS.index("label"), TABLE_HEADERS.index("cosine")
    assert rows[1][0] == "'=cmd.png" and rows[1][label_col] == "'" + label
    assert rows[2][label_col] == "a person" and rows[2][cosine_col] == "-0.5"  # numbers stay numbers


def test_json_output_never_writes_bare_nan(tmp_path, caplog):
    import json

    from focusclip.data.records import write_records
    from focusclip.io import JsonlAppender, json_text
    from focusclip.serve.results import to_json

    bad = {"label": "x", "score": float("nan"), "nested": [1.0, float("inf"), {"p": float("-inf")}]}
    text = json_text(bad, where="results")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"label": "x", "score": None, "nested": [1.0, None, {"p": None}]}
    assert "results: 3 non-finite number(s)" in caplog.text and "$.score" in caplog.text
    atomic_write_json(tmp_path / "a.json", bad)
    with JsonlAppender(tmp_path / "b.jsonl") as sink:
        sink.write(bad)
    write_records(tmp_path / "c.jsonl", [bad])
    for name in ("a.json", "b.jsonl", "c.jsonl"):
        raw = (tmp_path / name).read_text()
        assert "NaN" not in raw and "Infinity" not in raw
        json.loads(raw.splitlines()[0] if name.endswith("l") else raw, parse_constant=lambda c: pytest.fail(c))
    assert "NaN" not in to_json({"results": [bad]})


# ------------------------------------------------------------------------------ item 13, same class
def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_atomic_writes_remove_the_temp_file_of_a_killed_writer(tmp_path):
    """A writer killed outright (kill -9) leaves its .NAME.<pid>.tmp; the next write of that file removes
    it (a live process's temp file is kept), as the shard writer's rerun does."""
    from focusclip.io import atomic_save

    dead = _dead_pid()
    stale_json = tmp_path / f".config.json.{dead}.tmp"
    stale_weights = tmp_path / f".model.{dead}.tmp.safetensors"
    alive = tmp_path / f".config.json.{os.getppid()}.tmp"
    for f in (stale_json, stale_weights, alive):
        f.write_bytes(b"half")
    atomic_write_json(tmp_path / "config.json", {"a": 1})
    atomic_save(tmp_path / "model.safetensors", lambda name: Path(name).write_bytes(b"w"))
    assert not stale_json.exists() and not stale_weights.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "config.json", "model.safetensors"])

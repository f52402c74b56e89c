"""Issue 21 (trust, second pass) through the command line: no command writes inside its inputs (item 3),
validation before expensive work (items 12, 13), and the small messages (item 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import focusclip
from test_bad_input import _run  # one line, no traceback


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trust-cli")
    torch.manual_seed(0)
    return focusclip.save_model(focusclip.create_model("focusclip-tiny"), root / "model",
                                focusclip.get_tokenizer("focusclip-tiny"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ item 3
@pytest.mark.parametrize("argv", [
    ("export", "--model", "{m}", "--out", "{m}/sub", "--overwrite"),
    ("export", "--model", "{m}", "--out", "{m}/tokenizer", "--overwrite"),
    ("merge", "--base", "{m}", "--finetuned", "{m}", "--alpha", "0.5", "--out", "{m}/wise", "--overwrite"),
    ("eval", "--model", "{m}", "--tasks", "synthetic", "--out", "{m}/results.json"),
    ("embed", "--model", "{m}", "--texts", "a person", "--out", "{m}/t.npy"),
])
def test_no_command_writes_inside_its_input_model(argv, model_dir, capsys):
    """`export --model M --out M/sub --overwrite` wrote into the input model; every verb that reads a
    model folder refuses an output inside it, before any work."""
    before = _snapshot(model_dir)
    rc, err = _run(capsys, *(a.format(m=model_dir) for a in argv))
    assert rc == 1 and "inside the input" in err, err
    assert _snapshot(model_dir) == before


def test_check_not_inputs_refuses_inside_but_not_beside(tmp_path):
    from focusclip.errors import OutputError
    from focusclip.io import check_not_inputs

    (tmp_path / "in").mkdir()
    check_not_inputs({"--out": tmp_path / "in-other"}, {"--model": tmp_path / "in"})  # a sibling, same prefix
    check_not_inputs({"--out": tmp_path / "x.json"}, {"--model": tmp_path / "in", "--tasks": None})
    with pytest.raises(OutputError, match="inside the input --model"):
        check_not_inputs({"--out": tmp_path / "in" / "a" / "b"}, {"--model": tmp_path / "in"})
    with pytest.raises(OutputError, match="inside the input --model"):
        check_not_inputs({"--out": tmp_path / "in" / ".." / "in" / "c"}, {"--model": tmp_path / "in"})


def test_data_commands_refuse_an_out_inside_their_dataset(tmp_path, capsys):
    """The converters read a dataset root (or a records file) and wrote wherever --out said, its root
    included; now they refuse before reading anything."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    before = _snapshot(root)
    for argv in (["data", "coco", "--root", str(root), "--out", str(root / "records")],
                 ["data", "cub", "--root", str(root), "--out", str(root / "cub")],
                 ["data", "release", "--root", str(root), "--images", str(tmp_path), "--out", str(root / "r")],
                 ["data", "detect", str(root), "--out", str(root / "people.jsonl")]):
        rc, err = _run(capsys, *argv)
        assert rc == 1 and ("inside the input --root" in err or "inside the input IMAGE 0" in err), (argv, err)
    assert _snapshot(root) == before and not (root / "records").exists()


# ------------------------------------------------------------------------------ items 12, 13
@pytest.mark.parametrize("alpha", ["1.5", "-0.1", "nan"])
def test_merge_checks_alpha_before_loading_models(alpha, tmp_path, capsys, monkeypatch):
    """`merge --alpha 1.5` failed only after loading both models."""
    from focusclip.model import factory

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded before --alpha was checked")

    monkeypatch.setattr(factory, "load_model_spec", no_loading)
    monkeypatch.setattr(factory, "load_model", no_loading)
    rc, err = _run(capsys, "merge", "--base", "nowhere-a", "--finetuned", "nowhere-b", "--alpha", alpha,
                   "--out", str(tmp_path / "w"))
    assert rc == 2 and "--alpha: alpha must be a number in [0, 1]" in err and not (tmp_path / "w").exists()


@pytest.mark.parametrize("text,expected", [("", "gives no alpha"), (" , ", "gives no alpha"),
                                           ("0,2", "2 not in [0, 1]")])
def test_eval_interpolate_bad_alphas_say_so(text, expected, model_dir, tmp_path, capsys):
    """`eval --interpolate ""` said "--interpolate and --base go together" (an empty value read as absent)."""
    rc, err = _run(capsys, "eval", "--model", str(model_dir), "--base", str(model_dir), "--interpolate", text,
                   "--tasks", "synthetic", "--out", str(tmp_path / "r.json"))
    assert rc == 2 and expected in err and "go together" not in err, err
    rc, err = _run(capsys, "eval", "--model", str(model_dir), "--interpolate", text, "--out", str(tmp_path / "r.json"))
    assert rc == 2 and expected in err, err  # not a plain evaluation that ignores the option


# ------------------------------------------------------------------------------ docs that run
@pytest.mark.parametrize("source", ["hfclip:./no-such-clip", "hfclip:/tmp/no/such/clip", "hfclip:runs-trust/missing",
                                    "openclip:local-dir:runs-trust/missing", "openclip:local-dir:/tmp/no/such"])
def test_missing_clip_folder_is_reported_as_a_missing_folder(source, tmp_path, monkeypatch, capsys):
    """A missing `hfclip:` folder was reported as a malformed hub id (transformers' repo-id check), a
    missing `openclip:local-dir:` one with "without a network, pass a local folder"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs-trust").mkdir()
    rc, err = _run(capsys, "predict", "x.png", "--model", source, "--labels", "a,b")
    assert rc == 1 and "folder not found" in err and "Repo id" not in err and "repo_id" not in err, err


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`focusclip describe --stats ... | head` ended with a BrokenPipeError report (any verb that prints)."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "focusclip.cli", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before anything is written, as `| head -0` would leave it
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_export_checks_the_model_kind_before_loading_weights(model_dir, tmp_path, capsys, monkeypatch):
    """Same class as `merge --alpha`: a model that cannot export (no whole-CLIP section) or a --format of
    the other library was refused only after its weights loaded."""
    import focusclip.model as fm

    def no_loading(*a, **k):
        raise AssertionError("the weights were loaded before the export was checked")

    monkeypatch.setattr(fm, "load_model", no_loading)
    rc, err = _run(capsys, "export", "--model", str(model_dir), "--out", str(tmp_path / "x"))
    assert rc == 2 and "not built on a whole CLIP checkpoint" in err and not (tmp_path / "x").exists()


def test_export_refuses_the_other_librarys_format_before_loading(open_clip_dir, tmp_path, capsys, monkeypatch):
    import focusclip.model as fm

    saved = focusclip.save_model(focusclip.create_model(f"openclip:local-dir:{open_clip_dir}"), tmp_path / "m",
                                 focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}"))
    monkeypatch.setattr(fm, "load_model", lambda *a, **k: pytest.fail("weights loaded before the check"))
    rc, err = _run(capsys, "export", "--model", str(saved), "--out", str(tmp_path / "x"), "--format", "hf")
    assert rc == 2 and "exports as 'open_clip', not 'hf'" in err

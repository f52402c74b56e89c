"""The demo pipeline end to end at a reduced size (tiny towers, a few dozen images)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from focusclip.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--model", "tiny", "--n-train", "48", "--n-eval", "24",
               "--epochs", "1", "--image-size", "64", "--batch-size", "16", "--workers", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    for row in ("synth-activity", "synth-age", "synth-expression", "headline", "FocusCLIP - CLIP"):
        assert row in printed

    report = (out / "report.md").read_text()
    for fig in ("figures/examples.png", "figures/loss_curves.png", "figures/zeroshot_bars.png"):
        assert f"]({fig})" in report
        png = out / fig
        assert png.stat().st_size > 5_000
        assert min(Image.open(png).size) > 200
    confusions = [line for line in report.splitlines() if "_confusion/" in line]
    assert len(confusions) == 6  # three tasks x two arms
    for line in confusions:
        assert (out / line.split("](")[1].rstrip(")")).exists()

    summary = json.loads((out / "summary.json").read_text())
    for arm in ("focusclip", "clip"):
        for task in ("synth-activity", "synth-age", "synth-expression", "headline"):
            value = summary["summary"][arm][task]["mean"]
            assert 0.0 <= value <= 100.0
    assert (out / "runs" / "focusclip-seed0" / "model-final" / "model.safetensors").exists()

    # A second run reuses the finished work instead of training again.
    rc = main(["demo", "--out", str(out), "--model", "tiny", "--n-train", "48", "--n-eval", "24",
               "--epochs", "1", "--image-size", "64", "--batch-size", "16", "--workers", "0"])
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["scores"] == summary["scores"]

"""The demo pipeline end to end at a reduced size (tiny towers, a few dozen images)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.train.metrics import read_metrics


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

    # The FocusCLIP arm really trained its ROI branch; the CLIP arm has none.
    runs = out / "runs"
    focus_rows, clip_rows = read_metrics(runs / "focusclip-seed0", "train"), read_metrics(runs / "clip-seed0", "train")
    assert focus_rows and all({"roi_img", "roi_txt", "img_txt", "alpha"} <= set(r) for r in focus_rows)
    assert clip_rows and not any({"roi_img", "roi_txt", "alpha"} & set(r) for r in clip_rows)
    focus = focusclip.load_model(runs / "focusclip-seed0" / "model-final")
    clip = focusclip.load_model(runs / "clip-seed0" / "model-final")
    assert focus.roi_enabled and not clip.roi_enabled
    assert abs(float(focus.focus_summary()["alpha"]) - 0.5) > 1e-6  # alpha moved from its initial 0.5
    f_state, c_state = focus.state_dict(), clip.state_dict()
    assert not torch.equal(f_state["visual_proj.weight"], c_state["visual_proj.weight"])  # same seed and data

    # A second run reuses the finished work instead of training again.
    rc = main(["demo", "--out", str(out), "--model", "tiny", "--n-train", "48", "--n-eval", "24",
               "--epochs", "1", "--image-size", "64", "--batch-size", "16", "--workers", "0"])
    assert rc == 0
    assert json.loads((out / "summary.json").read_text())["scores"] == summary["scores"]


def test_demo_refuses_repeated_or_negative_seeds_before_any_work(tmp_path, capsys):
    for seeds, message in (("1,1", "seed 1 given twice"), ("-2", "whole numbers >= 0, got -2")):
        assert main(["demo", "--out", str(tmp_path / "demo"), "--seeds", seeds]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "demo").exists()

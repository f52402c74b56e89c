"""`focusclip ablate` end to end at a reduced size (tiny towers, a few dozen multi-person images)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.data.records import read_records
from focusclip.train.metrics import read_metrics

ARGS = ["--model", "focusclip-tiny", "--modes", "none,attention,alpha", "--seeds", "0,1", "--n-train", "16",
        "--n-eval", "12", "--epochs", "1", "--image-size", "64", "--batch-size", "8", "--workers", "0"]


@pytest.mark.slow
def test_ablate_trains_every_mode_evaluates_with_and_without_focus_and_resumes(tmp_path, capsys):
    out = tmp_path / "ablate"
    assert main(["ablate", "--out", str(out), *ARGS]) == 0
    printed = capsys.readouterr().out
    assert "| attention | yes |" in printed and "| alpha | no |" in printed and "| none | no |" in printed
    assert "| none | yes |" not in printed  # the baseline cannot focus at inference: evaluated once

    # the world's scenes hold one labelled subject among other, unannotated people
    world = json.loads((out / "data" / "world.json").read_text())
    assert world["crowd"] == 1
    assert all(len(r["people"]) == 1 for r in read_records(out / "data" / "eval.jsonl"))

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["scores"]) == {"none", "attention", "attention+focus", "alpha", "alpha+focus"}
    for arm, rows in summary["summary"].items():
        assert rows["headline"]["n"] == 2 and 0.0 <= rows["headline"]["mean"] <= 100.0, arm
    results = json.loads((out / "results" / "attention-seed0.json").read_text())
    assert sorted({e["focus"] for e in results["results"].values()}, key=str) == [None, "boxes"]

    # each arm trained its own mechanism on the same recipe
    for mode, key in (("attention", "strength"), ("alpha", "alpha_weight_norm")):
        assert all(key in r for r in read_metrics(out / "runs" / f"{mode}-seed0", "train"))
        assert focusclip.load_model(out / "runs" / f"{mode}-seed0" / "model-final").focus.mode == mode
    assert not focusclip.load_model(out / "runs" / "none-seed1" / "model-final").roi_enabled

    report = (out / "report.md").read_text()
    for fig in ("figures/examples.png", "figures/loss_curves.png", "figures/ablation_bars.png"):
        assert f"]({fig})" in report and min(Image.open(out / fig).size) > 200
    assert "headline - none" in report

    # a second run reuses every finished arm and evaluation
    assert main(["ablate", "--out", str(out), *ARGS]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["scores"] == summary["scores"]
    assert not [k for k in again["timings"] if k.startswith("train")]


def test_ablate_refuses_unknown_modes_and_foreign_folders(tmp_path, capsys):
    assert main(["ablate", "--out", str(tmp_path / "a"), "--modes", "none,blur"]) == 2
    assert "unknown focus mode blur" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("x")
    assert main(["ablate", "--out", str(tmp_path / "b")]) != 0
    assert "holds no ablation" in capsys.readouterr().err

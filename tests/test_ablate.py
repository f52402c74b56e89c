"""`focusclip ablate` end to end at a reduced size (tiny towers, a few dozen multi-person images), and its
checks before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from tests.focus_arms import CONV_TOWER

import focusclip
from focusclip.errors import UsageError
from focusclip.experiments import ablate
from focusclip.experiments.ablate import AblateConfig, run_ablation
from focusclip.train.metrics import read_metrics


def tiny_conv_model(tmp_path) -> str:
    """focusclip-tiny with the small timm conv tower (the stand-in for the demo's EfficientNet-Lite0),
    registered as ``test-ablate-tiny-conv``."""
    from focusclip.mappings import deep_merge
    from focusclip.model.factory import add_model_config, get_model_config

    path = tmp_path / "test-ablate-tiny-conv.json"
    cfg = deep_merge(get_model_config("focusclip-tiny"), CONV_TOWER)
    cfg.pop("name", None)
    path.write_text(json.dumps(cfg))
    return add_model_config(path)[0]


def tiny(tmp_path, **kw) -> AblateConfig:
    base = dict(out_dir=str(tmp_path / "ablate"), model="focusclip-tiny", modes=["none", "attention"],
                conv_model=tiny_conv_model(tmp_path), conv_modes=["highlight"], focus_modes=["crop", "attention"],
                seeds=[0, 1],
                n_train=16, n_eval=12, render_size=64, image_size=64, patch_size=0, conv_image_size=64, epochs=1,
                batch_size=8, workers=0, pretrain_dir=str(tmp_path / "pretrained"), pretrain_n=16,
                pretrain_epochs=1, pretrain_batch_size=8)
    return AblateConfig(**{**base, **kw})


@pytest.mark.slow
def test_ablate_pretrains_once_trains_every_arm_evaluates_each_focus_mode_and_resumes(tmp_path):
    cfg = tiny(tmp_path)
    result = run_ablation(cfg)
    out = tmp_path / "ablate"

    # the world's scenes hold one labelled subject among other, unannotated people
    world = json.loads((out / "data" / "world.json").read_text())
    assert world["crowd"] == 1
    summary = json.loads((out / "summary.json").read_text())
    rows = set(summary["scores"])
    assert rows == {"base @ whole", "base @ crop", "base @ attention", "none @ whole", "none @ crop",
                    "none @ attention", "attention @ whole", "attention @ own", "attention @ crop",
                    "conv-highlight @ whole", "conv-highlight @ crop"}
    # attention on the untouched ViTs (base, none) at the default strength; on the attention arm it is its
    # own trained mechanism (`own`); none on the conv tower; no mechanism of none / highlight acts at inference
    results = json.loads((out / "results" / "attention-seed0.json").read_text())
    assert {(e.get("focus"), e.get("focus_mode")) for e in results["results"].values()} == {
        (None, None), ("boxes", None), ("boxes", "crop")}
    for name, r in summary["summary"].items():  # every row over both seeds: the base has one per seed too
        assert r["headline"]["n"] == 2 and 0.0 <= r["headline"]["mean"] <= 100.0, name
    assert summary["verdicts"] and all(isinstance(v, str) for v in summary["verdicts"])
    assert "beats chance" in " ".join(summary["verdicts"])

    # a pretrained base per seed, built under pretrain_dir (not inside the ablation) from plain captions
    bases = {int(s): Path(b) for s, b in summary["bases"].items()}
    assert sorted(bases) == [0, 1] and bases[0] != bases[1]
    assert sorted(tmp_path.glob("pretrained/focusclip-tiny-*/run/model-final")) == sorted(bases.values())
    assert [json.loads((b.parents[1] / "recipe.json").read_text())["seed"] for b in (bases[0], bases[1])] == [0, 1]
    plain = (bases[0].parents[1] / "data" / "train.plain.jsonl").read_text().splitlines()
    assert json.loads(plain[0])["captions"][0].startswith("a photo of a ")

    # each seed's ViT arms started from that seed's base: their towers begin with its weights; the conv arm
    # trained its own
    start = focusclip.load_model(out / "start" / "attention-seed1")
    base_model = focusclip.load_model(bases[1])
    assert all((start.state_dict()[k] == v).all() for k, v in base_model.state_dict().items())
    assert start.focus.mode == "attention"
    assert all("strength" in r for r in read_metrics(out / "runs" / "attention-seed0", "train"))
    conv = focusclip.load_model(out / "runs" / "conv-highlight-seed1" / "model-final")
    assert conv.focus.mode == "highlight" and not hasattr(conv.visual.trunk, "patch_embed")

    report = (out / "report.md").read_text()
    for fig in ("figures/examples.png", "figures/loss_curves.png", "figures/ablation_bars.png"):
        assert f"]({fig})" in report and min(Image.open(out / fig).size) > 200
    assert "What it says" in report and result["verdicts"][0] in report

    # a second run reuses the base, every finished arm and every evaluation
    run_ablation(tiny(tmp_path))
    again = json.loads((out / "summary.json").read_text())
    assert again["scores"] == summary["scores"]
    assert not [k for k in again["timings"] if k.startswith("train")]


@pytest.mark.parametrize("change, message", [
    ({"seeds": [0, 0]}, "seed 0 given twice"),
    ({"seeds": [-1]}, "seeds are whole numbers >= 0, got -1"),
    ({"modes": ["pool"]}, "focusclip-tiny (TimmVisionTower) cannot do focus mode pool"),
    ({"conv_modes": ["attention"]}, "cannot do focus mode attention"),
    ({"modes": ["none", "blur"]}, "--modes: unknown focus mode blur"),
    ({"modes": ["alpha", "alpha"]}, "lists a mode twice"),
    ({"focus_modes": ["sharpen"]}, "--focus-modes: unknown inference focus mode sharpen"),
    ({"tasks": ["synth-nothing"]}, "synth-nothing"),
    ({"base": "nowhere"}, "--base nowhere"),
])
def test_ablate_refuses_bad_arms_and_seeds_before_any_work(tmp_path, change, message):
    cfg = tiny(tmp_path, **change)
    with pytest.raises(Exception, match=None) as info:
        run_ablation(cfg)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError) or "synth-nothing" in message
    assert not (tmp_path / "ablate").exists() and not (tmp_path / "pretrained").exists()  # nothing written


def test_ablate_arms_are_named_by_tower_and_mode_and_every_registered_mechanism_is_an_arm():
    from focusclip.model.focus import FOCUS_MODES

    assert set(ablate.trained_modes()) == {"none", *FOCUS_MODES}
    cfg = AblateConfig(modes=["none", "attention"], conv_modes=["highlight", "pool"])
    assert cfg.arms() == ["none", "attention", "conv-highlight", "conv-pool"]


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,0"], "seed 0 given twice"),
    (["--seeds=-1"], "whole numbers >= 0, got -1"),
    (["--modes", "pool"], "cannot do focus mode pool"),
    (["--modes", "none,blur"], "unknown focus mode blur"),
    (["--focus-modes", "crop,sharpen"], "unknown inference focus mode sharpen"),
])
def test_ablate_command_refuses_before_generating_data(tmp_path, capsys, argv, message):
    from focusclip.cli import main

    out, cache = tmp_path / "a", tmp_path / "cache"
    assert main(["ablate", "--out", str(out), "--pretrain-dir", str(cache), "--conv-modes", "", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not cache.exists()


def test_ablate_refuses_a_foreign_folder(tmp_path, capsys):
    from focusclip.cli import main

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("x")
    assert main(["ablate", "--out", str(tmp_path / "b"), "--conv-modes", "", "--pretrain-dir",
                 str(tmp_path / "cache")]) != 0
    assert "holds no ablation" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_each_seed_has_its_own_pretrained_base_and_a_given_base_serves_every_seed(tmp_path):
    mine = tmp_path / "mine"
    given = ablate.bases(tiny(tmp_path, base=str(mine)))
    assert given == {0: mine, 1: mine} and ablate._distinct(given) == {0: mine}  # one model: one row
    assert ablate.bases(tiny(tmp_path, base="none")) == {}
    assert ablate.bases(tiny(tmp_path, modes=[])) == {}  # no ViT arms: nothing to start from
    recipes = [ablate.pretrain_recipe(tiny(tmp_path), seed) for seed in (0, 1)]
    assert recipes[0] != recipes[1] and {k: v for k, v in recipes[0].items() if k != "seed"} == \
        {k: v for k, v in recipes[1].items() if k != "seed"}  # the seed is the only difference

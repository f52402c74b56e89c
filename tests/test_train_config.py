"""Training config: YAML loading, typed key=value overrides, unknown keys, the shipped presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from focusclip.train.config import TrainConfig, apply_override, load_config, parse_value

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_overrides_are_typed_and_nested():
    cfg = load_config(None, [
        "data.format=fake", "optim.lr=1e-3", "epochs=3", "model.lock_image=true", "model.lock_text=False",
        "eval.tasks=[synth-activity, synth-age]", "data.val=null", "data.heatmap=parts",
        "model.name=clip-tiny", "optim.momentum=1", "loss.weights=[1, 0.5, 2]",
        "model.overrides.roi.shared=false", "max_steps=10", "name=my run",
    ])
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.model.lock_image is True and cfg.model.lock_text is False
    assert cfg.eval.tasks == ["synth-activity", "synth-age"]
    assert cfg.data.val is None and cfg.data.heatmap == "parts" and cfg.model.name == "clip-tiny"
    assert cfg.optim.momentum == 1.0 and isinstance(cfg.optim.momentum, float)
    assert cfg.loss.weights == [1, 0.5, 2]
    assert cfg.model.overrides == {"roi": {"shared": False}}
    assert cfg.max_steps == 10 and cfg.name == "my run"


def test_parse_value():
    assert parse_value("1e-3") == pytest.approx(1e-3)
    assert parse_value("5") == 5 and isinstance(parse_value("5"), int)
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("[1,2]") == [1, 2]
    assert parse_value("runs/x") == "runs/x"


def test_unknown_keys_list_the_valid_ones():
    cfg = TrainConfig()
    with pytest.raises(ValueError, match=r"unknown key 'optim.lrr'.*Did you mean 'lr'.*Valid keys in optim: .*momentum"):
        apply_override(cfg, "optim.lrr=1")
    with pytest.raises(ValueError, match=r"unknown key 'loss.kind'. It was renamed to 'loss.name'"):
        apply_override(cfg, "loss.kind=clip")
    with pytest.raises(ValueError, match=r"unknown key 'epochz'.*Valid keys in top level: name, out_dir"):
        apply_override(cfg, "epochz=2")
    with pytest.raises(ValueError, match="expected key=value"):
        apply_override(cfg, "optim.lr")


def test_wrong_types_and_values_are_errors():
    with pytest.raises(ValueError, match="epochs expects int"):
        load_config(None, ["data.format=fake", "epochs=two"])
    with pytest.raises(ValueError, match="model.lock_image expects bool"):
        load_config(None, ["data.format=fake", "model.lock_image=3"])
    with pytest.raises(ValueError, match="precision"):
        load_config(None, ["data.format=fake", "precision=fp8"])
    with pytest.raises(ValueError, match="data.train"):
        load_config(None, [])  # records without a train file
    with pytest.raises(ValueError, match="divisible"):
        load_config(None, ["data.format=fake", "batch_size=10", "accum_steps=4"])
    with pytest.raises(ValueError, match="data.captions"):  # caught before any model is built
        load_config(None, ["data.format=fake", "data.captions=all"])
    with pytest.raises(ValueError, match="data.heatmap"):
        load_config(None, ["data.format=fake", "data.heatmap=persons"])


def test_yaml_unknown_key_names_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  format: fake\n  heatmaps: parts\n")
    with pytest.raises(ValueError, match=rf"{p}.*unknown key 'data.heatmaps'.*Did you mean 'heatmap'"):
        load_config(p)


def test_paper_presets_match_the_paper():
    for name, model, heatmap in (("paper-focusclip", "focusclip-vit-b16-bert", "person"),
                                 ("paper-clip", "clip-vit-b16-bert", "none")):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert cfg.model.name == model and cfg.data.heatmap == heatmap
        assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == ("sgd", 5e-4, 0.9, 0.0)
        assert cfg.optim.schedule == "constant" and cfg.optim.warmup_steps == 0 and cfg.optim.grad_clip == 1.0
        assert (cfg.batch_size, cfg.epochs, cfg.seed) == (32, 64, 42)
        assert (cfg.loss.name, cfg.loss.temperature, cfg.loss.weights) == ("ntxent", 0.5, [1.0, 1.0, 1.0])
        assert cfg.data.pad_to_max and cfg.data.context_length == 512 and cfg.data.augment is None
        assert "train.jsonl" in cfg.data.train and "val.jsonl" in cfg.data.val
    for name in ("synth-focusclip", "synth-clip", "custom-example"):
        load_config(CONFIGS / f"{name}.yaml")


def test_cli_print_config(capsys):
    from focusclip.cli import main

    assert main(["train", "--config", str(CONFIGS / "paper-clip.yaml"), "optim.lr=1e-2", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.01" in out and "clip-vit-b16-bert" in out
    assert main(["train", "--config", str(CONFIGS / "paper-clip.yaml"), "optim.nope=1"]) == 2  # usage
    assert "unknown key 'optim.nope'" in capsys.readouterr().err

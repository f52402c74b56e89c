"""Registries a new piece joins by itself, where it is defined (docs/internals.md, "Adding a ..."):
focus mechanisms, tower families, zero-shot datasets. (Verbs: tests/test_cli_layout.py.)"""

from __future__ import annotations

import sys

import pytest
import torch

import focusclip
import focusclip.model.focus as focus_pkg
from focusclip.model.focus import FOCUS_MODES, Focus, focus_options, register_focus
from focusclip.model.focus import base as focus_base
from focusclip.model.towers import VISION_FAMILIES, create_vision_tower, register_tower
from focusclip.model.towers import registry as tower_registry
from focusclip.zeroshot.datasets import DATASETS, LoadedSet, load_benchmark, register_dataset
from focusclip.zeroshot.datasets import common as dataset_common

MECHANISM = '''
from focusclip.model.focus.base import Focus, register_focus


@register_focus
class FileFocus(Focus):
    mode = "from_a_file"
'''


@pytest.fixture
def registered_focus():
    """A mechanism defined here (a scale on the tower's features), removed from the registry afterwards."""

    class ScaleFocus(Focus):
        mode, at_inference = "scale_test", True

        def __init__(self, gain: float = 2.0):
            super().__init__()
            self.gain = float(gain)

        def encode(self, tower, image, heatmap):
            return tower(image) * self.gain

    register_focus(ScaleFocus)

    try:
        yield ScaleFocus
    finally:
        focus_base._MODES.pop("scale_test", None)


def test_a_focus_mechanism_registers_itself_and_reaches_configs_and_tests(registered_focus):
    assert FOCUS_MODES["scale_test"] is registered_focus and focus_options("scale_test") == ["gain"]
    assert list(FOCUS_MODES)[0] == "highlight" and list(FOCUS_MODES)[1:] == sorted(list(FOCUS_MODES)[1:])
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "scale_test", "gain": 3.0})
    assert isinstance(model.focus, registered_focus) and model.focus.gain == 3.0
    with pytest.raises(ValueError, match="unknown key 'strength'"):
        focusclip.create_model("focusclip-tiny", roi={"mode": "scale_test", "strength": 1.0})
    from focus_arms import _mode_overrides  # what the mode-parametrised tests run

    assert _mode_overrides()["scale_test"] == {"roi": {"mode": "scale_test"}}
    with pytest.raises(ValueError, match="already registered"):
        register_focus(type("Other", (Focus,), {"mode": "scale_test"}))


def test_a_focus_module_in_the_folder_is_imported_by_itself(tmp_path, monkeypatch):
    (tmp_path / "from_a_file.py").write_text(MECHANISM)
    monkeypatch.setattr(focus_pkg, "__path__", [*focus_pkg.__path__, str(tmp_path)])
    try:
        focus_pkg._import_mechanisms()
        assert FOCUS_MODES["from_a_file"].__name__ == "FileFocus"
    finally:
        focus_base._MODES.pop("from_a_file", None)
        sys.modules.pop("focusclip.model.focus.from_a_file", None)


def test_the_shipped_mechanisms_are_registered_default_first_then_by_name():
    modes = list(FOCUS_MODES)
    assert modes == ["highlight", *sorted(modes[1:])]  # whatever order the modules were imported in
    assert {"highlight", "attention", "alpha", "pool"} <= set(FOCUS_MODES)
    assert all(cls.mode == mode for mode, cls in FOCUS_MODES.items())


def test_a_tower_family_registers_itself():
    built = []

    @register_tower("vision", "dummy_model_name", config_keys=("dummy_model_name", "dummy_width"))
    def build_dummy(cfg, weights):
        built.append((cfg["dummy_model_name"], weights))
        return torch.nn.Identity()

    try:
        assert VISION_FAMILIES["dummy_model_name"].config_keys == ("dummy_model_name", "dummy_width")
        assert isinstance(create_vision_tower({"dummy_model_name": "d1"}, "w"), torch.nn.Identity)
        assert built == [("d1", "w")]
    finally:
        tower_registry._VISION.pop("dummy_model_name", None)
    with pytest.raises(ValueError, match="names no tower family"):
        create_vision_tower({"dummy_model_name": "d1"})


def test_clip_families_carry_their_library_behaviour():
    from focusclip.model.towers import CLIP_FAMILIES

    assert set(CLIP_FAMILIES) == {"open_clip_model", "hf_clip_model"}
    oc, hf = CLIP_FAMILIES["open_clip_model"], CLIP_FAMILIES["hf_clip_model"]
    assert (oc.export_format, hf.export_format) == ("open_clip", "hf")
    assert oc.context_length({"open_clip_model": "x", "model_cfg": {"text_cfg": {"context_length": 52}}}) == 52
    assert hf.context_length({"hf_clip_model": "x", "hf_config": {"text_config": {"max_position_embeddings": 64}}}) == 64
    assert oc.describe({"open_clip_model": "ViT-B-16", "pretrained": "openai"}) == "open_clip=ViT-B-16/openai"
    assert hf.describe({"hf_clip_model": "org/clip"}) == "hf_clip=org/clip"


def test_a_dataset_loader_registers_itself(tmp_path):
    @register_dataset("dummyset")
    def load_dummy(root, split="test", flavour="plain"):
        return LoadedSet(samples=[], classes=["a", split, flavour])

    try:
        assert DATASETS["dummyset"] is load_dummy
        assert load_benchmark("dummyset", tmp_path, "val", flavour="odd").classes == ["a", "val", "odd"]
    finally:
        dataset_common._DATASETS.pop("dummyset", None)
    with pytest.raises(ValueError, match="unknown dataset 'dummyset'"):
        load_benchmark("dummyset", tmp_path, "val")


def test_focusclip_models_names_every_tower_by_its_family(capsys):
    from focusclip.cli import main

    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "vision=hybrid_backbone=efficientnet_lite0 (feature_stride=16, width=192, depth=4, heads=3)" in \
        lines["focusclip-hybrid-minilm"]
    assert "vision=efficientnet_lite0  text=sentence-transformers/all-MiniLM-L6-v2" in lines["focusclip-lite0-minilm"]
    assert "text=bert (hf_config)" in lines["focusclip-tiny"]
    assert not [name for name, line in lines.items() if "=?" in line]

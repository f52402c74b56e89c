"""The hybrid ViT tower (a CNN's feature map as a small transformer's tokens): it keeps the CNN's weights,
its tokens cover the CNN's stride, the ViT-only focus mechanisms work on it, and it saves and loads."""

from __future__ import annotations

import pytest
import torch

import focusclip
from focusclip.errors import UsageError
from focusclip.model.focus.layout import vit_layout
from focusclip.model.towers import create_vision_tower

#: a small hybrid: timm's test EfficientNet (GroupNorm) to stride 16, 2 blocks of width 32, at 64 px (4 x 4 tokens)
HYBRID = {"hybrid_backbone": "test_efficientnet_gn", "weights": None, "feature_stride": 16, "width": 32,
          "depth": 2, "heads": 2, "image_size": 64, "resize": "squash"}


def _model(mode: str, **roi):
    torch.manual_seed(0)
    return focusclip.create_model("focusclip-hybrid-minilm", vision=HYBRID, roi={"mode": mode, **roi}).eval()


def test_the_packaged_hybrid_keeps_the_cnns_imagenet_weights():
    from focusclip.model.towers.timm_vision import TimmVisionTower

    hybrid = create_vision_tower({"hybrid_backbone": "efficientnet_lite0", "feature_stride": 16, "image_size": 128},
                                 "package:efficientnet-lite0")
    cnn = TimmVisionTower("efficientnet_lite0", weights="package:efficientnet-lite0")
    backbone = hybrid.trunk.patch_embed.backbone.cnn.state_dict()
    shared = [k for k in cnn.trunk.state_dict() if k in backbone]
    assert len(shared) > 100 and "blocks.4.0.conv_pw.weight" in shared and sorted(backbone) == sorted(shared)
    assert not any(k.startswith(("blocks.5", "blocks.6", "conv_head")) for k in backbone)  # cut after stride 16
    for k in shared:
        torch.testing.assert_close(backbone[k], cnn.trunk.state_dict()[k], rtol=0, atol=0)
    assert hybrid.trunk.patch_embed.grid_size == (8, 8) and hybrid.num_features == 192
    assert hybrid.mean == cnn.mean and hybrid.std == cnn.std


def test_a_token_covers_the_cnns_stride_in_pixels():
    tower = create_vision_tower(HYBRID)
    layout = vit_layout(tower)
    assert layout is not None and layout.pixel_geometry == ((16, 16), (16, 16), (0, 0)) and len(layout.blocks) == 2
    heat = torch.zeros(1, 1, 64, 64)
    heat[..., 16:32, 48:64] = 1.0  # the cell of row 1, column 3
    grid = layout.patch_grid(heat)
    assert grid.shape == (1, 16) and grid[0, 1 * 4 + 3] == 1.0 and grid.sum() == 1.0


@pytest.mark.parametrize("mode", ["attention", "alpha"])
def test_on_the_hybrid_a_fresh_mechanism_is_the_plain_model_and_a_heatmap_moves_it(mode):
    model = _model(mode, **({"strength_init": 0.0} if mode == "attention" else {}))
    images, heat = torch.randn(2, 3, 64, 64), torch.zeros(2, 1, 64, 64)
    heat[..., :32] = 1.0
    with torch.no_grad():
        plain = model.encode_image(images, normalize=True)
        torch.testing.assert_close(model.encode_image(images, heatmap=heat, normalize=True), plain, atol=1e-6, rtol=0)
        if mode == "attention":
            model.focus.strength.fill_(4.0)
        else:
            model.focus.alpha_conv.weight.normal_(0.0, 1.0)  # the marked cells' tokens move
        moved = model.encode_image(images, heatmap=heat, normalize=True)
    if mode == "alpha":  # one heatmap cell per token, not the 1 x 1 projection's kernel
        assert model.focus.alpha_conv.kernel_size == (16, 16) and model.focus.alpha_conv.stride == (16, 16)
    assert float((moved - plain).abs().max()) > 1e-3


def test_a_hybrid_model_saves_and_loads(tmp_path):
    model = _model("attention")
    images, heat = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    focusclip.save_model(model, tmp_path / "m", focusclip.get_tokenizer("focusclip-hybrid-minilm"))
    back = focusclip.load_model(tmp_path / "m")
    with torch.no_grad():
        torch.testing.assert_close(back.encode_image(images, heatmap=heat), model.encode_image(images, heatmap=heat))


@pytest.mark.parametrize("change,expected", [({"feature_stride": 64}, "reductions 2, 4, 8, 16, 32"),
                                             ({"image_size": 72}, "multiple of vision.feature_stride 16")])
def test_a_stride_the_cnn_lacks_or_a_size_off_the_grid_is_refused(change, expected):
    with pytest.raises(UsageError, match=expected):
        create_vision_tower({**HYBRID, **change})


def test_the_hybrid_takes_the_timm_towers_weight_sources(monkeypatch):
    """``hub`` is timm's download (here offline: the tower's clear error, not "file not found: hub")."""
    from huggingface_hub import constants

    from focusclip.model.towers.weights import WeightsNotFoundError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsNotFoundError, match="could not load timm weights for 'test_efficientnet_gn'"):
        create_vision_tower(HYBRID, "hub")

"""Hybrid ViT towers: a pretrained CNN's feature map as the patch tokens of a small transformer.

The CNN (any timm model with ``features_only``, e.g. the offline EfficientNet-Lite0) runs up to the stage
of reduction ``feature_stride``; each cell of its feature map becomes one token (timm's ``HybridEmbed``: a
1 x 1 projection to the transformer's width), and a timm ``VisionTransformer`` of ``depth`` blocks runs on
them, as in timm's R50+ViT hybrids (Dosovitskiy et al., 2021). At 128 px and stride 16 that is an 8 x 8
grid; each token covers a 16 x 16 pixel cell (:mod:`focusclip.model.focus.layout` knows it, so the
ViT-only focus mechanisms, ``attention`` and ``alpha``, work on it).

Why it exists: no ViT weights ship offline, and a ViT from random initialisation learns little in the
minutes a CPU gives (``focusclip ablate``'s measurement). With the CNN's ImageNet features under it, the
transformer learns in a few hundred steps, so attention-trained models can be compared offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from torch import nn

from focusclip.errors import UsageError
from focusclip.model.towers.registry import register_tower
from focusclip.model.towers.timm_vision import TimmTower, create_timm_model


class FeatureStem(nn.Module):
    """A timm CNN cut after its feature stage ``index`` (later stages and the head removed, timm's
    ``prune_intermediate_layers``): ``forward(images)`` is that stage's feature map."""

    def __init__(self, cnn: nn.Module, index: int, name: str):
        super().__init__()
        if not hasattr(cnn, "prune_intermediate_layers"):
            raise UsageError(f"vision.hybrid_backbone {name}: timm cannot cut this model after a stage "
                             "(no prune_intermediate_layers); choose a CNN such as efficientnet_lite0 or resnet18")
        cnn.prune_intermediate_layers(indices=[index], prune_head=True)
        self.cnn = cnn
        self.index = index

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn.forward_intermediates(images, indices=[self.index], intermediates_only=True)[-1]


class HybridViTTower(TimmTower):
    """``backbone`` (a timm CNN, weights from ``weights``) up to reduction ``feature_stride``, then a timm
    ``VisionTransformer`` (``width``, ``depth``, ``heads``; random initialisation) on its feature map.
    ``forward(images) -> (B, width)``: the class token's features."""

    def __init__(self, backbone: str, weights: str | None = None, image_size: int = 128, feature_stride: int = 16,
                 width: int = 192, depth: int = 4, heads: int = 3):
        super().__init__()
        from timm.layers import HybridEmbed
        from timm.models.vision_transformer import VisionTransformer

        if image_size % feature_stride:
            raise UsageError(f"vision.image_size {image_size} must be a multiple of vision.feature_stride "
                             f"{feature_stride} (one token per {feature_stride} x {feature_stride} cell)")
        cnn = create_timm_model(backbone, weights)  # the weight sources of the timm tower, "hub" included
        stages = [i for i, f in enumerate(cnn.feature_info) if f["reduction"] == feature_stride]
        if not stages:
            have = sorted({f["reduction"] for f in cnn.feature_info})
            raise UsageError(f"vision.feature_stride {feature_stride}: {backbone} has feature maps at "
                             f"reductions {', '.join(map(str, have))}")
        stem = FeatureStem(cnn, stages[-1], backbone)
        kept = {k: v.clone() for k, v in stem.state_dict().items()}
        trunk = VisionTransformer(img_size=image_size, patch_size=1, embed_dim=width, depth=depth,
                                  num_heads=heads, num_classes=0, embed_layer=partial(HybridEmbed, backbone=stem))
        trunk.patch_embed.backbone.load_state_dict(kept)  # whatever the ViT's init touched: the CNN's own
        self._adopt(trunk, cnn)  # the CNN's normalisation: its weights see the pixels


@register_tower("vision", "hybrid_backbone",
                config_keys=("hybrid_backbone", "feature_stride", "width", "depth", "heads"))
def build_hybrid_vision(cfg: Mapping[str, Any], weights: str | None) -> HybridViTTower:
    """The ``vision`` family of ``hybrid_backbone``: a CNN's feature map as a small ViT's tokens."""
    return HybridViTTower(cfg["hybrid_backbone"], weights=weights, image_size=int(cfg.get("image_size", 128)),
                          feature_stride=int(cfg.get("feature_stride", 16)), width=int(cfg.get("width", 192)),
                          depth=int(cfg.get("depth", 4)), heads=int(cfg.get("heads", 3)))

"""Pooling focus for convolutional towers (EfficientNet and the like): where the features are pooled.

With ``F`` the last feature map (B, C, h, w), ``H`` the heatmap averaged to h x w and ``g`` the tower's
own global pooling of ``F``:

    z = g + m * (sum(H F) / sum(H) - g)

``m`` is one learnable weight (init ``mix_init``, 0 by default: exactly plain global pooling). Acts at
inference too.
"""

from __future__ import annotations

import torch
from torch import nn

from focusclip.model.focus.base import Focus, as_heatmap_batch, register_focus


@register_focus
class PoolFocus(Focus):
    mode = "pool"
    at_inference = True

    def __init__(self, mix_init: float = 0.0):
        super().__init__()
        self.mix = nn.Parameter(torch.tensor(float(mix_init)))

    @classmethod
    def supports(cls, tower: nn.Module) -> bool:
        trunk = getattr(tower, "trunk", None)
        return (trunk is not None and hasattr(trunk, "forward_features") and hasattr(trunk, "forward_head")
                and hasattr(trunk, "global_pool") and not hasattr(trunk, "patch_embed"))

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        hm = as_heatmap_batch(image, heatmap)
        feats = tower.trunk.forward_features(image)
        plain = tower.trunk.forward_head(feats)
        w = nn.functional.adaptive_avg_pool2d(hm.to(feats.dtype), feats.shape[-2:])
        weighted = (feats * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6)
        return plain + self.mix.to(plain.dtype) * (weighted - plain)

    def summary(self) -> dict[str, torch.Tensor]:
        return {"pool_mix": self.mix.detach()}

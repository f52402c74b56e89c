"""Alpha-channel focus (after Alpha-CLIP): the heatmap enters as a fourth input channel.

A new convolution ``W_a`` (with bias ``b_a``) shaped like the patch embedding (1 input channel, the
embedding's width and the tokens' pixel kernel and stride, :attr:`ViTLayout.pixel_geometry`: on a hybrid
ViT a token's pixel cell), initialised to zero, embeds the heatmap; its output is added to the patch
embedding:

    x_patch = W_rgb * I + W_a * H + b_a

so at initialisation the model is exactly the plain one. Per patch this is any affine function of the
heatmap (e.g. a learned vector on the background that drowns its content, nothing on the subject). The tower's code runs unchanged (a forward
hook on its patch embedding adds the term, :mod:`.layout`). Acts at inference too; without a heatmap
the term is left out (plain model).
"""

from __future__ import annotations

import torch
from torch import nn

from focusclip.model.focus.base import Focus, as_heatmap_batch, register_focus
from focusclip.model.focus.layout import hooked, require_vit, vit_layout


@register_focus
class AlphaFocus(Focus):
    mode = "alpha"
    at_inference = True

    def __init__(self, tower: nn.Module):
        super().__init__()
        layout = require_vit(tower, self.mode)
        kernel, stride, padding = layout.pixel_geometry
        self.alpha_conv = nn.Conv2d(1, layout.patch_conv.out_channels, kernel, stride, padding)
        nn.init.zeros_(self.alpha_conv.weight)
        nn.init.zeros_(self.alpha_conv.bias)

    @classmethod
    def supports(cls, tower: nn.Module) -> bool:
        return vit_layout(tower) is not None

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        layout = require_vit(tower, self.mode)
        hm = as_heatmap_batch(image, heatmap)
        extra = self.alpha_conv(hm.to(self.alpha_conv.weight.dtype))

        def add(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            return output + extra.to(output.dtype)

        with hooked(layout.patch_conv, add):
            return tower(image)

    def summary(self) -> dict[str, torch.Tensor]:
        return {"alpha_weight_norm": self.alpha_conv.weight.detach().norm()}

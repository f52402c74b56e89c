"""The interface every focus mechanism implements (one file per mechanism in this folder)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from focusclip.errors import UsageError


class Focus(nn.Module):
    """How the subject marked by a heatmap steers an image encoding.

    ``encode(tower, image, heatmap)`` returns the tower's pooled features of ``image`` focused on
    ``heatmap`` ``(B, 1, H, W)`` in [0, 1]; the model projects them like plain image features.
    ``summary()`` returns the mechanism's scalar state to log during training (e.g. its mixing weight).
    ``at_inference`` says whether ``encode_image(image, heatmap=...)`` may use the mechanism (the
    paper's highlight only trains a branch; mechanisms that change the encoder itself can focus at
    inference). ``supports(tower)`` says whether a tower can host the mechanism.
    """

    mode: ClassVar[str] = ""
    at_inference: ClassVar[bool] = False

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def summary(self) -> dict[str, torch.Tensor]:
        return {}

    @classmethod
    def supports(cls, tower: nn.Module) -> bool:
        return True


def as_heatmap_batch(image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
    """``heatmap`` as (B, 1, H, W) matching ``image`` (B, C, H, W); a clear error when the sizes differ."""
    if heatmap.dim() == image.dim() - 1:
        heatmap = heatmap.unsqueeze(1)
    if heatmap.shape[-2:] != image.shape[-2:]:
        raise UsageError(f"heatmap size {tuple(heatmap.shape[-2:])} != image size {tuple(image.shape[-2:])}")
    return heatmap.to(image.dtype)

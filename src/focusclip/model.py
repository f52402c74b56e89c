"""The FocusCLIP model: image and text towers with projections, plus the optional subject-focused ROI branch.

Without the ROI branch the same class is the paper's CLIP baseline (two towers trained on the same data).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from focusclip.towers import TextTower, VisionTower

TextInput = Mapping[str, torch.Tensor] | torch.Tensor

ALPHA_CONSTRAINTS = ("clamp", "none")


class FocusCLIP(nn.Module):
    """Two-tower language-image model with a subject-focused third branch.

    The ROI branch encodes the highlighted image ``I * (a + H * (1 - a))`` where ``H`` is the ROI heatmap
    in [0, 1] and ``a`` a learnable scalar (init 0.5). ``alpha_constraint="clamp"`` keeps the effective
    ``a`` in [0, 1]; ``"none"`` is the reference code's unconstrained scalar. The image is normalised
    before highlighting, so dimmed pixels move towards the dataset mean colour.
    """

    def __init__(self, config: Mapping[str, Any], vision_weights: str | None = None,
                 text_weights: str | None = None):
        super().__init__()
        self.config = copy.deepcopy(dict(config))
        v, t = self.config["vision"], self.config["text"]
        roi = self.config.get("roi") or {}
        embed_dim = int(self.config["embed_dim"])

        self.visual = VisionTower(v["timm_model_name"], weights=vision_weights,
                                  image_size=v.get("image_size"), timm_kwargs=v.get("timm_kwargs"))
        self.text = TextTower(t.get("hf_model_name"), weights=text_weights, hf_config=t.get("hf_config"),
                              pooling=t.get("pooling", "mean"), weights_hint=t.get("weights"))
        bias = bool(self.config.get("proj_bias", False))
        self.visual_proj = nn.Linear(self.visual.num_features, embed_dim, bias=bias)
        self.text_proj = nn.Linear(self.text.num_features, embed_dim, bias=bias)

        self.roi_enabled = bool(roi.get("enabled", False))
        self.roi_shared = bool(roi.get("shared", True))
        self.alpha_constraint = roi.get("alpha_constraint", "clamp")
        if self.alpha_constraint not in ALPHA_CONSTRAINTS:
            raise ValueError(f"roi.alpha_constraint must be one of {ALPHA_CONSTRAINTS}")
        if self.roi_enabled:
            self.alpha = nn.Parameter(torch.tensor(float(roi.get("alpha_init", 0.5))))
            if not self.roi_shared:
                self.roi_visual = copy.deepcopy(self.visual)
                self.roi_visual_proj = copy.deepcopy(self.visual_proj)
        self.logit_scale = nn.Parameter(torch.tensor(float(self.config.get("logit_scale_init",
                                                                           math.log(1 / 0.07)))))

    # ------------------------------------------------------------------ properties
    @property
    def image_size(self) -> int:
        return int(self.config["vision"]["image_size"])

    @property
    def image_mean(self) -> tuple[float, ...]:
        return tuple(self.config["vision"].get("mean") or self.visual.mean)

    @property
    def image_std(self) -> tuple[float, ...]:
        return tuple(self.config["vision"].get("std") or self.visual.std)

    @property
    def embed_dim(self) -> int:
        return int(self.config["embed_dim"])

    def mixing_alpha(self) -> torch.Tensor:
        """The effective mixing scalar ``a`` of the ROI branch."""
        if not self.roi_enabled:
            raise RuntimeError("this model has no ROI branch")
        return self.alpha.clamp(0.0, 1.0) if self.alpha_constraint == "clamp" else self.alpha

    # ------------------------------------------------------------------ encoders
    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.visual_proj(self.visual(image))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: TextInput, normalize: bool = False) -> torch.Tensor:
        input_ids, attention_mask = _unpack_tokens(tokens, self.config["text"].get("pad_token_id", 0))
        x = self.text_proj(self.text(input_ids, attention_mask))
        return F.normalize(x, dim=-1) if normalize else x

    def highlight(self, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        """``image * (a + heatmap * (1 - a))`` with the heatmap broadcast over channels."""
        if heatmap.dim() == image.dim() - 1:
            heatmap = heatmap.unsqueeze(1)
        if heatmap.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"heatmap size {tuple(heatmap.shape[-2:])} != image size {tuple(image.shape[-2:])}")
        a = self.mixing_alpha().to(image.dtype)
        return image * (a + heatmap.to(image.dtype) * (1 - a))

    def encode_roi(self, image: torch.Tensor, heatmap: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.highlight(image, heatmap)
        if self.roi_shared:
            z = self.visual_proj(self.visual(x))
        else:
            z = self.roi_visual_proj(self.roi_visual(x))
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, image: torch.Tensor, text: TextInput,
                heatmap: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Normalised features of every branch, ``logit_scale`` (exp'd, clamped at 100) and ``alpha``."""
        out = {
            "image_features": self.encode_image(image, normalize=True),
            "text_features": self.encode_text(text, normalize=True),
            "logit_scale": self.logit_scale.clamp(max=math.log(100.0)).exp(),
        }
        if self.roi_enabled and heatmap is not None:
            out["roi_features"] = self.encode_roi(image, heatmap, normalize=True)
            out["alpha"] = self.mixing_alpha().detach()
        return out

    # ------------------------------------------------------------------ freezing
    def lock_image_tower(self, unlocked_groups: int = 0) -> None:
        """Freeze the vision tower, leaving the last ``unlocked_groups`` top-level blocks trainable."""
        _lock(self.visual.trunk, unlocked_groups)

    def lock_text_tower(self, unlocked_layers: int = 0) -> None:
        """Freeze the text tower, leaving the last ``unlocked_layers`` transformer layers trainable."""
        _lock(self.text.encoder, unlocked_layers)


def _unpack_tokens(tokens: TextInput, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(tokens, torch.Tensor):
        return tokens, (tokens != pad_token_id).long()
    if "input_ids" not in tokens:
        raise ValueError("encode_text expects a tensor of token ids or a mapping with 'input_ids'")
    ids = tokens["input_ids"]
    mask = tokens.get("attention_mask")
    return ids, mask if mask is not None else (ids != pad_token_id).long()


def _lock(module: nn.Module, unlocked: int) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
    if unlocked <= 0:
        return
    groups = _layer_groups(module)
    for g in groups[-unlocked:]:
        for p in g.parameters():
            p.requires_grad_(True)


def _layer_groups(module: nn.Module) -> list[nn.Module]:
    """The ordered trainable blocks of a tower: transformer layers / stages, then the final norm."""
    for attr in ("encoder.layer", "layer", "blocks", "stages", "layers"):
        obj: Any = module
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.Sequential | nn.ModuleList):
            tail = [getattr(module, n) for n in ("norm", "fc_norm", "conv_head", "bn2", "head")
                    if isinstance(getattr(module, n, None), nn.Module)]
            return [g for g in [*obj, *tail] if any(True for _ in g.parameters())]  # skip Identity heads
    return [g for g in module.children() if any(True for _ in g.parameters())]

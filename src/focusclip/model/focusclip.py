"""The FocusCLIP model: image and text towers with projections, plus the optional subject-focused ROI branch.

Without the ROI branch the same class is the paper's CLIP baseline (two towers trained on the same data).
The ROI branch encodes the image focused on the subject by a focus mechanism (``roi.mode``, see
:mod:`focusclip.model.focus`; the paper's is pixel highlighting) through the same vision tower and
projection as the image branch (``roi.shared``, the paper) or through a copy of them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from focusclip.errors import InputError, UsageError
from focusclip.model.focus import create_focus
from focusclip.model.towers import create_text_tower, create_vision_tower

TextInput = Mapping[str, torch.Tensor] | torch.Tensor

#: Exact renames of state-dict keys between save-format versions (old key -> new key).
LEGACY_STATE_KEYS = {"alpha": "focus.alpha"}  # 0.1: the highlight scalar lived on the model


class FocusCLIP(nn.Module):
    """Two-tower language-image model with a subject-focused third branch (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any], vision_weights: str | None = None,
                 text_weights: str | None = None):
        super().__init__()
        self.config = copy.deepcopy(dict(config))
        roi = self.config.get("roi") or {}
        embed_dim = int(self.config["embed_dim"])

        self.visual = create_vision_tower(self.config["vision"], vision_weights)
        self.text = create_text_tower(self.config["text"], text_weights)
        bias = bool(self.config.get("proj_bias", False))
        self.visual_proj = nn.Linear(self.visual.num_features, embed_dim, bias=bias)
        self.text_proj = nn.Linear(self.text.num_features, embed_dim, bias=bias)

        self.roi_enabled = bool(roi.get("enabled", False))
        self.roi_shared = bool(roi.get("shared", True))
        if self.roi_enabled:
            self.focus = create_focus(roi, self.visual)
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

    def focus_summary(self) -> dict[str, torch.Tensor]:
        """The focus mechanism's scalar state (e.g. ``{"alpha": a}``), empty without an ROI branch."""
        return self.focus.summary() if self.roi_enabled else {}

    # ------------------------------------------------------------------ encoders
    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.visual_proj(self.visual(image))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: TextInput, normalize: bool = False) -> torch.Tensor:
        input_ids, attention_mask = _unpack_tokens(tokens, self.config["text"].get("pad_token_id", 0))
        x = self.text_proj(self.text(input_ids, attention_mask))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_roi(self, image: torch.Tensor, heatmap: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Features of ``image`` focused on ``heatmap`` by the ROI branch."""
        if not self.roi_enabled:
            raise RuntimeError("this model has no ROI branch (roi.enabled is false)")
        tower, proj = (self.visual, self.visual_proj) if self.roi_shared else (self.roi_visual, self.roi_visual_proj)
        z = proj(self.focus.encode(tower, image, heatmap))
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, image: torch.Tensor, text: TextInput,
                heatmap: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Normalised features of every branch, ``logit_scale`` (exp'd, clamped at 100) and the focus
        mechanism's summary (e.g. ``alpha``)."""
        out = {
            "image_features": self.encode_image(image, normalize=True),
            "text_features": self.encode_text(text, normalize=True),
            "logit_scale": self.logit_scale.clamp(max=math.log(100.0)).exp(),
        }
        if self.roi_enabled and heatmap is not None:
            out["roi_features"] = self.encode_roi(image, heatmap, normalize=True)
            out.update(self.focus_summary())
        return out

    # ------------------------------------------------------------------ freezing
    def lock_image_tower(self, unlocked_groups: int = 0) -> None:
        """Freeze the vision tower, leaving the last ``unlocked_groups`` top-level blocks trainable."""
        self.visual.lock(unlocked_groups)

    def lock_text_tower(self, unlocked_layers: int = 0) -> None:
        """Freeze the text tower, leaving the last ``unlocked_layers`` transformer layers trainable."""
        self.text.lock(unlocked_layers)


def upgrade_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` with the exact key renames of :data:`LEGACY_STATE_KEYS` applied where ``model`` has the
    new key and not the old one (weights saved by an earlier version load unchanged otherwise)."""
    own = model.state_dict()
    out = dict(state)
    for old, new in LEGACY_STATE_KEYS.items():
        if old in out and new not in out and new in own and old not in own:
            out[new] = out.pop(old)
    return out


class WeightsMismatchError(InputError):
    """A state dict that does not fit the model (missing or unexpected keys, other shapes)."""


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load ``state`` (legacy keys upgraded) into ``model`` strictly; :class:`WeightsMismatchError` names
    ``where`` and lists the missing, unexpected and mis-shaped keys."""
    state = upgrade_state_dict(state, model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in own if k in state and own[k].shape != state[k].shape)
    if missing or unexpected or bad:
        raise WeightsMismatchError(
            f"{where}: weights do not match the model.\n  missing keys ({len(missing)}): {_preview(missing)}"
            f"\n  unexpected keys ({len(unexpected)}): {_preview(unexpected)}"
            f"\n  shape mismatch ({len(bad)}): {_preview(bad)}")
    model.load_state_dict(state, strict=True)


def _preview(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n})" if len(keys) > n else "") if keys else "none"


def _unpack_tokens(tokens: TextInput, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(tokens, torch.Tensor):
        return tokens, (tokens != pad_token_id).long()
    if "input_ids" not in tokens:
        raise UsageError("encode_text expects a tensor of token ids or a mapping with 'input_ids'")
    ids = tokens["input_ids"]
    mask = tokens.get("attention_mask")
    return ids, mask if mask is not None else (ids != pad_token_id).long()

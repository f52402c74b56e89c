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

from focusclip.errors import UsageError
from focusclip.model.focus import create_focus, focused_features
from focusclip.model.long_text import (
    SENTENCE_KEY,
    STRETCH_KEEP,
    STRETCH_POSITIONS,
    check_strategy,
    mean_per_text,
)
from focusclip.model.towers import ClipTowers, create_clip_towers, create_text_tower, create_vision_tower
from focusclip.model.towers.weights import WeightsMismatchError, check_state_fits  # noqa: F401 - re-exported

TextInput = Mapping[str, torch.Tensor] | torch.Tensor

#: Exact renames of state-dict keys between save-format versions (old key -> new key).
LEGACY_STATE_KEYS = {"alpha": "focus.alpha"}  # 0.1: the highlight scalar lived on the model


class FocusCLIP(nn.Module):
    """Two-tower language-image model with a subject-focused third branch (see the module docstring).

    A config with a ``clip`` section takes both towers, their projections and the logit scale from one
    whole CLIP checkpoint (open_clip or Hugging Face, :mod:`focusclip.model.towers`); ``clip_weights``
    names its weights (None: random initialisation). Otherwise the ``vision`` and ``text`` sections
    name a tower each and the model adds ``visual_proj`` / ``text_proj`` to ``embed_dim``.
    """

    def __init__(self, config: Mapping[str, Any], vision_weights: str | None = None,
                 text_weights: str | None = None, clip_weights: str | bool | None = None):
        super().__init__()
        self.config = copy.deepcopy(dict(config))
        self.config.setdefault("vision", {})
        self.config.setdefault("text", {})
        roi = self.config.get("roi") or {}
        self.clip_rebuild: dict[str, Any] = {}
        logit_scale = float(self.config.get("logit_scale_init", math.log(1 / 0.07)))
        logit_bias = None
        if self.config.get("clip"):
            towers = create_clip_towers(self.config["clip"], clip_weights)
            self.visual, self.text = towers.visual, towers.text
            self.visual_proj, self.text_proj = nn.Identity(), nn.Identity()  # the checkpoint's projections are inside
            self._adopt(towers)
            logit_scale, logit_bias = towers.logit_scale, towers.logit_bias
        else:
            embed_dim = int(self.config["embed_dim"])
            self.visual = create_vision_tower(self.config["vision"], vision_weights)
            self.text = create_text_tower(self.config["text"], text_weights)
            bias = bool(self.config.get("proj_bias", False))
            self.visual_proj = nn.Linear(self.visual.num_features, embed_dim, bias=bias)
            self.text_proj = nn.Linear(self.text.num_features, embed_dim, bias=bias)
        self._apply_long_text()

        self.roi_enabled = bool(roi.get("enabled", False))
        self.roi_shared = bool(roi.get("shared", True))
        if self.roi_enabled:
            self.focus = create_focus(roi, self.visual)
            if not self.roi_shared:
                self.roi_visual = copy.deepcopy(self.visual)
                self.roi_visual_proj = copy.deepcopy(self.visual_proj)
        self.logit_scale = nn.Parameter(torch.tensor(logit_scale))
        if logit_bias is not None:
            self.logit_bias = nn.Parameter(torch.tensor(logit_bias))

    def _adopt(self, towers: ClipTowers) -> None:
        """Record what the checkpoint decides in the config: embedding size, image preprocessing, text
        positions (so saved models describe themselves and transforms / tokenizers follow)."""
        given = self.config.get("embed_dim")
        if given is not None and int(given) != towers.embed_dim:
            raise UsageError(f"model config embed_dim={given}, but the CLIP checkpoint embeds into "
                             f"{towers.embed_dim}; drop embed_dim (it comes from the checkpoint)")
        self.config["embed_dim"] = towers.embed_dim
        vision = self.config["vision"]
        size = vision.get("image_size")
        if size is not None and int(size) != towers.preprocess["image_size"]:
            raise UsageError(f"model config vision.image_size={size}, but the CLIP checkpoint takes "
                             f"{towers.preprocess['image_size']} px images; drop vision.image_size")
        for key, value in towers.preprocess.items():
            vision.setdefault(key, value)
        self.clip_rebuild = towers.rebuild

    def _apply_long_text(self) -> None:
        """Check ``text.long_text`` against the text tower; stretch its positions for ``stretch``."""
        text_cfg = self.config["text"]
        strategy = check_strategy(text_cfg.get("long_text", "truncate"), "model config text.long_text")
        modes = getattr(self.text, "long_text_modes", ("truncate", "sentences"))
        if strategy not in modes:
            raise UsageError(f"model config text.long_text={strategy!r}: the text tower {type(self.text).__name__} "
                             f"cannot do it; it supports: {', '.join(modes)}")
        if not hasattr(self.text, "context_length"):
            return
        if strategy == "stretch":
            positions = int(text_cfg.get("context_length") or STRETCH_POSITIONS)
            if positions > self.text.context_length:
                self.text.stretch_positions(positions, int(text_cfg.get("stretch_keep", STRETCH_KEEP)))
        length = text_cfg.get("context_length")
        if length is not None and int(length) > self.text.context_length:
            raise UsageError(f"model config text.context_length={length}, but the text tower holds "
                             f"{self.text.context_length} positions; use text.long_text 'stretch' or 'sentences'")
        text_cfg["context_length"] = int(length or self.text.context_length)

    # ------------------------------------------------------------------ properties
    @property
    def image_size(self) -> int:
        return int(self.config["vision"]["image_size"])

    @property
    def is_whole_clip(self) -> bool:
        """Both towers come from one CLIP checkpoint (open_clip or Hugging Face)."""
        return bool(self.config.get("clip"))

    @property
    def image_mean(self) -> tuple[float, ...]:
        return tuple(self.config["vision"].get("mean") or self.visual.mean)

    @property
    def image_std(self) -> tuple[float, ...]:
        return tuple(self.config["vision"].get("std") or self.visual.std)

    @property
    def embed_dim(self) -> int:
        return int(self.config["embed_dim"])

    @property
    def focus_at_inference(self) -> bool:
        """Whether ``encode_image(image, heatmap=...)`` focuses: an ROI branch whose mechanism changes the
        encoder itself (``attention``, ``alpha``, ``pool``; the paper's ``highlight`` only trains)."""
        return self.roi_enabled and bool(self.focus.at_inference)

    def focus_summary(self) -> dict[str, torch.Tensor]:
        """The focus mechanism's scalar state (e.g. ``{"alpha": a}``), empty without an ROI branch."""
        return self.focus.summary() if self.roi_enabled else {}

    # ------------------------------------------------------------------ encoders
    def encode_image(self, image: torch.Tensor, heatmap: torch.Tensor | None = None,
                     normalize: bool = False, focus: str | None = None) -> torch.Tensor:
        """Image features, plain or focused on the subject a heatmap marks.

        Args:
            image: (B, 3, S, S), as the model's transform gives it (``create_model_and_transforms``).
            heatmap: (B, 1, S, S) or (B, S, S) in [0, 1] (the subject's ROI), or None. With ``focus=None``
                it is used only by a model whose own mechanism acts at inference
                (:attr:`focus_at_inference`: ``roi.mode`` attention, alpha or pool; the ROI branch).
            normalize: L2-normalise the features.
            focus: one of :data:`~focusclip.model.focus.FOCUS_AT_INFERENCE`: focus any model on the heatmap
                with that mode (``attention`` on any ViT, image-space ``crop`` / ``blur`` / ``circle`` /
                ``dim`` on every tower, ``alpha`` / ``pool`` for models trained with them, ``auto``: the
                model's own mechanism, else ``blur``; docs/focus.md). Rows whose heatmap marks nothing
                stay plain. None: the behaviour described for ``heatmap``.

        Returns:
            (B, embed_dim) features (unit length with ``normalize``).

        Example::

            model, _, preprocess = focusclip.create_model_and_transforms("clip-tiny")
            x = preprocess(image).unsqueeze(0)
            plain = model.encode_image(x, normalize=True)
            person = model.encode_image(x, heatmap=h[None, None], focus="blur", normalize=True)
        """
        if focus is not None:
            if heatmap is None:
                raise UsageError(f"focus={focus!r} needs a heatmap to focus on")
            return focused_features(self, image, heatmap, focus, normalize=normalize)
        if heatmap is not None and self.focus_at_inference:
            return self.encode_roi(image, heatmap, normalize=normalize)
        x = self.visual_proj(self.visual(image))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: TextInput, normalize: bool = False) -> torch.Tensor:
        """Text features; tokens with ``sentence_to_text`` (``long_text: sentences``) give one feature per
        text, the mean of its normalised sentence features."""
        input_ids, attention_mask = _unpack_tokens(tokens, self.config["text"].get("pad_token_id", 0))
        x = self.text_proj(self.text(input_ids, attention_mask))
        if not isinstance(tokens, torch.Tensor) and tokens.get(SENTENCE_KEY) is not None:
            x = mean_per_text(x, tokens[SENTENCE_KEY])
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


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load ``state`` (legacy keys upgraded) into ``model`` strictly; :class:`WeightsMismatchError` names
    ``where`` and lists the missing, unexpected and mis-shaped keys."""
    state = upgrade_state_dict(state, model)
    check_state_fits(model.state_dict(), state, where)
    model.load_state_dict(state, strict=True)


def _unpack_tokens(tokens: TextInput, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(tokens, torch.Tensor):
        return tokens, (tokens != pad_token_id).long()
    if "input_ids" not in tokens:
        raise UsageError("encode_text expects a tensor of token ids or a mapping with 'input_ids'")
    ids = tokens["input_ids"]
    mask = tokens.get("attention_mask")
    return ids, mask if mask is not None else (ids != pad_token_id).long()

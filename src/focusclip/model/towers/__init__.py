"""Tower families: the vision and text encoders a FocusCLIP is built from.

A tower is an ``nn.Module`` whose ``forward`` returns pooled features ``(B, num_features)`` and that has
``num_features``, ``lock(unlocked)`` and ``rebuild_config()``; vision towers also have ``mean`` / ``std``
(the normalisation they were trained with). A model config names its family by the key it carries:

=================  ==========================  ============================================
config section      key                         family
=================  ==========================  ============================================
``vision``          ``timm_model_name``         :class:`~.timm_vision.TimmVisionTower`
``vision``          ``hybrid_backbone``         :class:`~.hybrid_vision.HybridViTTower` (a CNN's feature map
                                                as a small ViT's tokens)
``text``            ``hf_model_name`` or        :class:`~.hf_text.HFTextTower`
                    ``hf_config``
``clip``            ``open_clip_model``         :mod:`~.openclip` (both towers of an open_clip model)
``clip``            ``hf_clip_model``           :mod:`~.hf_clip` (both towers of a transformers CLIPModel)
=================  ==========================  ============================================

A whole-CLIP family builds both towers from one checkpoint (:class:`~.base.ClipTowers`): each tower
ends in the checkpoint's own projection (``projected = True``, so FocusCLIP adds no projection layer),
and the checkpoint brings its logit scale, image preprocessing and tokenizer. Its towers also have
``context_length`` and ``long_text_modes`` (and ``stretch_positions`` for ``long_text: stretch``).

A new family is one new file in this folder whose builder registers itself
(:func:`~.registry.register_tower` for a vision / text family, :func:`~.registry.register_clip_family` for a
whole CLIP, which also carries its context length, tokenizer and export); every module of this folder is
imported with the package, so nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from torch import nn

from focusclip.model.towers.base import ClipTowers
from focusclip.model.towers.registry import (
    CLIP_FAMILIES,
    TEXT_FAMILIES,
    VISION_FAMILIES,
    ClipFamily,
    TowerFamily,
    clip_family,
    register_clip_family,
    register_tower,
    tower_family,
)
from focusclip.model.towers.weights import WeightsNotFoundError, load_state_dict_file, package_path

#: keys every tower section may have, whatever its family
VISION_KEYS = ("weights", "image_size", "resize", "interpolation", "mean", "std")
TEXT_KEYS = ("weights", "pooling", "context_length", "tokenizer", "tokenizer_fallback", "pad_token_id", "long_text",
             "stretch_keep")


def _import_families() -> None:
    """Import every module of this folder, so that each family registers itself (their heavy libraries,
    timm / transformers / open_clip, are imported when a tower is built, not here)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_families()


def create_vision_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, VISION_FAMILIES, "vision").build(cfg, weights)


def create_text_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, TEXT_FAMILIES, "text").build(cfg, weights)


def create_clip_towers(cfg: Mapping[str, Any], weights: str | bool | None = None) -> ClipTowers:
    """Both towers of the whole CLIP model a ``clip`` config section names (weights loaded or random)."""
    return clip_family(cfg).build(cfg, weights)


__all__ = ["CLIP_FAMILIES", "TEXT_FAMILIES", "TEXT_KEYS", "VISION_FAMILIES", "VISION_KEYS", "ClipFamily", "ClipTowers",
           "TowerFamily", "WeightsNotFoundError", "clip_family", "create_clip_towers", "create_text_tower",
           "create_vision_tower", "load_state_dict_file", "package_path", "register_clip_family", "register_tower",
           "tower_family"]

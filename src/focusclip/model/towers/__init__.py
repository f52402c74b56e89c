"""Tower families: the vision and text encoders a FocusCLIP is built from.

A tower is an ``nn.Module`` whose ``forward`` returns pooled features ``(B, num_features)`` and that has
``num_features``, ``lock(unlocked)`` and ``rebuild_config()``; vision towers also have ``mean`` / ``std``
(the normalisation they were trained with). A model config names its family by the key it carries:

=================  ==========================  ============================================
config section      key                         family
=================  ==========================  ============================================
``vision``          ``timm_model_name``         :class:`~.timm_vision.TimmVisionTower`
``text``            ``hf_model_name`` or        :class:`~.hf_text.HFTextTower`
                    ``hf_config``
``clip``            ``open_clip_model``         :mod:`~.openclip` (both towers of an open_clip model)
``clip``            ``hf_clip_model``           :mod:`~.hf_clip` (both towers of a transformers CLIPModel)
=================  ==========================  ============================================

A whole-CLIP family builds both towers from one checkpoint (:class:`~.base.ClipTowers`): each tower
ends in the checkpoint's own projection (``projected = True``, so FocusCLIP adds no projection layer),
and the checkpoint brings its logit scale, image preprocessing and tokenizer. Its towers also have
``context_length`` and ``long_text_modes`` (and ``stretch_positions`` for ``long_text: stretch``).

A new family is one new file in this folder plus one entry in ``VISION_FAMILIES`` / ``TEXT_FAMILIES`` /
``CLIP_FAMILIES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from focusclip.model.towers.base import ClipTowers
from focusclip.model.towers.weights import WeightsNotFoundError, load_state_dict_file, package_path


def _timm_vision(cfg: Mapping[str, Any], weights: str | None) -> nn.Module:
    from focusclip.model.towers.timm_vision import TimmVisionTower

    return TimmVisionTower(cfg["timm_model_name"], weights=weights, image_size=cfg.get("image_size"),
                           timm_kwargs=cfg.get("timm_kwargs"))


def _hf_text(cfg: Mapping[str, Any], weights: str | None) -> nn.Module:
    from focusclip.model.towers.hf_text import HFTextTower

    return HFTextTower(cfg.get("hf_model_name"), weights=weights, hf_config=cfg.get("hf_config"),
                       pooling=cfg.get("pooling", "mean"), weights_hint=cfg.get("weights"))


def _open_clip(cfg: Mapping[str, Any], weights: str | bool | None) -> ClipTowers:
    from focusclip.model.towers.openclip import build_open_clip_towers

    return build_open_clip_towers(cfg, weights)


def _hf_clip(cfg: Mapping[str, Any], weights: str | bool | None) -> ClipTowers:
    from focusclip.model.towers.hf_clip import build_hf_clip_towers

    return build_hf_clip_towers(cfg, weights)


Builder = Callable[[Mapping[str, Any], "str | None"], nn.Module]
ClipBuilder = Callable[[Mapping[str, Any], "str | bool | None"], ClipTowers]

#: (config key that selects the family, builder), tried in order.
VISION_FAMILIES: Mapping[str, Builder] = MappingProxyType({"timm_model_name": _timm_vision})
TEXT_FAMILIES: Mapping[str, Builder] = MappingProxyType({"hf_model_name": _hf_text, "hf_config": _hf_text})
CLIP_FAMILIES: Mapping[str, ClipBuilder] = MappingProxyType({"open_clip_model": _open_clip,
                                                             "hf_clip_model": _hf_clip})


def tower_family(cfg: Mapping[str, Any], families: Mapping[str, Any], section: str) -> Any:
    """The builder of the family a config section selects; a clear error naming the keys otherwise."""
    for key, builder in families.items():
        if cfg.get(key):
            return builder
    raise ValueError(f"model config '{section}' names no tower family: give one of {', '.join(families)}")


def create_vision_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, VISION_FAMILIES, "vision")(cfg, weights)


def create_text_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, TEXT_FAMILIES, "text")(cfg, weights)


def create_clip_towers(cfg: Mapping[str, Any], weights: str | bool | None = None) -> ClipTowers:
    """Both towers of the whole CLIP model a ``clip`` config section names (weights loaded or random)."""
    return tower_family(cfg, CLIP_FAMILIES, "clip")(cfg, weights)


__all__ = ["CLIP_FAMILIES", "TEXT_FAMILIES", "VISION_FAMILIES", "ClipTowers", "WeightsNotFoundError",
           "create_clip_towers", "create_text_tower", "create_vision_tower", "load_state_dict_file", "package_path",
           "tower_family"]

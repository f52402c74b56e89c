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
``CLIP_FAMILIES`` (its builder and the config keys it reads beyond the section's common ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from focusclip.errors import UsageError
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


@dataclass(frozen=True)
class TowerFamily:
    build: Builder | ClipBuilder
    config_keys: tuple[str, ...]  #: keys of the config section the family reads beyond the common ones


#: keys every tower section may have, whatever its family
VISION_KEYS = ("weights", "image_size", "resize", "interpolation", "mean", "std")
TEXT_KEYS = ("weights", "pooling", "context_length", "tokenizer", "tokenizer_fallback", "pad_token_id", "long_text",
             "stretch_keep")

_TIMM = TowerFamily(_timm_vision, ("timm_model_name", "timm_kwargs"))
_HF_TEXT = TowerFamily(_hf_text, ("hf_model_name", "hf_config"))

#: the config key that selects a family -> the family, tried in order.
VISION_FAMILIES: Mapping[str, TowerFamily] = MappingProxyType({"timm_model_name": _TIMM})
TEXT_FAMILIES: Mapping[str, TowerFamily] = MappingProxyType({"hf_model_name": _HF_TEXT, "hf_config": _HF_TEXT})
#: whole CLIPs (the model config's ``clip`` section): both towers from one checkpoint
CLIP_FAMILIES: Mapping[str, TowerFamily] = MappingProxyType({
    "open_clip_model": TowerFamily(_open_clip, ("open_clip_model", "pretrained", "model_cfg", "preprocess_cfg")),
    "hf_clip_model": TowerFamily(_hf_clip, ("hf_clip_model", "pretrained", "hf_config", "preprocess")),
})


def tower_family(cfg: Mapping[str, Any], families: Mapping[str, TowerFamily], section: str) -> TowerFamily:
    """The family a config section selects; a clear error naming the keys otherwise."""
    if not isinstance(cfg, Mapping):
        raise UsageError(f"model config '{section}' must be an object")
    for key, family in families.items():
        if cfg.get(key):
            return family
    raise UsageError(f"model config '{section}' names no tower family: give one of {', '.join(families)}")


def create_vision_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, VISION_FAMILIES, "vision").build(cfg, weights)


def create_text_tower(cfg: Mapping[str, Any], weights: str | None = None) -> nn.Module:
    return tower_family(cfg, TEXT_FAMILIES, "text").build(cfg, weights)


def create_clip_towers(cfg: Mapping[str, Any], weights: str | bool | None = None) -> ClipTowers:
    """Both towers of the whole CLIP model a ``clip`` config section names (weights loaded or random)."""
    return tower_family(cfg, CLIP_FAMILIES, "clip").build(cfg, weights)


__all__ = ["CLIP_FAMILIES", "TEXT_FAMILIES", "TEXT_KEYS", "VISION_FAMILIES", "VISION_KEYS", "ClipTowers",
           "TowerFamily", "WeightsNotFoundError", "create_clip_towers", "create_text_tower", "create_vision_tower",
           "load_state_dict_file", "package_path", "tower_family"]

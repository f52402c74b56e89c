"""Vision towers from timm: any ``timm.create_model`` name, classifier removed, pooled features out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.hub_access import hub_access
from focusclip.model.towers.base import lock_layers
from focusclip.model.towers.registry import register_tower
from focusclip.model.towers.weights import (
    WeightsNotFoundError,
    load_by_order,
    load_state_dict_file,
    package_path,
)

logger = logging.getLogger(__name__)

_CLASSIFIER_PREFIXES = ("_fc.", "classifier.", "head.", "fc.")


class TimmTower(nn.Module):
    """What every tower built on a timm model (``trunk``) shares: pooled features out, the normalisation of
    ``data_source``'s pretrained config, freezing by layer groups."""

    def _adopt(self, trunk: nn.Module, data_source: nn.Module) -> None:
        import timm

        self.trunk = trunk
        self.num_features = int(trunk.num_features)
        cfg = timm.data.resolve_model_data_config(data_source)
        self.mean = tuple(float(x) for x in cfg["mean"])
        self.std = tuple(float(x) for x in cfg["std"])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)

    def rebuild_config(self) -> dict[str, Any]:
        """Config keys that rebuild this architecture without its weights (the config's own keys suffice)."""
        return {}

    def lock(self, unlocked_groups: int = 0) -> None:
        """Freeze the tower, leaving the last ``unlocked_groups`` top-level blocks trainable."""
        lock_layers(self.trunk, unlocked_groups)


class TimmVisionTower(TimmTower):
    """A timm model with its classifier removed: ``forward(images) -> (B, num_features)`` pooled features.

    ``weights``: None / "none" (random), "hub" (timm's pretrained weights; needs a network or cache),
    a ``package:`` source or a local state-dict file (see :mod:`focusclip.model.towers.weights`).
    """

    def __init__(self, timm_model_name: str, weights: str | None = None, image_size: int | None = None,
                 timm_kwargs: dict[str, Any] | None = None):
        super().__init__()
        kwargs = dict(timm_kwargs or {})
        if image_size is not None and _accepts_img_size(timm_model_name):
            kwargs.setdefault("img_size", image_size)
        trunk = create_timm_model(timm_model_name, weights, **kwargs)
        self._adopt(trunk, trunk)


def create_timm_model(name: str, weights: str | None, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name)`` without its classifier, with ``weights``: None / "none" (random), "hub"
    (timm's pretrained weights; needs a network or cache), a ``package:`` source or a local state-dict file."""
    import timm  # here, not at import time: the registry imports every tower module

    use_hub = weights == "hub"
    try:
        with hub_access(name) if use_hub else contextlib.nullcontext():
            model = timm.create_model(name, pretrained=use_hub, num_classes=0, **kwargs)
    except Exception as e:  # timm raises several types when the hub is unreachable
        if use_hub:
            raise WeightsNotFoundError(
                f"could not load timm weights for {name!r} ({e}). Offline, pass a local "
                "file as vision_weights=... or pretrained='none' for random initialisation"
            ) from e
        raise
    if weights not in (None, "none", "hub"):
        load_vision_weights(model, weights)
    return model


def load_vision_weights(trunk: nn.Module, weights: str) -> None:
    """Load a ``package:`` source or a state-dict file into a timm model, its classifier's keys left out;
    keys named otherwise (the packaged EfficientNet-Lite0 keeps its original names) are mapped by order."""
    path = package_path(weights) if weights.startswith("package:") else Path(weights)
    sd = load_state_dict_file(path)
    head_free = {k: v for k, v in sd.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    missing, unexpected = trunk.load_state_dict(head_free, strict=False)
    if not missing and not unexpected:
        logger.info("vision tower: loaded %s", path)
        return
    load_by_order(trunk, head_free, str(path))
    logger.info("vision tower: loaded %s (mapped by order)", path)


def _accepts_img_size(name: str) -> bool:
    return any(k in name for k in ("vit", "deit", "eva", "swin", "beit"))


@register_tower("vision", "timm_model_name", config_keys=("timm_model_name", "timm_kwargs"))
def build_timm_vision(cfg: Mapping[str, Any], weights: str | None) -> TimmVisionTower:
    """The ``vision`` family of ``timm_model_name``: any timm model, classifier removed."""
    return TimmVisionTower(cfg["timm_model_name"], weights=weights, image_size=cfg.get("image_size"),
                           timm_kwargs=cfg.get("timm_kwargs"))

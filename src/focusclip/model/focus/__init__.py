"""Focus mechanisms: how an ROI heatmap steers the subject-focused image encoding (``roi.mode``).

=============  =============================================================================
mode           mechanism
=============  =============================================================================
``highlight``  the paper's pixel highlighting ``I * (a + H (1 - a))`` (:mod:`.highlight`); training only
``attention``  an additive bias on the ViT's attention logits toward the subject's patches (:mod:`.attention`)
``alpha``      a zero-initialised convolution of the heatmap added to the patch embedding (:mod:`.alpha`)
``pool``       heatmap-weighted pooling mixed into a conv tower's global pooling (:mod:`.pool`)
=============  =============================================================================

A mechanism whose constructor takes ``tower`` gets the vision tower it will steer (to size its
parameters); its other keyword arguments are its ``roi`` options.

A new mechanism is one new file in this folder with a :class:`~.base.Focus` subclass, plus one entry in
``FOCUS_MODES``; the model config's ``roi`` section passes its options (``roi.<option>``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from focusclip.errors import UsageError
from focusclip.mappings import unknown_keys
from focusclip.model.focus.alpha import AlphaFocus
from focusclip.model.focus.attention import AttentionFocus
from focusclip.model.focus.base import Focus, as_heatmap_batch
from focusclip.model.focus.highlight import HighlightFocus
from focusclip.model.focus.inference import FOCUS_AT_INFERENCE, focus_modes, focused_features, resolve_focus
from focusclip.model.focus.pool import PoolFocus

FOCUS_MODES: Mapping[str, type[Focus]] = MappingProxyType({
    "highlight": HighlightFocus, "attention": AttentionFocus, "alpha": AlphaFocus, "pool": PoolFocus})

#: ``roi`` keys that are the model's, not a mechanism's option.
ROI_KEYS = ("enabled", "shared", "mode")


def focus_options(mode: str) -> list[str]:
    """The ``roi`` options a mechanism takes (its constructor's keyword arguments)."""
    return [p for p in _parameters(mode) if p not in ("self", "tower")]


def _parameters(mode: str) -> list[str]:
    return list(inspect.signature(FOCUS_MODES[mode].__init__).parameters)


def merge_roi(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``override`` merged over the ``roi`` section ``base``; an override that switches ``mode`` drops the
    old mechanism's options (a config's highlight ``alpha_init`` means nothing to ``attention``)."""
    base, override = dict(base or {}), dict(override or {})
    if "mode" in override and override["mode"] != base.get("mode", "highlight"):
        base = {k: v for k, v in base.items() if k in ROI_KEYS}
    return {**base, **override}


def create_focus(roi: Mapping[str, Any], tower: nn.Module | None = None, where: str = "model config roi") -> Focus:
    """The focus mechanism of a model config's ``roi`` section (``mode`` defaults to ``highlight``)."""
    mode = roi.get("mode", "highlight")
    if mode not in FOCUS_MODES:
        raise UsageError(f"{where}: unknown focus mode {mode!r}; known: {', '.join(FOCUS_MODES)}")
    cls = FOCUS_MODES[mode]
    if tower is not None and not cls.supports(tower):
        able = [m for m, c in FOCUS_MODES.items() if c.supports(tower)]
        raise UsageError(f"{where}: the vision tower {type(tower).__name__} cannot do focus mode {mode!r}; "
                         f"it supports: {', '.join(able) or 'none'}")
    options = {k: v for k, v in roi.items() if k not in ROI_KEYS}
    error = unknown_keys(options, focus_options(mode), f"{where} (mode {mode!r})")
    if error:
        raise UsageError(error)
    if "tower" in _parameters(mode):
        options["tower"] = tower
    return cls(**options)


__all__ = ["FOCUS_AT_INFERENCE", "FOCUS_MODES", "AlphaFocus", "AttentionFocus", "Focus", "HighlightFocus", "PoolFocus", "as_heatmap_batch",
           "create_focus", "focus_modes", "focus_options", "focused_features", "merge_roi", "resolve_focus"]

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

A new mechanism is one new file in this folder: a :class:`~.base.Focus` subclass decorated with
:func:`~.base.register_focus`. Every module of this folder is imported when the package is, so the class
reaches ``FOCUS_MODES`` (the default first, then by name) and from there model configs, ``focusclip
ablate`` and the mode-parametrised tests by itself; the model config's ``roi`` section passes its options
(``roi.<option>``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any

from torch import nn

from focusclip.errors import UsageError
from focusclip.mappings import unknown_keys
from focusclip.model.focus.base import (
    DEFAULT_FOCUS_MODE,
    FOCUS_MODES,
    Focus,
    as_heatmap_batch,
    register_focus,
)
from focusclip.model.focus.highlight import HighlightFocus

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
    if "mode" in override and override["mode"] != base.get("mode", DEFAULT_FOCUS_MODE):
        base = {k: v for k, v in base.items() if k in ROI_KEYS}
    return {**base, **override}


def create_focus(roi: Mapping[str, Any], tower: nn.Module | None = None, where: str = "model config roi") -> Focus:
    """The focus mechanism of a model config's ``roi`` section (``mode`` defaults to ``highlight``)."""
    mode = roi.get("mode", DEFAULT_FOCUS_MODE)
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


def _import_mechanisms() -> None:
    """Import every module of this folder, so that each mechanism registers itself."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_mechanisms()

from focusclip.model.focus.alpha import AlphaFocus  # noqa: E402 - re-exported names, imported above already
from focusclip.model.focus.attention import AttentionFocus  # noqa: E402
from focusclip.model.focus.inference import (  # noqa: E402
    FOCUS_AT_INFERENCE,
    focus_modes,
    focused_features,
    resolve_focus,
)
from focusclip.model.focus.pool import PoolFocus  # noqa: E402

__all__ = ["DEFAULT_FOCUS_MODE", "FOCUS_AT_INFERENCE", "FOCUS_MODES", "AlphaFocus", "AttentionFocus", "Focus",
           "HighlightFocus", "PoolFocus", "as_heatmap_batch", "create_focus", "focus_modes", "focus_options",
           "focused_features", "merge_roi", "register_focus", "resolve_focus"]

"""The focus mechanisms (roi.mode) as model overrides of the tiny towers, for parametrizing tests.

``MODE_OVERRIDES`` is derived from the registry (``focusclip.model.focus.FOCUS_MODES``): a new mechanism
that registers itself is tested by every mode-parametrised test without editing this file. Each mode runs
on ``focusclip-tiny``'s ViT when it supports that tower, else on the small conv tower below.
"""

from __future__ import annotations

from focusclip.model.focus import DEFAULT_FOCUS_MODE, FOCUS_MODES

#: a small timm conv tower with GroupNorm (batch-independent, so accumulation stays exact) for ``pool``
CONV_TOWER = {"vision": {"timm_model_name": "test_efficientnet_gn", "weights": None, "image_size": 64,
                         "resize": "squash"}}
#: ``focusclip-tiny``'s own vision tower (timm ``test_vit``)
VIT_TOWER = {"vision": {"timm_model_name": "test_vit", "weights": None, "image_size": 64, "resize": "squash"}}


def _mode_overrides() -> dict[str, dict]:
    """mode -> overrides of ``focusclip-tiny`` (nothing for the default mode)."""
    from focusclip.model.towers import create_vision_tower

    vit = create_vision_tower(VIT_TOWER["vision"])
    out: dict[str, dict] = {}
    for mode, cls in FOCUS_MODES.items():
        roi = {} if mode == DEFAULT_FOCUS_MODE else {"roi": {"mode": mode}}
        if cls.supports(vit):
            out[mode] = roi
        else:
            if not cls.supports(create_vision_tower(CONV_TOWER["vision"])):
                raise AssertionError(f"focus mode {mode!r} runs on neither tiny test tower; add one here")
            out[mode] = {**CONV_TOWER, **roi}
    return out


#: mode -> overrides of ``focusclip-tiny`` (its ViT for attention / alpha, the conv tower for pool)
MODE_OVERRIDES = _mode_overrides()


def with_mode(mode: str, overrides: dict | None = None) -> dict:
    """``overrides`` (e.g. no dropout) plus the mode's."""
    return {**(overrides or {}), **MODE_OVERRIDES[mode]}

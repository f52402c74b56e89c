"""The focus mechanisms (roi.mode) as model overrides of the tiny towers, for parametrizing tests."""

from __future__ import annotations

#: a small timm conv tower with GroupNorm (batch-independent, so accumulation stays exact) for ``pool``
CONV_TOWER = {"vision": {"timm_model_name": "test_efficientnet_gn", "weights": None, "image_size": 64,
                         "resize": "squash"}}

#: mode -> overrides of ``focusclip-tiny`` (its ViT for attention / alpha, the conv tower for pool)
MODE_OVERRIDES = {
    "highlight": {},
    "attention": {"roi": {"mode": "attention"}},
    "alpha": {"roi": {"mode": "alpha"}},
    "pool": {**CONV_TOWER, "roi": {"mode": "pool"}},
}


def with_mode(mode: str, overrides: dict | None = None) -> dict:
    """``overrides`` (e.g. no dropout) plus the mode's."""
    return {**(overrides or {}), **MODE_OVERRIDES[mode]}

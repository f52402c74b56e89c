"""FocusCLIP: CLIP-style language-image pretraining with subject-level guidance.

The public API is imported lazily (PEP 562), so that ``import focusclip.data.synthetic`` or the command
line do not pay for importing torch, timm and transformers until a model is needed.
"""

from __future__ import annotations

import importlib
from typing import Any


def _installed_version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written); a source tree
    that was never installed reports ``0+unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("focusclip")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()

_EXPORTS = {
    "FocusCLIP": "focusclip.model",
    "SampleTransform": "focusclip.model",
    "ClipLoss": "focusclip.loss",
    "FocusCLIPLoss": "focusclip.loss",
    "NTXentLoss": "focusclip.loss",
    "nt_xent": "focusclip.loss",
    "add_model_config": "focusclip.model",
    "create_model": "focusclip.model",
    "create_model_and_transforms": "focusclip.model",
    "export_model": "focusclip.model.export",
    "merge_models": "focusclip.model.merge",
    "eval_transform": "focusclip.model",
    "get_model_config": "focusclip.model",
    "get_tokenizer": "focusclip.model",
    "list_models": "focusclip.model",
    "load_model": "focusclip.model",
    "save_model": "focusclip.model",
    "build_zero_shot_classifier": "focusclip.zeroshot.classifier",
    "ZeroShotClassifier": "focusclip.predict",
    "embed_images": "focusclip.predict",
    "embed_texts": "focusclip.predict",
    "push_to_hub": "focusclip.hub",
    "model_card": "focusclip.model_card",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'focusclip' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

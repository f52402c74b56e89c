"""Back to the ecosystem: a FocusCLIP built on a whole CLIP written as that library's own checkpoint.

A whole-CLIP FocusCLIP keeps the checkpoint's state dict under a tower prefix (``visual.`` / ``text.``,
see :mod:`focusclip.model.towers`), so exporting strips the prefixes and drops what only the ROI branch
has (the focus mechanism's parameters, an unshared ROI image tower): the exported model is the image
and text towers with the learned logit scale, which is what zero-shot classification and retrieval use.

- from open_clip: ``OUT/open_clip_model.safetensors`` + ``OUT/open_clip_config.json`` (open_clip's own
  folder layout), loaded by ``open_clip.create_model_and_transforms('local-dir:OUT')``, or for an
  architecture open_clip has built in, ``create_model_and_transforms(ARCH, pretrained=OUT/open_clip_model.safetensors)``;
- from Hugging Face: ``CLIPModel.save_pretrained(OUT)`` plus the tokenizer and the image processor, so
  ``CLIPModel.from_pretrained(OUT)`` / ``CLIPProcessor.from_pretrained(OUT)`` load it.

Each writer is its CLIP family's ``export`` hook (:mod:`focusclip.model.towers.openclip`,
:mod:`focusclip.model.towers.hf_clip`); this module strips the state and dispatches.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from focusclip.errors import UsageError
from focusclip.model.focusclip import FocusCLIP
from focusclip.model.towers import CLIP_FAMILIES, ClipFamily, clip_family

logger = logging.getLogger(__name__)

EXPORT_FORMATS = tuple(f.export_format for f in CLIP_FAMILIES.values())  #: ("open_clip", "hf")
_TOWER_PREFIXES = ("visual.", "text.")
_SHARED_KEYS = ("logit_scale", "logit_bias")


def export_format(model: FocusCLIP | dict[str, Any], fmt: str | None = None) -> str:
    """The format a model (or a model config) exports to: the library its whole CLIP came from (its family's
    ``export_format``); ``fmt``, when given, must be that one."""
    config = model if isinstance(model, dict) else model.config
    native = _family(config).export_format
    if fmt is not None and fmt != native:
        raise UsageError(f"model {config.get('name', '')!r} comes from {native}; it exports as {native!r}, "
                         f"not {fmt!r}")
    return native


def _family(config: dict[str, Any]) -> ClipFamily:
    clip = config.get("clip") or {}
    if clip:
        return clip_family(clip)
    raise UsageError(f"model {config.get('name', '')!r} is not built on a whole CLIP checkpoint (no 'clip' "
                     "section): only models from open_clip or Hugging Face CLIP export to those libraries; "
                     "use focusclip.save_model for the others")


def check_export(path: str | Path, fmt: str | None = None) -> str:
    """:func:`export_format` of a saved model directory from its config alone, before any weights load."""
    from focusclip.model.factory import _read_saved_config

    return export_format(_read_saved_config(Path(path))["model"], fmt)


def checkpoint_state(model: FocusCLIP) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the checkpoint library's state dict, the ROI-only keys that were dropped)."""
    state, dropped = {}, []
    for key, value in model.state_dict().items():
        if key.startswith(_TOWER_PREFIXES):
            state[key.split(".", 1)[1]] = value.detach().cpu().contiguous()
        elif key in _SHARED_KEYS:
            state[key] = value.detach().cpu().reshape(_scalar_shape(model, key)).contiguous()
        else:
            dropped.append(key)
    return state, dropped


def _scalar_shape(model: FocusCLIP, key: str) -> tuple[int, ...]:
    """open_clip models with ``nonscalar_logit_scale`` keep the scale as a (1,) tensor."""
    model_cfg = (model.config.get("clip") or {}).get("model_cfg") or model.clip_rebuild.get("model_cfg") or {}
    return (1,) if model_cfg.get("nonscalar_logit_scale") else ()


def export_model(model: FocusCLIP, out: str | Path, tokenizer: Any = None, fmt: str | None = None) -> Path:
    """Write ``model`` to ``out`` in its checkpoint library's format (``fmt`` must match it if given)."""
    export_format(model, fmt)  # a model that does not come from a whole CLIP, or another --format: an error
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state, dropped = checkpoint_state(model)
    if dropped:
        logger.info("export: dropped %d ROI-branch tensors (%s) - the exported model is the two towers",
                    len(dropped), ", ".join(sorted({k.split('.')[0] for k in dropped})))
    _family(model.config).export(model, state, out, tokenizer)
    return out

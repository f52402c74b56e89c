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
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from focusclip.errors import UsageError
from focusclip.io import atomic_save, atomic_write_json, usual_modes
from focusclip.model.focusclip import FocusCLIP

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("open_clip", "hf")
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"
OPEN_CLIP_CONFIG = "open_clip_config.json"
_TOWER_PREFIXES = ("visual.", "text.")
_SHARED_KEYS = ("logit_scale", "logit_bias")


def export_format(model: FocusCLIP | dict[str, Any], fmt: str | None = None) -> str:
    """The format a model (or a model config) exports to: the library its whole CLIP came from; ``fmt``,
    when given, must be that one."""
    config = model if isinstance(model, dict) else model.config
    clip = config.get("clip") or {}
    native = "open_clip" if clip.get("open_clip_model") else "hf" if clip.get("hf_clip_model") else None
    if native is None:
        raise UsageError(f"model {config.get('name', '')!r} is not built on a whole CLIP checkpoint (no 'clip' "
                         "section): only models from open_clip or Hugging Face CLIP export to those libraries; "
                         "use focusclip.save_model for the others")
    if fmt is not None and fmt != native:
        raise UsageError(f"model {config.get('name', '')!r} comes from {native}; it exports as {native!r}, "
                         f"not {fmt!r}")
    return native


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
    native = export_format(model, fmt)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state, dropped = checkpoint_state(model)
    if dropped:
        logger.info("export: dropped %d ROI-branch tensors (%s) - the exported model is the two towers",
                    len(dropped), ", ".join(sorted({k.split('.')[0] for k in dropped})))
    if native == "open_clip":
        _write_open_clip(model, state, out)
    else:
        _write_hf(model, state, out, tokenizer)
    return out


def _write_open_clip(model: FocusCLIP, state: dict[str, torch.Tensor], out: Path) -> None:
    from safetensors.torch import save_file

    rebuild = model.clip_rebuild or model.config["clip"]
    model_cfg = copy.deepcopy(rebuild["model_cfg"])
    positions = int(model.text.context_length)
    if positions != int(model_cfg.get("text_cfg", {}).get("context_length", 77)):
        model_cfg.setdefault("text_cfg", {})["context_length"] = positions
        logger.warning("export: the text positions were stretched to %d; load with "
                       "open_clip.create_model_and_transforms('local-dir:%s'), whose config says so (open_clip "
                       "would resize them back to its architecture's length otherwise)", positions, out)
    vision = model.config["vision"]
    preprocess = {**(rebuild.get("preprocess_cfg") or {}), "size": int(vision["image_size"]),
                  "mean": list(vision["mean"]), "std": list(vision["std"])}
    atomic_save(out / OPEN_CLIP_WEIGHTS, lambda f: save_file(state, f, metadata={"format": "pt"}))
    atomic_write_json(out / OPEN_CLIP_CONFIG, {"model_cfg": model_cfg, "preprocess_cfg": preprocess})


def _write_hf(model: FocusCLIP, state: dict[str, torch.Tensor], out: Path, tokenizer: Any) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    rebuild = model.clip_rebuild or model.config["clip"]
    hf_config = copy.deepcopy(rebuild["hf_config"])
    hf_config.setdefault("text_config", {})["max_position_embeddings"] = int(model.text.context_length)
    clip = CLIPModel(CLIPConfig.from_dict(hf_config))
    clip.load_state_dict(state, strict=True)
    clip.save_pretrained(str(out))
    usual_modes(out.glob("model*.safetensors*"))  # safetensors creates its files 0600 whatever the umask
    vision = model.config["vision"]
    size = int(vision["image_size"])
    crop = vision.get("resize", "shortest_edge") != "squash"
    CLIPImageProcessor(size={"shortest_edge": size} if crop else {"height": size, "width": size},
                       crop_size={"height": size, "width": size}, do_center_crop=crop,
                       image_mean=list(vision["mean"]), image_std=list(vision["std"]),
                       resample=3 if vision.get("interpolation", "bicubic") == "bicubic" else 2
                       ).save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save(out)

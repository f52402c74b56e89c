"""Whole Hugging Face ``CLIPModel`` checkpoints as FocusCLIP towers (model config section ``clip`` with
``hf_clip_model``).

The model is loaded by transformers (``CLIPModel.from_pretrained``: a hub id or a local folder written
by ``save_pretrained``), strictly (missing or unexpected weights are an error, not a random init), then
split into two towers that keep transformers' own modules under their own names:

- :class:`HFCLIPVisionTower`: ``vision_model`` (``tower.vision_model.encoder.layers`` are the blocks,
  ``tower.vision_model.embeddings.patch_embedding`` the patch embedding) and ``visual_projection``;
- :class:`HFCLIPTextTower`: ``text_model`` and ``text_projection``.

The FocusCLIP state dict is ``CLIPModel``'s with a tower prefix (``visual.vision_model...``,
``text.text_model...``); exporting strips it and writes ``save_pretrained`` folders.

``clip`` config keys: ``hf_clip_model`` (hub id or folder: the architecture, tokenizer and image
processor), ``pretrained`` (where the weights come from: a hub id or folder, usually the same; null for
random initialisation) and ``hf_config`` (``CLIPConfig.to_dict()``: the architecture given directly, as
saved models do).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.hub_access import hub_access
from focusclip.io import read_json, usual_modes
from focusclip.model.long_text import LONG_TEXT_STRATEGIES, stretch_positions
from focusclip.model.towers.base import ClipTowers, lock_groups
from focusclip.model.towers.registry import ClipFamily, register_clip_family
from focusclip.model.towers.weights import WeightsMismatchError, WeightsNotFoundError, mismatch_error

logger = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_PROCESSOR_FILE = "preprocessor_config.json"
_RESAMPLE = {2: "bilinear", 3: "bicubic", 0: "nearest"}
#: weights transformers itself re-creates (buffers), never a mismatch
_IGNORABLE = ("position_ids",)


class HFCLIPVisionTower(nn.Module):
    """transformers' CLIP image side: ``visual_projection(vision_model(x).pooler_output)``."""

    projected = True

    def __init__(self, clip: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.vision_model = clip.vision_model
        self.visual_projection = clip.visual_projection
        self.num_features = int(clip.config.projection_dim)
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model(pixel_values=images).pooler_output)

    def lock(self, unlocked_groups: int = 0) -> None:
        """open_clip's image-tower groups: embeddings + pre-norm, each block, last block + post-norm,
        the projection."""
        vm = self.vision_model
        layers = list(vm.encoder.layers)
        groups = [[vm.embeddings, vm.pre_layrnorm], *layers[:-1], [layers[-1], vm.post_layernorm],
                  self.visual_projection]
        lock_groups(self, groups, unlocked_groups)

    def rebuild_config(self) -> dict[str, Any]:
        return {}


class HFCLIPTextTower(nn.Module):
    """transformers' CLIP text side: ``text_projection(text_model(ids).pooler_output)``. The attention
    is causal and pools at the end-of-text token, so the padding mask is not needed (nor passed: Hugging
    Face CLIP tokenizers pad with the end-of-text token itself)."""

    projected = True
    long_text_modes = LONG_TEXT_STRATEGIES

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.text_model = clip.text_model
        self.text_projection = clip.text_projection
        self.num_features = int(clip.config.projection_dim)

    @property
    def context_length(self) -> int:
        return int(self.text_model.embeddings.position_embedding.num_embeddings)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.text_projection(self.text_model(input_ids=input_ids).pooler_output)

    def lock(self, unlocked_layers: int = 0) -> None:
        """open_clip's text-tower groups: embeddings, each block, last block + final norm, projection."""
        tm = self.text_model
        layers = list(tm.encoder.layers)
        groups = [tm.embeddings, *layers[:-1], [layers[-1], tm.final_layer_norm], self.text_projection]
        lock_groups(self, groups, unlocked_layers)

    def stretch_positions(self, positions: int, keep: int) -> None:
        """Long-CLIP positional stretching (:func:`focusclip.model.long_text.stretch_positions`)."""
        emb = self.text_model.embeddings
        old = emb.position_embedding.weight
        new = nn.Embedding(positions, old.shape[1]).to(old)
        with torch.no_grad():
            new.weight.copy_(stretch_positions(old.detach(), positions, keep))
        new.weight.requires_grad_(old.requires_grad)
        emb.position_embedding = new
        emb.register_buffer("position_ids", torch.arange(positions, device=old.device).expand((1, -1)),
                            persistent=False)
        self.text_model.config.max_position_embeddings = positions

    def rebuild_config(self) -> dict[str, Any]:
        return {}


# ------------------------------------------------------------------------------ building
def build_hf_clip_towers(cfg: Mapping[str, Any], weights: str | bool | None) -> ClipTowers:
    """The towers of the ``CLIPModel`` a ``clip`` config section names; ``weights`` (a hub id or folder;
    True: ``hf_clip_model`` itself) loaded strictly, or random initialisation (None / False)."""
    from transformers import CLIPConfig, CLIPModel

    source = str(cfg["hf_clip_model"])
    if weights:
        location = source if weights is True else str(weights)
        clip = load_clip_strict(location)
    else:
        hf_config = cfg.get("hf_config")
        config = CLIPConfig.from_dict(copy.deepcopy(hf_config)) if hf_config else hf_clip_config(source)
        clip = CLIPModel(config)
    pp = cfg.get("preprocess") or image_preprocess(hf_clip_files(cfg), int(clip.config.vision_config.image_size))
    hf_config = clip.config.to_diff_dict()
    for k in ("_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype"):
        hf_config.pop(k, None)
    return ClipTowers(
        visual=HFCLIPVisionTower(clip, tuple(pp["mean"]), tuple(pp["std"])), text=HFCLIPTextTower(clip),
        embed_dim=int(clip.config.projection_dim), logit_scale=float(clip.logit_scale.detach()),
        preprocess=dict(pp), rebuild={"hf_config": hf_config, "preprocess": dict(pp)})


def hf_clip_files(cfg: Mapping[str, Any]) -> str:
    """Where a ``clip`` section's tokenizer and image processor come from: the weights' folder when
    ``pretrained`` is a local folder (a registered hub name given a local copy works offline), else
    ``hf_clip_model``."""
    pretrained = cfg.get("pretrained")
    if isinstance(pretrained, str) and Path(pretrained).is_dir():
        return pretrained
    return str(cfg["hf_clip_model"])


def load_clip_strict(location: str) -> nn.Module:
    """``CLIPModel.from_pretrained(location)``, but a checkpoint that leaves weights missing, unused or
    mis-shaped is a :class:`WeightsMismatchError` listing them (transformers would initialise the
    missing ones randomly with a warning)."""
    from transformers import CLIPModel

    try:
        with hub_access(location):
            clip, info = CLIPModel.from_pretrained(location, output_loading_info=True)
    except OSError as e:
        raise WeightsNotFoundError(
            f"could not load the Hugging Face CLIP model {location!r} ({str(e).splitlines()[0]}). Without a "
            "network, pass a local folder written by CLIPModel.save_pretrained (hfclip:/path/to/folder)") from e
    except (RuntimeError, ValueError) as e:
        # transformers refuses mis-shaped weights before it reports them: load again keeping them aside,
        # to list every key (the model of that second load is thrown away)
        try:
            with hub_access(location):
                _, info = CLIPModel.from_pretrained(location, output_loading_info=True, ignore_mismatched_sizes=True)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            raise WeightsMismatchError(f"{location}: weights do not match the model: {str(e).splitlines()[0]}") \
                from e
        info["mismatched_keys"] = list(info.get("mismatched_keys") or []) or ["(see above)"]
    problems = {kind: sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(kind, [])
                             if not str(k[0] if isinstance(k, tuple) else k).endswith(_IGNORABLE))
                for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(problems.values()):
        raise mismatch_error(f"{location} (the CLIP architecture of its config)", problems["missing_keys"],
                             problems["unexpected_keys"], problems["mismatched_keys"])
    return clip


def hf_clip_config(source: str):
    """The ``CLIPConfig`` of a hub id or save_pretrained folder; a clear error offline."""
    from transformers import CLIPConfig

    try:
        with hub_access(source):
            return CLIPConfig.from_pretrained(source)
    except OSError as e:
        raise WeightsNotFoundError(
            f"no config for the Hugging Face CLIP model {source!r} ({str(e).splitlines()[0]}). Without a "
            "network, pass a local folder written by CLIPModel.save_pretrained") from e


def image_preprocess(source: str, image_size: int) -> dict[str, Any]:
    """The checkpoint's image preprocessing (its ``preprocessor_config.json``): size, mean, std, resize
    (CLIPImageProcessor's shortest-edge resize + centre crop is ``shortest_edge``), interpolation. Without that file,
    OpenAI CLIP's (with a warning)."""
    cfg = _processor_config(source)
    if cfg is None:
        logger.warning("%s has no %s; using OpenAI CLIP's preprocessing at %d px", source, IMAGE_PROCESSOR_FILE,
                       image_size)
        cfg = {}
    crop = cfg.get("crop_size", image_size)
    size = crop.get("height", image_size) if isinstance(crop, dict) else int(crop)
    return {"image_size": int(size), "mean": list(cfg.get("image_mean", OPENAI_MEAN)),
            "std": list(cfg.get("image_std", OPENAI_STD)),
            "resize": "shortest_edge" if cfg.get("do_center_crop", True) else "squash",
            "interpolation": _RESAMPLE.get(int(cfg.get("resample", 3)), "bicubic")}


def _processor_config(source: str) -> dict[str, Any] | None:
    folder = Path(source)
    if folder.is_dir():
        f = folder / IMAGE_PROCESSOR_FILE
        return read_json(f, "image processor config") if f.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        with hub_access(source):
            return json.loads(Path(hf_hub_download(source, IMAGE_PROCESSOR_FILE)).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - offline or absent: fall back to OpenAI's
        return None


# ------------------------------------------------------------------------------ the family
def context_length(clip: Mapping[str, Any]) -> int:
    """The text positions of the checkpoint a ``clip`` section names (``max_position_embeddings``)."""
    hf = clip.get("hf_config")
    if hf:
        return int(hf.get("text_config", {}).get("max_position_embeddings", 77))
    return int(hf_clip_config(clip["hf_clip_model"]).text_config.max_position_embeddings)


def load_tokenizer(clip: Mapping[str, Any]) -> tuple[Any, str]:
    """The checkpoint's own tokenizer: ``(backend, source)``; a clear error when the folder has none."""
    from focusclip.model.tokenizer import HFBackend, load_hf_tokenizer

    source = hf_clip_files(clip)
    try:
        return HFBackend(load_hf_tokenizer(source)), source
    except (OSError, ValueError) as e:
        raise WeightsNotFoundError(f"no tokenizer for the Hugging Face CLIP model {source!r} ({e}). Save "
                                   "one into the folder (CLIPTokenizer.save_pretrained)") from e


def export_hf_clip(model: Any, state: dict[str, torch.Tensor], out: Path, tokenizer: Any = None) -> None:
    """``CLIPModel.save_pretrained(OUT)`` with the image processor (and the tokenizer when given)."""
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


def describe(clip: Mapping[str, Any]) -> str:
    return f"hf_clip={clip['hf_clip_model']}"


HF_CLIP = register_clip_family("hf_clip_model", ClipFamily(
    build_hf_clip_towers, ("hf_clip_model", "pretrained", "hf_config", "preprocess"),
    context_length=context_length, tokenizer=load_tokenizer, export_format="hf", export=export_hf_clip,
    describe=describe, exported="Hugging Face CLIP in {out}: CLIPModel.from_pretrained('{out}')"))

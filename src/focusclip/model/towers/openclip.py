"""Whole open_clip models as FocusCLIP towers (model config section ``clip`` with ``open_clip_model``).

The model is built by open_clip itself (``open_clip.create_model``: built-in names with a pretrained tag
or a checkpoint file, ``hf-hub:`` and ``local-dir:`` sources), then split into two towers that keep
open_clip's own modules under open_clip's own names:

- :class:`OpenCLIPVisionTower`: ``tower.visual`` is open_clip's ``model.visual`` (for a ViT,
  ``tower.visual.conv1`` is the patch embedding and ``tower.visual.transformer.resblocks`` the blocks);
  its output is already projected (``visual.proj``).
- :class:`OpenCLIPTextTower`: the text modules of a ``CLIP`` (``token_embedding``,
  ``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection``, ``attn_mask``) or
  ``tower.text`` of a ``CustomTextCLIP``; it runs open_clip's own ``encode_text`` on them.

So the FocusCLIP state dict is open_clip's with a tower prefix: ``visual.<open_clip key>`` for the image
side and ``text.<open_clip key>`` for the text side; exporting strips the prefixes
(:mod:`focusclip.model.export`).

``clip`` config keys: ``open_clip_model`` (an architecture name, ``hf-hub:ORG/REPO`` or
``local-dir:PATH``), ``pretrained`` (a tag such as ``openai``, a checkpoint file, or null for random
initialisation; with a ``hf-hub:`` / ``local-dir:`` source any true value loads its weights),
``model_cfg`` (open_clip's model config dict: the architecture given directly, as saved models and the
built-in tiny configs do) and ``preprocess_cfg`` (open_clip's preprocessing dict).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.errors import InputError, UsageError
from focusclip.hub_access import hub_access
from focusclip.mappings import did_you_mean
from focusclip.model.long_text import LONG_TEXT_STRATEGIES, stretch_positions
from focusclip.model.towers.base import ClipTowers
from focusclip.model.towers.registry import ClipFamily, register_clip_family
from focusclip.model.towers.weights import WeightsNotFoundError, check_state_fits

logger = logging.getLogger(__name__)

SCHEMAS = ("hf-hub:", "local-dir:")
#: open_clip ``resize_mode`` -> focusclip ``vision.resize`` (``shortest``: open_clip's own resize + crop)
RESIZE_MODES = {"shortest": "shortest", "squash": "squash"}
_TEXT_ATTRS = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


class UnknownModelError(UsageError):
    """An architecture or pretrained tag that the library does not know (the message lists close matches)."""


# ------------------------------------------------------------------------------ the towers
class OpenCLIPVisionTower(nn.Module):
    """open_clip's image tower (``self.visual``); ``forward`` returns projected features."""

    projected = True

    def __init__(self, visual: nn.Module, embed_dim: int, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.visual = visual
        self.num_features = int(embed_dim)
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)

    def lock(self, unlocked_groups: int = 0) -> None:
        """open_clip's ``lock_image_tower``: freeze all, unlock the last ``unlocked_groups`` groups."""
        self.visual.lock(unlocked_groups=unlocked_groups, freeze_bn_stats=False)

    def rebuild_config(self) -> dict[str, Any]:
        return {}


class OpenCLIPTextTower(nn.Module):
    """open_clip's text tower: a ``CLIP``'s text modules under their own names, or a ``CustomTextCLIP``'s
    ``text`` module. ``forward(input_ids, attention_mask)`` pads the ids to the tower's positions (its
    attention is causal and it pools at the end-of-text token, so padding changes nothing) and returns
    projected features; ``attention_mask`` is not needed."""

    projected = True

    def __init__(self, clip: nn.Module, embed_dim: int, pad_id: int = 0):
        super().__init__()
        self.custom = hasattr(clip, "text")
        if self.custom:
            self.text = clip.text
        else:
            for name in _TEXT_ATTRS:
                setattr(self, name, getattr(clip, name))
            self.register_buffer("attn_mask", clip.attn_mask, persistent=False)
            self.text_pool_type = clip.text_pool_type
            self.text_eos_id = clip.text_eos_id
        self.pad_id = int(pad_id)
        self.num_features = int(embed_dim)
        self.fixed_length = isinstance(getattr(self._holder(), "positional_embedding", None), nn.Parameter)

    def _holder(self) -> nn.Module:
        """The module that owns the text parameters (this tower, or ``self.text``)."""
        return self.text if self.custom else self

    @property
    def context_length(self) -> int:
        pos = getattr(self._holder(), "positional_embedding", None)
        return int(pos.shape[0]) if pos is not None else int(getattr(self._holder(), "context_length", 77))

    @property
    def long_text_modes(self) -> tuple[str, ...]:
        return LONG_TEXT_STRATEGIES if self.fixed_length else ("truncate", "sentences")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = self.context_length
        if self.fixed_length and input_ids.shape[1] != n:
            if input_ids.shape[1] > n:
                raise UsageError(f"text of {input_ids.shape[1]} tokens for a text tower of {n} positions")
            input_ids = nn.functional.pad(input_ids, (0, n - input_ids.shape[1]), value=self.pad_id)
        if self.custom:
            return self.text(input_ids)
        import open_clip

        return open_clip.CLIP.encode_text(self, input_ids)  # open_clip's own code on open_clip's modules

    def lock(self, unlocked_layers: int = 0) -> None:
        """open_clip's ``lock_text_tower``: embeddings, blocks, last block + final norm, projection."""
        from open_clip.transformer import lock_text_tower

        lock_text_tower(self, unlocked_layers)

    def stretch_positions(self, positions: int, keep: int) -> None:
        """Long-CLIP positional stretching (:func:`focusclip.model.long_text.stretch_positions`)."""
        holder = self._holder()
        if not self.fixed_length or getattr(holder, "attn_mask", None) is None:
            raise UsageError(f"long_text 'stretch': the open_clip text tower of this model has no causal learned "
                             f"positions to stretch; it supports: {', '.join(self.long_text_modes)}")
        old = holder.positional_embedding
        holder.positional_embedding = nn.Parameter(stretch_positions(old.detach(), positions, keep),
                                                   requires_grad=old.requires_grad)
        mask = torch.full((positions, positions), float("-inf")).triu_(1).to(holder.attn_mask)
        holder.register_buffer("attn_mask", mask, persistent=False)
        for attr in ("context_length", "num_pos"):  # plain attributes of open_clip's TextTransformer
            if attr in vars(holder):
                setattr(holder, attr, positions)

    def rebuild_config(self) -> dict[str, Any]:
        return {}


# ------------------------------------------------------------------------------ building
def build_open_clip_towers(cfg: Mapping[str, Any], weights: str | bool | None) -> ClipTowers:
    """The towers of the open_clip model a ``clip`` config section names, with ``weights`` loaded (a tag,
    a checkpoint file; for ``hf-hub:`` / ``local-dir:`` sources any true value) or random (None)."""
    name = str(cfg["open_clip_model"])
    model_cfg = copy.deepcopy(cfg.get("model_cfg"))
    if model_cfg is not None:
        clip, preprocess_cfg = _from_model_cfg(model_cfg, cfg.get("preprocess_cfg"))
        if weights:
            load_checkpoint_file(clip, str(weights))
    else:
        clip, model_cfg = _create(name, weights)
        preprocess_cfg = _preprocess_of(clip)
    return _split(clip, model_cfg, preprocess_cfg)


def model_config(name: str) -> dict[str, Any]:
    """open_clip's model config of ``name`` (a built-in name, ``hf-hub:`` or ``local-dir:``)."""
    import open_clip

    check_architecture(name)
    # only a hf-hub: / local-dir: name reads its config from elsewhere; a built-in name's is in open_clip
    access = hub_access(name.split(":", 1)[1]) if name.startswith(SCHEMAS) else contextlib.nullcontext()
    try:
        with access:
            cfg = open_clip.get_model_config(name)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        raise WeightsNotFoundError(f"open_clip model {name!r}: could not read its config ({e}). Without a "
                                   "network, pass a local folder: openclip:local-dir:/path/to/folder") from e
    if cfg is None:
        raise UnknownModelError(f"open_clip model {name!r}: no model config found")
    return copy.deepcopy(cfg)


def check_architecture(name: str) -> None:
    """:class:`UnknownModelError` with close matches for a name open_clip does not know."""
    import open_clip

    if name.startswith(SCHEMAS):
        return
    known = open_clip.list_models()
    if name not in known:
        raise UnknownModelError(f"unknown open_clip architecture {name!r}.{did_you_mean(name, known)} "
                                "All: open_clip.list_models()")


def check_tag(name: str, tag: str) -> None:
    """:class:`UnknownModelError` with close matches for a pretrained tag that is neither one of the
    architecture's tags nor an existing file."""
    import open_clip

    if name.startswith(SCHEMAS) or os.path.isfile(tag):
        return
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        looks_like_path = os.sep in tag or tag.endswith((".pt", ".pth", ".bin", ".safetensors"))
        what = "checkpoint file not found" if looks_like_path else "unknown pretrained tag"
        raise UnknownModelError(f"open_clip {name}: {what} {tag!r}.{did_you_mean(tag, tags)} "
                                f"Tags of {name}: {', '.join(tags) or 'none'}")


def _create(name: str, weights: str | bool | None) -> tuple[nn.Module, dict[str, Any]]:
    """(open_clip model, its model config) through ``open_clip.create_model``. A tag trained with QuickGELU
    (OpenAI's) gets it even when the architecture's config says GELU, as the tag requires. The hub is
    probed once for the config and the weights (one log line when it cannot be reached)."""
    schema = name.startswith(SCHEMAS)
    with hub_access(str(weights) if weights and not schema else name.split(":", 1)[-1]):
        return _create_here(name, weights, schema)


def _create_here(name: str, weights: str | bool | None, schema: bool) -> tuple[nn.Module, dict[str, Any]]:
    import open_clip

    model_cfg = model_config(name)
    quick_gelu = False
    if weights and not schema:
        check_tag(name, str(weights))
        tag_cfg = open_clip.get_pretrained_cfg(name, str(weights)) or {}
        quick_gelu = bool(tag_cfg.get("quick_gelu")) and not model_cfg.get("quick_gelu", False)
    try:
        with _quiet_open_clip():
            clip = open_clip.create_model(name, pretrained=None if schema or not weights else str(weights),
                                          load_weights=bool(weights), force_quick_gelu=quick_gelu)
    except (RuntimeError, AssertionError) as e:
        # AssertionError: open_clip asserts while resizing position embeddings of another width, before its
        # strict load; RuntimeError: the strict load itself
        if isinstance(e, AssertionError) or "state_dict" in str(e):
            _raise_mismatch(name, weights, e)
        source = name if schema else f"{name}/{weights}"
        raise WeightsNotFoundError(
            f"could not load open_clip weights {source} ({_first_line(e)}). Without a network, pass a "
            f"local checkpoint file (openclip:{name}@/path/to/open_clip_model.safetensors) or a folder with "
            "open_clip_config.json and the weights (openclip:local-dir:/path/to/folder)") from e
    if quick_gelu:
        model_cfg["quick_gelu"] = True
    return clip, model_cfg


def load_checkpoint_file(clip: nn.Module, path: str) -> None:
    """open_clip's ``load_checkpoint`` (its key conversions included), strictly, with our error."""
    import open_clip

    if not os.path.isfile(path):
        raise WeightsNotFoundError(f"open_clip checkpoint file not found: {path}")
    try:
        open_clip.load_checkpoint(clip, path, strict=True)
    except (RuntimeError, AssertionError) as e:  # AssertionError: a position embedding of another width
        check_state_fits(clip.state_dict(), open_clip.factory.load_state_dict(path), path)
        raise InputError(f"{path}: {_first_line(e)}") from e


def _raise_mismatch(name: str, weights: Any, error: Exception) -> None:
    """Re-raise open_clip's strict-load failure as a WeightsMismatchError listing the keys."""
    import open_clip

    with _quiet_open_clip():
        blank = open_clip.create_model(name, load_weights=False)
    path = str(weights) if weights and os.path.isfile(str(weights)) else None
    if name.startswith("local-dir:"):
        from pathlib import Path

        path = open_clip.factory._find_checkpoint_in_dir(Path(name[len("local-dir:"):]))  # open_clip's choice
    if path is not None:
        check_state_fits(blank.state_dict(), open_clip.factory.load_state_dict(path), f"{path} (for open_clip {name})")
    raise InputError(f"open_clip {name}: the checkpoint does not fit the architecture: {_first_line(error)}") \
        from error


def _from_model_cfg(model_cfg: dict[str, Any], preprocess_cfg: Mapping[str, Any] | None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """Random-init open_clip model of an architecture given as a model config dict, chosen as
    ``open_clip.create_model`` chooses (``CustomTextCLIP`` for custom or Hugging Face text)."""
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    cfg = copy.deepcopy(model_cfg)
    if "multimodal_cfg" in cfg:
        raise UsageError("CoCa models (multimodal_cfg) are not supported as FocusCLIP towers")
    text_cfg, vision_cfg = cfg.setdefault("text_cfg", {}), cfg.setdefault("vision_cfg", {})
    if "hf_model_name" in text_cfg:
        text_cfg["hf_model_pretrained"] = False
    if "timm_model_name" in vision_cfg:
        vision_cfg["timm_model_pretrained"] = False
    custom = cfg.pop("custom_text", False) or "hf_model_name" in text_cfg
    model = (open_clip.CustomTextCLIP if custom else open_clip.CLIP)(**cfg)
    from dataclasses import asdict

    pp = merge_preprocess_dict(asdict(PreprocessCfg()), dict(preprocess_cfg or {}))
    pp["size"] = getattr(model.visual, "image_size", pp["size"])
    open_clip.model.set_model_preprocess_cfg(model, pp)
    return model, pp


def _preprocess_of(clip: nn.Module) -> dict[str, Any]:
    import open_clip

    return copy.deepcopy(dict(open_clip.get_model_preprocess_cfg(clip)))


def _split(clip: nn.Module, model_cfg: dict[str, Any], pp: dict[str, Any]) -> ClipTowers:
    if getattr(clip, "logit_bias", None) is not None:
        logger.info("this open_clip model has a logit bias (sigmoid loss); FocusCLIP keeps it for export")
    size = pp.get("size", 224)
    size = size if isinstance(size, int) else size[0] if size[0] == size[-1] else None
    if size is None:
        raise UsageError(f"open_clip preprocessing with a non-square size {pp.get('size')} is not supported")
    resize = pp.get("resize_mode", "shortest")
    if resize not in RESIZE_MODES:
        raise UsageError(f"open_clip resize_mode {resize!r} is not supported; supported: {', '.join(RESIZE_MODES)}")
    mean, std = tuple(float(x) for x in pp["mean"]), tuple(float(x) for x in pp["std"])
    embed_dim = int(model_cfg.get("embed_dim") or clip.visual.output_dim)
    visual = OpenCLIPVisionTower(clip.visual, embed_dim, mean, std)
    text = OpenCLIPTextTower(clip, embed_dim, pad_id=int(model_cfg.get("text_cfg", {}).get("pad_id", 0) or 0))
    bias = getattr(clip, "logit_bias", None)
    return ClipTowers(
        visual=visual, text=text, embed_dim=embed_dim, logit_scale=float(clip.logit_scale.detach().flatten()[0]),
        logit_bias=float(bias.detach().flatten()[0]) if bias is not None else None,
        preprocess={"image_size": int(size), "mean": list(mean), "std": list(std), "resize": RESIZE_MODES[resize],
                    "interpolation": str(pp.get("interpolation", "bicubic"))},
        rebuild={"model_cfg": model_cfg, "preprocess_cfg": _jsonable(pp)})


def _jsonable(pp: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in pp.items()}


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """open_clip logs its progress on the root logger ("initialized randomly" for a model whose weights we
    load next, download failures that we re-raise with advice); keep that out of our logs unless
    debugging."""
    root = logging.getLogger()
    if root.isEnabledFor(logging.DEBUG):
        yield
        return

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.name != "root"

    flt = _Drop()
    root.addFilter(flt)  # a logger's filters see only records logged on it: open_clip's, not ours
    try:
        yield
    finally:
        root.removeFilter(flt)


# ------------------------------------------------------------------------------ the family
def context_length(clip: Mapping[str, Any]) -> int:
    """The text positions of the checkpoint a ``clip`` section names (its ``text_cfg.context_length``)."""
    model_cfg = clip.get("model_cfg") or model_config(clip["open_clip_model"])
    return int(model_cfg.get("text_cfg", {}).get("context_length", 77))


def load_tokenizer(clip: Mapping[str, Any]) -> tuple[Any, str]:
    """open_clip's tokenizer of the architecture: ``(backend, source)``."""
    from focusclip.model.tokenizer import load_open_clip_tokenizer

    return load_open_clip_tokenizer(clip["open_clip_model"], clip.get("model_cfg")), clip["open_clip_model"]


def export_open_clip(model: Any, state: dict[str, torch.Tensor], out: Path, tokenizer: Any = None) -> None:
    """open_clip's own folder: ``OUT/open_clip_model.safetensors`` + ``OUT/open_clip_config.json``."""
    from safetensors.torch import save_file

    from focusclip.io import atomic_save, atomic_write_json
    from focusclip.save_format import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS

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


def describe(clip: Mapping[str, Any]) -> str:
    return f"open_clip={clip['open_clip_model']}" + (f"/{clip['pretrained']}" if clip.get("pretrained") else "")


OPEN_CLIP = register_clip_family("open_clip_model", ClipFamily(
    build_open_clip_towers, ("open_clip_model", "pretrained", "model_cfg", "preprocess_cfg"),
    context_length=context_length, tokenizer=load_tokenizer, export_format="open_clip", export=export_open_clip,
    describe=describe, exported="open_clip checkpoint in {out}: open_clip.create_model_and_transforms('local-dir:{out}')"))

"""Model registry, factories, tokenizers and the self-describing save format.

A saved model is one directory (file names: :mod:`focusclip.save_format`)::

    config.json         {"format": "focusclip", "version": <the focusclip that wrote it>, "model": <model config>,
                         "sources": <where the towers' weights came from>, "training": ..., ...}
    model.safetensors   the state dict (no pickle)
    tokenizer/          the tokenizer files
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.io import atomic_save, atomic_write_json, parse_json, read_json
from focusclip.mappings import deep_merge, did_you_mean, unknown_keys
from focusclip.model.focus import FOCUS_MODES, ROI_KEYS, focus_options, merge_roi
from focusclip.model.focusclip import FocusCLIP, load_state_strict
from focusclip.model.long_text import STRETCH_POSITIONS
from focusclip.model.names import clip_config, clip_folder_kind, is_clip_name, is_hub_name
from focusclip.model.tokenizer import (
    OPEN_CLIP_CONFIG,
    HFBackend,
    OpenCLIPBackend,
    Tokenizer,
    load_hf_tokenizer,
    load_open_clip_tokenizer,
)
from focusclip.model.towers import (
    TEXT_FAMILIES,
    TEXT_KEYS,
    VISION_FAMILIES,
    VISION_KEYS,
    WeightsNotFoundError,
    clip_family,
    package_path,
    tower_family,
)
from focusclip.model.transforms import SampleTransform, eval_transform, transforms_for
from focusclip.save_format import CONFIG_FILE, FORMAT_NAME, TOKENIZER_DIR, WEIGHTS_FILE
from focusclip.versioning import newer_version_note, upgrade_hint

logger = logging.getLogger(__name__)



class ModelRegistry:
    """Named model configs: the JSON files shipped in ``focusclip/model_configs`` plus user additions."""

    def __init__(self) -> None:
        self._configs: dict[str, dict[str, Any]] = {}
        for entry in resources.files("focusclip.model").joinpath("model_configs").iterdir():
            if entry.name.endswith(".json"):
                self._configs[entry.name[:-5]] = parse_json(entry.read_text(encoding="utf-8"), str(entry))

    def names(self) -> list[str]:
        return sorted(self._configs)

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._configs:
            raise UsageError(f"unknown model {name!r}.{did_you_mean(name, self.names())} Registered: "
                             f"{', '.join(self.names())}; or a saved model directory, or a CLIP name "
                             "(openclip:ARCH/TAG, openclip:ARCH@FILE, hfclip:HUB_ID_OR_FOLDER)")
        return copy.deepcopy(self._configs[name])

    def add(self, path: str | Path) -> list[str]:
        """Register a config JSON file, or every ``*.json`` in a folder. The file stem is the name."""
        path = Path(path)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        added = []
        for f in files:
            cfg = read_json(f, "model config")
            _check_config(cfg, str(f))
            self._configs[f.stem] = cfg
            added.append(f.stem)
        return added


_REGISTRY = ModelRegistry()  # the one process-wide registry; add_model_config extends it
#: the registered model of the offline default towers (EfficientNet-Lite0 + MiniLM, packaged weights): what
#: ``focusclip demo`` trains, and the page's model when it finds no trained one
OFFLINE_DEFAULT_MODEL = "focusclip-lite0-minilm"


def list_models() -> list[str]:
    """Names of the registered model configs."""
    return _REGISTRY.names()


def get_model_config(name: str) -> dict[str, Any]:
    """A copy of a registered model config."""
    return _REGISTRY.get(name)


def add_model_config(path: str | Path) -> list[str]:
    """Register model config JSON files (a file or a folder); returns the names added."""
    return _REGISTRY.add(path)


#: top-level keys of a model config
CONFIG_KEYS = ("name", "description", "embed_dim", "default_pretrained", "vision", "text", "roi", "proj_bias",
               "logit_scale_init")


def _check_config(cfg: dict[str, Any], where: str) -> None:
    """Every key of a model config is known (errors suggest the closest one) and the tower families exist;
    the towers and the focus mechanism check their own values when they are built."""
    if not isinstance(cfg, dict):
        raise UsageError(f"{where}: a model config must be a JSON object")
    clip = "clip" in cfg  # a whole CLIP: towers, embed_dim and image size come from the checkpoint
    for key in () if clip else ("embed_dim", "vision", "text"):
        if key not in cfg:
            raise UsageError(f"{where}: model config is missing {key!r} (or give a 'clip' section)")
    problems = [unknown_keys(cfg, (*CONFIG_KEYS, "clip") if clip else CONFIG_KEYS, where)]
    if clip:
        try:
            family = clip_family(cfg["clip"])
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
        problems.append(unknown_keys(cfg["clip"], family.config_keys, f"{where} clip"))
        for section, common in (("vision", VISION_KEYS), ("text", TEXT_KEYS)):
            if not isinstance(cfg.get(section, {}), dict):
                raise UsageError(f"{where}: '{section}' must be an object")
            problems.append(unknown_keys(cfg.get(section, {}), common, f"{where} {section}"))
    else:
        for section, families, common in (("vision", VISION_FAMILIES, VISION_KEYS),
                                          ("text", TEXT_FAMILIES, TEXT_KEYS)):
            try:
                family = tower_family(cfg[section], families, section)
            except ValueError as e:
                raise UsageError(f"{where}: {e}") from None
            problems.append(unknown_keys(cfg[section], (*common, *family.config_keys), f"{where} {section}"))
    roi = cfg.get("roi") or {}
    if not isinstance(roi, dict):
        raise UsageError(f"{where}: 'roi' must be an object")
    mode = roi.get("mode", "highlight")
    if mode not in FOCUS_MODES:
        raise UsageError(f"{where} roi: unknown focus mode {mode!r}.{did_you_mean(str(mode), FOCUS_MODES)} "
                         f"Known: {', '.join(FOCUS_MODES)}")
    problems.append(unknown_keys(roi, (*ROI_KEYS, *focus_options(mode)), f"{where} roi (mode {mode!r})"))
    problems = [p for p in problems if p]
    if problems:
        raise UsageError("; ".join(problems))
    if clip:
        return
    if "image_size" not in cfg["vision"]:
        raise UsageError(f"{where}: 'vision' needs 'image_size'")
    for key, value in (("embed_dim", cfg["embed_dim"]), ("vision.image_size", cfg["vision"]["image_size"])):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{where}: {key} must be a positive integer, got {value!r}")


def _resolve_config(model: str | dict[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(model, dict):
        _check_config(model, "model config")
        return copy.deepcopy(model), model.get("name", "custom")
    path = _hub_folder(model)
    if path.is_dir() and (path / CONFIG_FILE).exists() and clip_folder_kind(path) is None:
        config = _read_saved_config(path)["model"]
        _check_config(config, str(path / CONFIG_FILE))
        return config, str(path)
    if is_clip_name(model):
        return clip_config(model), model
    return _REGISTRY.get(model), model


# ------------------------------------------------------------------------------ create
def create_model(model_name: str | dict[str, Any], pretrained: str | bool | None = None,
                 device: str | torch.device | None = None, vision_weights: str | None = None,
                 text_weights: str | None = None, **overrides: Any) -> FocusCLIP:
    """Build a model from a registered name, a CLIP name (``openclip:ARCH/TAG``, ``hfclip:ID``, ... see
    :mod:`focusclip.model.names`), a config dict or a saved model directory.

    ``pretrained``:
      - ``None``: the config's ``default_pretrained`` ("towers" for the offline default, the paper's
        architecture and CLIP checkpoints, "none" for the tiny models);
      - ``"towers"``: each tower's configured weights (``vision.weights`` / ``text.weights``, overridable
        with ``vision_weights`` / ``text_weights``: a local file or folder, ``"hub"`` or a package); for
        a whole CLIP, its checkpoint (``clip.pretrained``);
      - ``"none"`` or ``False``: random initialisation;
      - a saved model directory (also ``hf-hub:ORG/NAME[@REVISION]``) or ``.safetensors`` file: the whole
        model, loaded strictly.

    ``overrides`` are merged into the config (nested dicts merge), e.g. ``roi={"shared": False}`` or
    ``clip={"pretrained": "/path/to/checkpoint.safetensors"}``.

    Args:
        model_name: a registered name (:func:`list_models`), a CLIP name, a model config dict or a saved
            model directory.
        pretrained: which weights to load (the list above).
        device: where to put the model (default: where it was built, the CPU).
        vision_weights, text_weights: with ``pretrained="towers"``, replace a tower's configured weights.
        **overrides: merged into the config (above).

    Returns:
        The :class:`FocusCLIP` model, in training mode (``model.config`` is its resolved config).

    Raises:
        UsageError: an unknown name or config key (the message suggests the closest one);
        MissingInput: ``pretrained`` names weights that do not exist.

    Example::

        model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention"})
        features = model.encode_image(torch.rand(2, 3, 64, 64), normalize=True)  # (2, 64)
    """
    config, name = _resolve_config(model_name)
    if overrides:
        roi = merge_roi(config.get("roi"), overrides.get("roi")) if "roi" in overrides else None
        config = deep_merge(config, overrides)
        if roi is not None:
            config["roi"] = roi
        _check_config(config, f"model {name} with overrides {sorted(overrides)}")
    config.setdefault("name", name)
    config.setdefault("vision", {})  # a whole CLIP's registered config may leave its tower sections out
    config.setdefault("text", {})
    if pretrained is None:
        pretrained = config.get("default_pretrained", "none")
    if pretrained is False:
        pretrained = "none"
    whole_clip = bool(config.get("clip"))
    if whole_clip and (vision_weights or text_weights):
        raise UsageError(f"model {name}: a whole CLIP takes its weights from one checkpoint; give "
                         "clip={'pretrained': ...} instead of vision_weights / text_weights")
    full_weights = None
    clip_weights = None
    if pretrained == "towers":
        vw = vision_weights if vision_weights is not None else config["vision"].get("weights")
        tw = text_weights if text_weights is not None else config["text"].get("weights")
        clip_weights = config["clip"].get("pretrained") if whole_clip else None
    elif pretrained == "none":
        vw, tw = vision_weights, text_weights
    else:
        full_weights = _hub_folder(pretrained)
        if full_weights.is_dir():
            full_weights = full_weights / WEIGHTS_FILE
        if not full_weights.exists():
            raise MissingInput(f"pretrained weights not found: {pretrained} (expected a model directory "
                               "with model.safetensors, a .safetensors file, 'towers' or 'none')")
        vw = tw = None
    model = FocusCLIP(config, vision_weights=vw, text_weights=tw, clip_weights=clip_weights)
    # Record the normalisation the vision tower was trained with, so saved models are self-describing.
    model.config["vision"].setdefault("mean", list(model.visual.mean))
    model.config["vision"].setdefault("std", list(model.visual.std))
    if full_weights is not None:
        load_weights(model, full_weights)
    if device is not None:
        model.to(device)
    return model


def create_model_and_transforms(model_name: str | dict[str, Any], pretrained: str | bool | None = None,
                                device: str | torch.device | None = None,
                                augment: dict[str, Any] | None = None,
                                **kwargs: Any) -> tuple[FocusCLIP, SampleTransform, SampleTransform]:
    """A model and the image transforms that go with it.

    Args:
        model_name, pretrained, device, **kwargs: as :func:`create_model`.
        augment: ``scale``, ``ratio``, ``color_jitter``: random crops / jitter in the training transform;
            the default, like the paper, only resizes.

    Returns:
        ``(model, train_transform, eval_transform)``: :class:`SampleTransform` objects that normalise with
        the vision tower's mean / std (``tf(pil_image) -> Tensor[3, S, S]``; ``tf.apply(image, heatmap=...,
        keypoints=...)`` moves ROI geometry with the image).

    Example::

        model, _, preprocess = focusclip.create_model_and_transforms("focusclip-tiny")
        x = preprocess(PIL.Image.open("photo.jpg")).unsqueeze(0)
    """
    model = create_model(model_name, pretrained=pretrained, device=device, **kwargs)
    train_tf, eval_tf = transforms_for(model.config, model.image_mean, model.image_std, augment)
    return model, train_tf, eval_tf


def get_tokenizer(model_name: str | dict[str, Any], context_length: int | None = None,
                  pad_to_max: bool = False, long_text: str | None = None) -> Tokenizer:
    """The tokenizer of a registered model, a CLIP name, a config dict or a saved model directory.

    ``long_text`` (default: the config's ``text.long_text``, else ``truncate``) selects the long-text
    strategy (:mod:`focusclip.model.long_text`); a whole CLIP's context length is its text tower's
    positions (77; 248 with ``stretch``)."""
    path = _hub_folder(model_name) if isinstance(model_name, str) else None
    if path is not None and (path / TOKENIZER_DIR).is_dir():
        config = _read_saved_config(path)["model"]
        backend = _load_saved_tokenizer(path / TOKENIZER_DIR)
        source = str(path / TOKENIZER_DIR)
    else:
        config, _ = _resolve_config(model_name)
        backend, source = _tokenizer_from_config(config)
    text_cfg = config.get("text") or {}
    strategy = long_text or text_cfg.get("long_text", "truncate")
    length = int(context_length or text_cfg.get("context_length") or _clip_context_length(config, strategy))
    if config.get("clip"):
        limit = _clip_context_length(config, strategy)
        if length > limit:
            raise UsageError(f"context_length={length}: the CLIP text tower holds {limit} positions with "
                             f"long_text={strategy!r}; use long_text 'stretch' (248) or 'sentences'")
    return Tokenizer(backend, length, pad_to_max=pad_to_max, source=source, long_text=strategy)


def _clip_context_length(config: dict[str, Any], strategy: str) -> int:
    """Positions of a whole CLIP's text tower (from the checkpoint's config; Long-CLIP's 248 with stretch)."""
    if strategy == "stretch":
        return int(config.get("text", {}).get("context_length") or STRETCH_POSITIONS)
    if config.get("text", {}).get("context_length"):
        return int(config["text"]["context_length"])
    clip = config.get("clip") or {}
    return clip_family(clip).context_length(clip) if clip else 77


def _tokenizer_from_config(config: dict[str, Any]) -> tuple[HFBackend | OpenCLIPBackend, str]:
    clip = config.get("clip") or {}
    if clip:
        return clip_family(clip).tokenizer(clip)
    text_cfg = config["text"]
    candidates = [text_cfg.get("tokenizer") or text_cfg.get("hf_model_name")]
    if text_cfg.get("tokenizer_fallback"):
        candidates.append(text_cfg["tokenizer_fallback"])
    errors = []
    for cand in candidates:
        location = str(package_path(cand)) if cand.startswith("package:") else cand
        try:
            hf = load_hf_tokenizer(location)
        except (OSError, ValueError) as e:
            errors.append(f"{cand}: {e}")
            continue
        if cand != candidates[0]:
            logger.warning("tokenizer %r not available offline; using %r (same uncased WordPiece vocabulary)",
                        candidates[0], cand)
        return HFBackend(hf), cand
    raise WeightsNotFoundError("no tokenizer could be loaded: " + "; ".join(errors))


def _load_saved_tokenizer(folder: Path) -> HFBackend | OpenCLIPBackend:
    if (folder / OPEN_CLIP_CONFIG).is_file():
        return load_open_clip_tokenizer(f"local-dir:{folder}")
    return HFBackend(load_hf_tokenizer(str(folder)))


# ------------------------------------------------------------------------------ save / load
def save_model(model: FocusCLIP, path: str | Path, tokenizer: Tokenizer | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and its tokenizer) as a self-describing directory; returns the path."""
    from safetensors.torch import save_file

    from focusclip import __version__

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    # where the towers' weights came from (the model card names them; the config below drops them)
    sources = {"vision": config.get("vision", {}).get("weights"), "text": config.get("text", {}).get("weights"),
               "clip": (config.get("clip") or {}).get("pretrained")}
    sources = {k: Path(v).name if Path(v).exists() else v  # a local file by its name only
               for k, v in sources.items() if isinstance(v, str) and v}
    # The weights are in the state dict: rebuild the towers from architecture alone when loading.
    for section, tower in (("vision", model.visual), ("text", model.text)):
        config[section]["weights"] = None
        config[section].update(tower.rebuild_config())
    if config.get("clip"):
        config["clip"]["pretrained"] = None
        config["clip"].update(copy.deepcopy(model.clip_rebuild))
    config["default_pretrained"] = "none"
    if tokenizer is None:
        tokenizer = get_tokenizer(model.config)
    tokenizer.save(path / TOKENIZER_DIR)
    config["text"]["context_length"] = tokenizer.context_length
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save(path / WEIGHTS_FILE, lambda f: save_file(state, f, metadata={"format": "pt"}))
    atomic_write_json(path / CONFIG_FILE, {"format": FORMAT_NAME, "version": __version__, "model": config,
                                           **({"sources": sources} if sources else {}), **(extra or {})})
    return path


def _read_saved_config(path: Path) -> dict[str, Any]:
    if path.is_file():
        raise InputError(f"{path} is a file; a saved model is a directory with {CONFIG_FILE} and {WEIGHTS_FILE}")
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        raise MissingInput(f"{path}: not a focusclip model directory (no {CONFIG_FILE})")
    saved = read_json(cfg_file, "model config")
    if not isinstance(saved, dict) or saved.get("format") != FORMAT_NAME or "model" not in saved:
        raise InputError(f"{cfg_file}: not a focusclip model config (expected format 'focusclip')")
    return saved


def load_weights(model: FocusCLIP, weights_file: str | Path) -> None:
    """Load a safetensors state dict strictly; the error lists missing and unexpected keys."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_file))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for damaged files
        raise InputError(f"{weights_file}: damaged or incomplete weights file ({e}); export or copy the model "
                         "again") from None
    load_state_strict(model, state, str(weights_file))


def load_model(path: str | Path, device: str | torch.device | None = None) -> FocusCLIP:
    """Load a model saved with :func:`save_model` (strict), in eval mode: a folder, or a saved model on the
    Hugging Face Hub (``hf-hub:ORG/NAME[@REVISION]``, downloaded once into the Hub's cache).

    A model written by a newer focusclip loads with a warning naming both versions; if it cannot be loaded
    the error names them too (:mod:`focusclip.versioning`).

    Args:
        path: the saved model directory (``config.json``, ``model.safetensors``, ``tokenizer/``) or
            ``hf-hub:ORG/NAME[@REVISION]``.
        device: where to put the model (default: the CPU).

    Returns:
        The :class:`FocusCLIP` model in eval mode, its weights loaded strictly (a missing or unexpected key
        is an error; renamed keys of older saves are upgraded).

    Example::

        model = focusclip.load_model("runs/demo/model-final")
        tokenizer = focusclip.get_tokenizer("runs/demo/model-final")
    """
    path = _hub_folder(path)
    saved = _read_saved_config(path)
    note = newer_version_note(saved.get("version"))
    if note:
        logger.warning("%s: %s; it loads if it uses nothing this version lacks (%s)", path, note,
                       upgrade_hint(saved.get("version")))
    try:
        model = create_model(saved["model"], pretrained=path, device=device)
    except (UsageError, InputError) as e:
        if not note:
            raise
        message = f"{e} (the model was {note}; {upgrade_hint(saved.get('version'))})"
        try:
            error = type(e)(message)
        except TypeError:  # an error type with another constructor
            error = InputError(message)
        raise error from e
    return model.eval()


def _hub_folder(spec: str | Path) -> Path:
    """The local folder of a saved model: ``spec`` itself, or a Hub name's download in the Hub cache."""
    if is_hub_name(spec):
        from focusclip.hub import download_model

        return download_model(str(spec))
    return Path(spec)


@dataclass
class LoadedModel:
    """What ``--model`` names, ready to use: the model (eval mode), its tokenizer and evaluation
    transform, a display name, whether it was trained by focusclip, and its saved training info."""

    model: FocusCLIP
    tokenizer: Tokenizer
    transform: SampleTransform
    name: str
    trained: bool
    training: dict[str, Any]


def load_model_spec(spec: str | Path, device: str | torch.device | None = None) -> LoadedModel:
    """What ``--model`` accepts in every command: a saved model directory, a CLIP name
    (``openclip:ViT-B-16/openai``, ``hfclip:...``, a CLIP folder: an untouched CLIP, ready to use), a saved
    model on the Hugging Face Hub (``hf-hub:ORG/NAME[@REVISION]``) or a registered model name (its
    configured weights; a warning says when those are not trained ones)."""
    path = _hub_folder(spec)
    display = str(spec) if is_hub_name(spec) else path.name
    if (path.is_dir() or path.is_file()) and clip_folder_kind(path) is None:
        saved = _read_saved_config(path)
        model = load_model(path, device=device)
        return LoadedModel(model, get_tokenizer(str(path)), eval_transform(model), display, True,
                           dict(saved.get("training") or {}))
    name = str(path) if is_hub_name(spec) else str(spec)  # a Hub repository may hold a plain CLIP folder
    if is_clip_name(name) or name in list_models():
        config, _ = _resolve_config(name)
        if not (config.get("clip") or {}).get("pretrained"):
            logger.warning("model %s is a registered config, not a trained model: its towers are as configured "
                           "(random or pretrained), not FocusCLIP- or CLIP-trained", name)
        model, _, eval_tf = create_model_and_transforms(name, device=device)
        return LoadedModel(model.eval(), get_tokenizer(name), eval_tf, name, False, {})
    raise MissingInput(f"model {name}: neither a saved model directory, a CLIP name (openclip:ARCH/TAG, "
                       f"openclip:ARCH@FILE, hfclip:ID_OR_FOLDER), a Hub name (hf-hub:ORG/NAME) nor a registered "
                       f"model name."
                       f"{did_you_mean(name, list_models())} Registered: {', '.join(list_models())}")

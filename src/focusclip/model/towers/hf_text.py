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


#: the smallest fraction of a batch's token positions grouping must save to be used (one more encoder
#: call per group is not free)
MIN_GROUP_SAVING = 0.1


def length_groups(attention_mask: torch.Tensor, max_groups: int,
                  min_saving: float = MIN_GROUP_SAVING) -> list[tuple[torch.Tensor, int]] | None:
    """Rows of a (B, T) padded batch in groups of similar length: ``[(row indices, end), ...]`` where each
    group's rows need only the first ``end`` positions; None when grouping would save less than
    ``min_saving`` of the batch's B x T positions (then the batch is encoded in one piece).

    A row's end is one past its last real (mask != 0) position, so right padding is cut and anything else
    (left padding, holes) is kept whole. Rows are sorted by end (longest first) and split into 1 to
    ``max_groups`` groups of equal count (at least 4 rows each); the split with the fewest positions wins.
    """
    b, t = attention_mask.shape
    if b == 0 or t == 0:
        return None
    positions = torch.arange(1, t + 1, device=attention_mask.device)
    ends = (attention_mask.ne(0) * positions).amax(1).clamp_min(1)
    order = torch.argsort(ends, descending=True, stable=True)
    sorted_ends = ends[order].tolist()
    best, best_cost = None, b * t
    for k in range(1, max(1, min(max_groups, b // 4)) + 1):
        bounds = [round(i * b / k) for i in range(k + 1)]
        cost = sum((hi - lo) * sorted_ends[lo] for lo, hi in zip(bounds[:-1], bounds[1:]))
        if cost < best_cost:
            best, best_cost = bounds, cost
    if best is None or best_cost > (1.0 - min_saving) * b * t:
        return None
    return [(order[lo:hi], int(sorted_ends[lo])) for lo, hi in zip(best[:-1], best[1:])]


def _compiling() -> bool:
    """Inside ``torch.compile`` (groups are data-dependent: a compiled or traced graph takes the batch whole)."""
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling and is_compiling())


class HFTextTower(nn.Module):
    """A Hugging Face encoder pooled into one vector per text.

    ``weights_hint`` names the configured weights when ``weights`` is None, so a random-init tower can
    still take its architecture from a packaged model offline.

    ``pooling="mean"`` averages the last hidden states over real tokens only (padding is masked out);
    ``"cls"`` takes the first token.

    On the CPU a padded batch is encoded in up to :attr:`length_groups` groups of captions of similar
    length, each cut to its own longest caption (:func:`length_groups`): the padding positions cost
    as much as real tokens in every layer and are otherwise thrown away. The features are the same (the
    padding is masked out of attention and pooling either way) up to float rounding. ``length_groups
    = 1`` encodes the batch in one piece. On GPUs, and when traced or compiled, the batch is always
    encoded in one piece (not measured on GPUs: smaller matrix products and more kernel launches may cost
    more than the padding).
    """

    #: most groups a CPU batch is split into (1: never split); see :func:`length_groups`
    length_groups: int = 4

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
        eager_cpu = input_ids.device.type == "cpu" and not torch.jit.is_tracing() and not _compiling()
        groups = length_groups(attention_mask, self.length_groups if eager_cpu else 1)
        if groups is None:
            return self._pool(input_ids, attention_mask)
        parts = [self._pool(input_ids[rows, :end], attention_mask[rows, :end]) for rows, end in groups]
        order = torch.cat([rows for rows, _ in groups])
        return torch.cat(parts)[torch.argsort(order)]

    def _pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
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

"""Frozen towers: run in eval mode, and run once per distinct input.

A tower whose parameters are all frozen (``model.lock_text`` / ``lock_image`` with no unlocked layers) is a
fixed function of its input: during training it runs in eval mode (no dropout, batch-norm running
statistics not updated), so its output for a caption or an image never changes. :class:`TowerCache`
then computes that output (the tower's pooled features, before the projection, which may train) once
per distinct input and serves it from memory afterwards; the step skips the tower for every input it
has seen. Inputs are keyed by their exact values (token ids and attention mask without padding; image
pixels), so a changed tokenizer or transform can never hit a stale entry. An input that needs a gradient
(e.g. an image focused by a trainable mixing scalar) always runs the tower.

With ``model.cache_dir`` the entries of a run are also kept on disk, one file per tower, named by a
fingerprint of the tower's weights (and of the precision the features were computed in).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.io import atomic_save

logger = logging.getLogger(__name__)

TOWERS = ("text", "visual")


def is_frozen(module: nn.Module) -> bool:
    """Every parameter of ``module`` is frozen (and it has some)."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def frozen_towers(model: nn.Module) -> list[str]:
    """Names of ``model``'s towers (``text``, ``visual``) whose parameters are all frozen."""
    return [name for name in TOWERS if isinstance(getattr(model, name, None), nn.Module)
            and is_frozen(getattr(model, name))]


def set_train_mode(model: nn.Module) -> None:
    """``model.train()``, then every fully frozen tower back in eval mode (see the module docstring)."""
    model.train()
    for name in frozen_towers(model):
        getattr(model, name).eval()


def weights_fingerprint(module: nn.Module, extra: str = "") -> str:
    """A short hash of ``module``'s parameters and buffers (names, shapes, values) and ``extra``."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{type(module).__qualname__}|{extra}".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _row_key(*parts: torch.Tensor) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(str(tuple(p.shape)).encode())
        h.update(p.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


def _text_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *_: Any) -> list[bytes]:
    if attention_mask is None:
        return [_row_key(row) for row in input_ids]
    lengths = attention_mask.sum(-1).tolist()
    # right padding (the tokenizers here): a caption's key is its ids and mask up to its length
    return [_row_key(ids[:n], m[:n]) for ids, m, n in zip(input_ids, attention_mask, lengths, strict=True)]


class TowerCache:
    """The pooled output of one frozen tower per distinct input (see the module docstring).

    ``install()`` routes the tower's ``forward`` through the cache (the tower's weights and state-dict
    keys are untouched); ``remove()`` restores it. ``hits`` / ``misses`` count inputs.
    """

    def __init__(self, tower: nn.Module, kind: str, path: Path | None = None):
        if kind not in ("text", "image"):
            raise ValueError(f"kind must be text or image, got {kind!r}")
        self.tower, self.kind, self.path = tower, kind, path
        self.entries: dict[bytes, torch.Tensor] = {}
        self.hits = self.misses = 0
        self._forward: Callable[..., torch.Tensor] | None = None
        self._loaded = 0
        if path is not None and path.is_file():
            self.entries = torch.load(path, map_location="cpu", weights_only=True)
            self._loaded = len(self.entries)
            logger.info("frozen %s tower: %d cached outputs from %s", kind, self._loaded, path)

    def install(self) -> TowerCache:
        if self._forward is None:
            self._forward = self.tower.forward
            self.tower.forward = self._cached_forward  # type: ignore[method-assign]
        return self

    def remove(self) -> None:
        if self._forward is not None:
            del self.tower.forward  # the instance attribute: the class's forward again
            self._forward = None

    def save(self) -> None:
        """Write the entries to ``path`` (when there is one and something new was computed)."""
        if self.path is None or len(self.entries) == self._loaded:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(self.path, lambda f: torch.save(self.entries, f))
        self._loaded = len(self.entries)
        logger.info("frozen %s tower: %d cached outputs saved to %s", self.kind, len(self.entries), self.path)

    def _cached_forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        assert self._forward is not None
        if self.tower.training or torch.is_grad_enabled() and x.requires_grad:
            return self._forward(x, *args)  # not a fixed function of its input here
        keys = _text_keys(x, *args) if self.kind == "text" else [_row_key(row) for row in x]
        missing = [i for i, k in enumerate(keys) if k not in self.entries]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            idx = torch.tensor(missing, device=x.device)
            with torch.no_grad():
                out = self._forward(x.index_select(0, idx),
                                    *(None if a is None else a.index_select(0, idx) for a in args))
            for i, row in zip(missing, out.detach(), strict=True):
                self.entries.setdefault(keys[i], row.to("cpu", copy=True))
        return torch.stack([self.entries[k] for k in keys]).to(x.device)


def install_tower_caches(model: nn.Module, augment: bool, cache_dir: str | Path | None = None,
                         extra: str = "") -> list[TowerCache]:
    """Caches for ``model``'s frozen towers: the text tower always, the vision tower only without image
    augmentation (``augment``: the training images change every epoch). ``extra`` goes into the disk
    cache's fingerprint (e.g. the precision)."""
    caches = []
    for name in frozen_towers(model):
        if name == "visual" and augment:
            continue
        tower = getattr(model, name)
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"{name}-{weights_fingerprint(tower, extra)}.pt"
        caches.append(TowerCache(tower, "text" if name == "text" else "image", path).install())
        logger.info("frozen %s tower: its output is computed once per distinct input", name)
    return caches

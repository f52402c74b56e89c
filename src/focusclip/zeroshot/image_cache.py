"""Evaluation images decoded once per run.

:class:`EvalImageCache` keeps each evaluation image as uint8 pixels at the model's input size (what
:meth:`SampleTransform.pixels` gives, before normalisation), keyed by the transform's
:attr:`~focusclip.model.transforms.SampleTransform.pixel_key` and the sample (file, crop box, frame), in
memory up to ``max_bytes``. Tasks on the same images (the synthetic activity / age / expression tasks),
repeated evaluations during training and several models with the same input size all share one decode;
a cached pass costs only normalisation and the forward pass. Once the cap is reached, further images
are decoded every time (nothing is evicted).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch

from focusclip.zeroshot.datasets.common import Sample
from focusclip.zeroshot.images import open_sample

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30  #: 1 GiB: about 21,000 images at 224 px, 65,000 at 128 px


def sample_key(sample: Sample) -> Hashable:
    """What identifies a sample's pixels: its file (or a hash of its in-memory pixels), box and frame."""
    src = sample.source
    if isinstance(src, np.ndarray):
        where = "array:" + hashlib.blake2b(np.ascontiguousarray(src).tobytes(), digest_size=16).hexdigest()
    else:
        where = str(src)
    return where, sample.box, sample.frame


class EvalImageCache:
    """uint8 evaluation images in memory within ``max_bytes`` (see the module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._items: dict[Hashable, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> torch.Tensor:
        return self._items[key]

    def put(self, key: Hashable, pixels: torch.Tensor) -> bool:
        """Keep ``pixels`` (uint8) unless the cap would be passed; returns whether it was kept."""
        size = pixels.numel() * pixels.element_size()
        if key in self._items or self.nbytes + size > self.max_bytes:
            return key in self._items
        self._items[key] = pixels.contiguous()
        self.nbytes += size
        return True


class SamplePixels(torch.utils.data.Dataset):
    """``samples[i]`` opened and resized: ``(uint8 Tensor[3, S, S], index[i])`` (runs in loader workers)."""

    def __init__(self, samples: Sequence[Sample], index: Sequence[int], pixels: Callable):
        self.samples, self.index, self.pixels = samples, list(index), pixels

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = self.index[i]
        return self.pixels(open_sample(self.samples[j])), j


def cached_batches(cache: EvalImageCache, transform: object, samples: Sequence[Sample], batch_size: int,
                   workers: int, pin_memory: bool = False):
    """Yield ``(normalised images, sample indices)`` for every sample: first those not cached yet
    (decoded through a DataLoader, then kept), then the cached ones straight from memory."""
    tkey = transform.pixel_key  # type: ignore[attr-defined]
    keys = [(tkey, sample_key(s)) for s in samples]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    cache.misses += len(missing)
    cache.hits += len(samples) - len(missing)
    normalize = transform.normalize  # type: ignore[attr-defined]
    if missing:
        loader = torch.utils.data.DataLoader(
            SamplePixels(samples, missing, transform.pixels), batch_size=batch_size,  # type: ignore[attr-defined]
            num_workers=workers, shuffle=False, pin_memory=pin_memory, persistent_workers=False)
        for pixels, idx in loader:
            for p, j in zip(pixels, idx.tolist(), strict=True):
                cache.put(keys[j], p.clone())
            yield normalize(pixels), idx
    done = set(missing)
    ready = [i for i in range(len(samples)) if i not in done]
    for start in range(0, len(ready), batch_size):
        idx = ready[start:start + batch_size]
        yield normalize(torch.stack([cache.get(keys[i]) for i in idx])), torch.tensor(idx)

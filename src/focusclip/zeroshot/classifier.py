"""The zero-shot classifier builder: class prompts -> one normalised text embedding per class.

Shared by the benchmark evaluation (:mod:`focusclip.zeroshot.evaluate`) and prediction
(:class:`focusclip.predict.ZeroShotClassifier`), as open_clip keeps its classifier builder apart from its
training-time evaluation. A class with several prompts (templates, an ensemble) gets the normalised mean
of its prompts' normalised embeddings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from focusclip.errors import UsageError
from focusclip.model.tokenizer import truncation_summary
from focusclip.runtime import autocast, to_device

logger = logging.getLogger(__name__)

TEXT_CHUNK = 256  #: prompts encoded per forward pass


def encode_images(model: Any, images: torch.Tensor, heatmaps: torch.Tensor | None = None,
                  has_heatmap: torch.Tensor | None = None, focus: str | None = None) -> torch.Tensor:
    """(B, D) normalised image features; with ``heatmaps`` (B, 1, H, W) and a model that focuses at
    inference (``model.focus_at_inference``), the rows marked in ``has_heatmap`` (B,) bool (all rows when
    None) are focused on their heatmap and the others plain. Other models ignore the heatmaps.
    ``focus`` (an inference focus mode, docs/focus.md) focuses any model that way instead."""
    if heatmaps is not None and focus is not None:
        if has_heatmap is not None:  # rows without a heatmap: an empty one, which stays plain
            heatmaps = heatmaps * has_heatmap.to(heatmaps.device, heatmaps.dtype).view(-1, *[1] * (heatmaps.dim() - 1))
        return model.encode_image(images, heatmap=heatmaps, normalize=True, focus=focus)
    if heatmaps is None or not getattr(model, "focus_at_inference", False):
        return model.encode_image(images, normalize=True)
    has = torch.ones(len(images), dtype=torch.bool) if has_heatmap is None else has_heatmap.to(torch.bool).cpu()
    if bool(has.all()):
        return model.encode_image(images, heatmap=heatmaps, normalize=True)
    rows = has.to(images.device)
    out = model.encode_image(images, normalize=True)
    if bool(has.any()):
        out = out.clone()
        out[rows] = model.encode_image(images[rows], heatmap=heatmaps[rows], normalize=True).to(out.dtype)
    return out


@torch.inference_mode()
def build_zero_shot_classifier(model: Any, tokenizer: Callable, prompts: Sequence[Sequence[str]],
                               device: torch.device, chunk: int = TEXT_CHUNK) -> torch.Tensor:
    """(C, D) unit vectors from ``prompts[c]``, the prompts of class ``c`` (at least one each)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise UsageError("every class needs at least one prompt")
    flat = [p for ps in prompts for p in ps]
    before = getattr(tokenizer, "num_truncated", 0)
    owner = torch.tensor([c for c, ps in enumerate(prompts) for _ in ps], device=device)
    feats = []
    with autocast(device):
        for i in range(0, len(flat), chunk):
            tokens = to_device(tokenizer(flat[i:i + chunk]), device)
            feats.append(model.encode_text(tokens, normalize=True).float())
    feats = torch.cat(feats)
    note = truncation_summary(getattr(tokenizer, "num_truncated", 0) - before, len(flat),
                              getattr(tokenizer, "context_length", 0), "prompts")
    if note:
        logger.warning(note)
    summed = torch.zeros(len(prompts), feats.shape[1], device=device).index_add_(0, owner, feats)
    return torch.nn.functional.normalize(summed, dim=-1)

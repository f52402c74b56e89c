"""Focus at inference on any model: ``model.encode_image(image, heatmap=..., focus=MODE)``.

=============  ====================================================================  =====================
mode           what it does                                                           models
=============  ====================================================================  =====================
``attention``  FALIP-style bias on the ViT's attention logits (:mod:`.attention`):    every ViT tower; a
               the model's learned strengths when trained with ``roi.mode``           model trained with
               attention, else ``ATTENTION_STRENGTH`` in every block                  it uses its own
``alpha``      the trained alpha convolution (:mod:`.alpha`)                          trained with alpha
``pool``       the trained heatmap pooling (:mod:`.pool`)                             trained with pool
``crop``       the subject's box with a margin, resized (:mod:`.prompts`)             every model
``blur``       Gaussian blur outside the subject's box (FGVP)                         every model
``circle``     a red ellipse around the subject (Shtedritski et al.)                   every model
``dim``        ``I (a + H (1 - a))``: the paper's highlight, ``a = DIM_FACTOR`` (a     every model
               model trained with ``highlight`` uses its learned ``a``)
``auto``       the model's own mechanism (attention, alpha, pool; ``dim`` for a        every model
               highlight-trained model), else ``DEFAULT_VIT_FOCUS`` on a ViT tower
               and ``DEFAULT_FOCUS`` on any other
=============  ====================================================================  =====================

``DEFAULT_VIT_FOCUS`` is ``attention``: on ``focusclip ablate``'s crowd scenes (docs/focus.md, "Which focus
works best") it gave the untouched pretrained ViT the best answers about the subject of every mode, by more
than the seeds' spread (headline 62.5 against 59.6 for ``crop``, 56.3 for ``blur`` and 51.4 for the whole
image), and it leaves the pixels, so the context, alone. ``DEFAULT_FOCUS`` (a tower without attention
blocks) is ``blur``: of the training-free prompts, FGVP reports the best referring-expression numbers
(RefCOCO val 52.0 with ViT-B/32 + RN50x16, against 43.9 for the red circle, per its README); on our conv
model the image-space modes could not be told apart.

Rows whose heatmap marks nothing (all zeros, or not finite) get the plain features: a focused answer
is only ever one about something.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from focusclip.errors import UsageError
from focusclip.model.focus.attention import AttentionFocus
from focusclip.model.focus.layout import shared_embedding, vit_layout
from focusclip.model.focus.prompts import (
    IMAGE_PROMPTS,
    blur_inputs,
    circle_inputs,
    crop_inputs,
    dim_inputs,
    heatmap_boxes,
)

FOCUS_AT_INFERENCE = ("auto", "attention", "alpha", "pool", "crop", "blur", "circle", "dim")
#: Modes that need the model's own trained mechanism.
TRAINED_ONLY = ("alpha", "pool")
#: ``auto``'s choice for a model without a mechanism of its own: on a ViT tower, and on any other (module
#: docstring).
DEFAULT_VIT_FOCUS = "attention"
DEFAULT_FOCUS = "blur"
#: The attention bias's strength ``s`` in every block of a model not trained with ``roi.mode`` attention
#: (the bias is ``s log(f + (1 - f) h)``, ``f = ATTENTION_FLOOR``: background patches get about -4.6 s).
ATTENTION_STRENGTH = 1.0
ATTENTION_FLOOR = 0.01
#: A heatmap marks something when its peak is at least this.
MARK_LEVEL = 1e-3


def own_mode(model: Any) -> str | None:
    """The model's trained focus mechanism (``roi.mode`` of an enabled ROI branch), or None."""
    if not getattr(model, "roi_enabled", False):
        return None
    return str(getattr(model.focus, "mode", "")) or None


def focus_modes(model: Any) -> tuple[str, ...]:
    """The inference focus modes ``model`` can use (``auto`` first; image-space prompts always)."""
    mine = own_mode(model)
    out = ["auto"]
    if mine == "attention" or vit_layout(model.visual) is not None:
        out.append("attention")
    out += [m for m in TRAINED_ONLY if mine == m]
    return (*out, *IMAGE_PROMPTS)


def resolve_focus(model: Any, mode: str) -> str:
    """The concrete mode ``mode`` means for ``model`` (``auto`` resolved); a clear error for a mode the
    model cannot use."""
    if mode not in FOCUS_AT_INFERENCE:
        raise UsageError(f"unknown focus mode {mode!r}; known: {', '.join(FOCUS_AT_INFERENCE)}")
    mine = own_mode(model)
    if mode == "auto":
        if mine in ("attention", "alpha", "pool"):
            return mine
        if mine == "highlight":
            return "dim"
        return DEFAULT_VIT_FOCUS if vit_layout(model.visual) is not None else DEFAULT_FOCUS
    if mode in TRAINED_ONLY and mine != mode:
        raise UsageError(f"focus mode {mode!r} needs a model trained with roi.mode {mode} (this model's: "
                         f"{mine or 'no ROI branch'}); it can use: {', '.join(focus_modes(model))}")
    if mode == "attention" and mine != "attention" and vit_layout(model.visual) is None:
        raise UsageError(f"focus mode 'attention' needs a ViT vision tower; {type(model.visual).__name__} is not one; "
                         f"it can use: {', '.join(focus_modes(model))}")
    return mode


def marked_rows(heatmaps: torch.Tensor) -> torch.Tensor:
    """(R,) bool: rows whose heatmap is finite and peaks at or above ``MARK_LEVEL``."""
    flat = heatmaps.flatten(1).float()
    return torch.isfinite(flat).all(1) & (flat.nan_to_num(0.0).amax(1) >= MARK_LEVEL)


def _tower(model: Any, own: bool) -> tuple[Any, Any]:
    """(vision tower, projection): the ROI branch's when ``own`` and it has its own copy."""
    if own and not getattr(model, "roi_shared", True):
        return model.roi_visual, model.roi_visual_proj
    return model.visual, model.visual_proj


def _attention(model: Any) -> AttentionFocus:
    """The attention mechanism to use: the model's trained one, else a fresh one at the default strength."""
    if own_mode(model) == "attention":
        return model.focus
    focus = AttentionFocus(model.visual, last_blocks=0, strength_init=ATTENTION_STRENGTH, floor=ATTENTION_FLOOR)
    return focus.to(next(model.visual.parameters()).device)


def focused_features(model: Any, images: torch.Tensor, heatmaps: torch.Tensor, mode: str,
                     owner: torch.Tensor | None = None, boxes: torch.Tensor | None = None,
                     normalize: bool = False) -> torch.Tensor:
    """(R, D) features of R subjects, each focused by ``mode`` on its heatmap (R, 1, S, S).

    ``images`` (P, 3, S, S) are the normalised inputs of P photos and ``owner`` (R,) the photo of each
    subject (default: one subject per image); ``boxes`` (R, 4) the subjects' boxes in input pixels for
    ``crop`` / ``blur`` / ``circle`` (default: from the heatmaps, :func:`.prompts.heatmap_boxes`). Work
    done once per photo is shared by its subjects (the blurred copy). Rows marking nothing get the plain
    features of their photo."""
    mode = resolve_focus(model, mode)
    if heatmaps.dim() == 3:
        heatmaps = heatmaps[:, None]
    owner = torch.arange(len(images)) if owner is None else owner.to(torch.long).cpu()
    if len(owner) != len(heatmaps):
        raise UsageError(f"{len(heatmaps)} heatmaps for {len(owner)} subjects")
    if heatmaps.shape[-2:] != images.shape[-2:]:
        raise UsageError(f"heatmap size {tuple(heatmaps.shape[-2:])} != image size {tuple(images.shape[-2:])}")
    dev = images.device
    marked = marked_rows(heatmaps).cpu()
    out: torch.Tensor | None = None
    if not bool(marked.all()):
        plain_tower, plain_proj = _tower(model, False)
        used = torch.unique(owner[~marked])
        plain = plain_proj(plain_tower(images[used.to(dev)]))
        out = plain.new_zeros(len(owner), plain.shape[-1])
        where = {int(p): i for i, p in enumerate(used)}
        rows = torch.nonzero(~marked).flatten()
        out[rows.to(dev)] = plain[torch.tensor([where[int(owner[r])] for r in rows], device=dev)]
    if bool(marked.any()):
        rows = torch.nonzero(marked).flatten()
        heat = heatmaps[rows.to(heatmaps.device)].to(dev, images.dtype).nan_to_num(0.0).clamp(0.0, 1.0)
        box = None if boxes is None else boxes[rows.to(boxes.device)].float().cpu()
        feats = _focus_rows(model, images, heat, owner[rows], mode, box)
        if out is None:
            out = feats.new_zeros(len(owner), feats.shape[-1])
        out[rows.to(dev)] = feats.to(out.dtype)
    assert out is not None
    return F.normalize(out, dim=-1) if normalize else out


def _focus_rows(model: Any, images: torch.Tensor, heat: torch.Tensor, owner: torch.Tensor, mode: str,
                boxes: torch.Tensor | None) -> torch.Tensor:
    dev = images.device
    mine = own_mode(model)
    if mode in ("alpha", "pool"):
        return model.encode_roi(images[owner.to(dev)], heat)
    if mode == "attention":  # each photo's patch embedding computed once for all its people
        tower, proj = _tower(model, mine == "attention")
        with shared_embedding(vit_layout(tower), owner):
            return proj(_attention(model).encode(tower, images, heat))
    if mode == "dim":
        if mine == "highlight":  # its ROI branch learned to read exactly these images
            return model.encode_roi(images[owner.to(dev)], heat)
        x = dim_inputs(images, heat, owner.to(dev))
    else:
        boxes = heatmap_boxes(heat) if boxes is None else boxes
        if mode == "crop":
            x = crop_inputs(images, boxes, owner.to(dev))
        elif mode == "blur":
            x = blur_inputs(images, boxes, owner.to(dev))
        else:
            x = circle_inputs(images, boxes, owner.to(dev), model.image_mean, model.image_std)
    tower, proj = _tower(model, False)
    return proj(tower(x))


__all__ = ["ATTENTION_FLOOR", "ATTENTION_STRENGTH", "DEFAULT_FOCUS", "DEFAULT_VIT_FOCUS", "FOCUS_AT_INFERENCE", "MARK_LEVEL",
           "TRAINED_ONLY", "focus_modes", "focused_features", "marked_rows", "own_mode", "resolve_focus"]

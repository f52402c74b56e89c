"""Weight-space ensembling (WiSE-FT, Wortsman et al. 2022): keep what a pretrained CLIP knew while
keeping what fine-tuning taught it.

``merged = (1 - alpha) * base + alpha * finetuned`` for every floating-point tensor of two models of one
architecture; ``alpha = 0`` is the base (zero-shot) model, ``1`` the fine-tuned one. What only the
fine-tuned model has is its ROI branch: the focus mechanism's parameters are taken from it as they are,
and an unshared ROI image tower (``roi_visual``) is interpolated towards the base's image tower, the
weights it was copied from. A base model's own ROI branch, if it has one, is not used. Integer buffers
are the fine-tuned model's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from focusclip.errors import InputError, UsageError
from focusclip.model.focusclip import FocusCLIP

ROI_ONLY_PREFIXES = ("focus.",)
#: unshared ROI towers start as copies of these (key prefix in the fine-tuned model -> in the base)
ROI_COPIES = {"roi_visual_proj.": "visual_proj.", "roi_visual.": "visual."}


class ArchitectureMismatchError(InputError):
    """Two models whose weights cannot be interpolated (other keys or shapes)."""


def base_key(key: str) -> str | None:
    """The base-model key a fine-tuned key interpolates with (None: ROI-only, taken as it is)."""
    if key.startswith(ROI_ONLY_PREFIXES):
        return None
    for prefix, source in ROI_COPIES.items():
        if key.startswith(prefix):
            return source + key[len(prefix):]
    return key


def interpolate_states(base: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor],
                       alpha: float, where: str = "merge") -> dict[str, torch.Tensor]:
    """``(1 - alpha) * base + alpha * finetuned`` key by key (see the module docstring);
    :class:`ArchitectureMismatchError` lists the keys that do not pair up."""
    check_alpha(alpha, where)
    pairs = {k: base_key(k) for k in finetuned}
    missing = sorted(b for b in pairs.values() if b is not None and b not in base)
    paired = {b for b in pairs.values() if b is not None}
    extra = sorted(k for k in base if k not in paired and base_key(k) == k)  # a base's own ROI branch is dropped
    shapes = sorted(k for k, b in pairs.items()
                    if b is not None and b in base and tuple(base[b].shape) != tuple(finetuned[k].shape))
    if missing or extra or shapes:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... (+{len(keys) - 6})" if len(keys) > 6 else "") if keys else "none"

        raise ArchitectureMismatchError(
            f"{where}: the two models are not of one architecture, their weights cannot be interpolated.\n"
            f"  only in the fine-tuned model ({len(missing)}): {show(missing)}\n"
            f"  only in the base model ({len(extra)}): {show(extra)}\n  other shapes ({len(shapes)}): {show(shapes)}")
    out = {}
    for key, value in finetuned.items():
        b = pairs[key]
        if b is None or not value.is_floating_point():
            out[key] = value.clone()
        else:
            mixed = (1.0 - alpha) * base[b].to(torch.float32) + alpha * value.to(torch.float32)
            out[key] = mixed.to(value.dtype)
    return out


def merge_models(base: FocusCLIP, finetuned: FocusCLIP, alpha: float) -> FocusCLIP:
    """A new model: ``finetuned``'s architecture (ROI branch included) with WiSE-FT weights."""
    where = f"merge {base.config.get('name', 'base')!r} with {finetuned.config.get('name', 'fine-tuned')!r}"
    state = interpolate_states(base.state_dict(), finetuned.state_dict(), alpha, where)
    merged = copy.deepcopy(finetuned)
    merged.load_state_dict(state, strict=True)
    return merged.eval()


def check_alpha(alpha: float, where: str = "merge") -> float:
    """``alpha`` when it is a number in [0, 1] (NaN is not); :class:`UsageError` otherwise. Commands call
    it before loading any model."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise UsageError(f"{where}: alpha must be a number in [0, 1] (0: the base model, 1: the fine-tuned "
                         f"one), got {alpha}")
    return float(alpha)


def parse_alphas(text: str) -> list[float]:
    """``"0,0.25,0.5"`` -> [0.0, 0.25, 0.5], each in [0, 1]."""
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise UsageError(f"--interpolate {text!r}: expected comma-separated numbers in [0, 1], e.g. 0,0.5,1") \
            from None
    if not alphas:
        raise UsageError(f"--interpolate {text!r} gives no alpha: expected comma-separated numbers in [0, 1], "
                         "e.g. 0,0.5,1")
    bad = [a for a in alphas if not 0.0 <= a <= 1.0]
    if bad:
        raise UsageError(f"--interpolate {text!r}: {', '.join(f'{a:g}' for a in bad)} not in [0, 1]; expected "
                         "comma-separated numbers in [0, 1], e.g. 0,0.5,1")
    return alphas

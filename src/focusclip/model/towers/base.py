"""What every tower shares: freezing with open_clip's semantics (lock everything, then unlock the last
N layer groups) over an ordered list of a module's trainable blocks, and what a whole-CLIP family
builds (:class:`ClipTowers`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

_BLOCK_LISTS = ("encoder.layer", "layer", "blocks", "stages", "layers")
_TAIL_MODULES = ("norm", "fc_norm", "conv_head", "bn2", "head")


def layer_groups(module: nn.Module) -> list[nn.Module]:
    """The ordered trainable blocks of a tower: transformer layers / stages, then the final norm/head."""
    for attr in _BLOCK_LISTS:
        obj: Any = module
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.Sequential | nn.ModuleList):
            tail = [getattr(module, n) for n in _TAIL_MODULES if isinstance(getattr(module, n, None), nn.Module)]
            return [g for g in [*obj, *tail] if any(True for _ in g.parameters())]  # skip Identity heads
    return [g for g in module.children() if any(True for _ in g.parameters())]


def lock_layers(module: nn.Module, unlocked: int = 0) -> None:
    """Freeze ``module``, leaving its last ``unlocked`` layer groups (:func:`layer_groups`) trainable."""
    for p in module.parameters():
        p.requires_grad_(False)
    if unlocked <= 0:
        return
    for g in layer_groups(module)[-unlocked:]:
        for p in g.parameters():
            p.requires_grad_(True)


def lock_groups(module: nn.Module, groups: list[Any], unlocked: int = 0) -> None:
    """Freeze ``module``, then unfreeze the last ``unlocked`` of ``groups`` (each a module, a parameter or
    a list of them), as open_clip's ``lock_image_tower`` does with its own group lists."""
    for p in module.parameters():
        p.requires_grad_(False)
    if unlocked <= 0:
        return
    for group in groups[-unlocked:]:
        for item in group if isinstance(group, list | tuple) else [group]:
            params = [item] if isinstance(item, nn.Parameter) else item.parameters()
            for p in params:
                p.requires_grad_(True)


@dataclass
class ClipTowers:
    """What a whole-CLIP family builds from one checkpoint: both towers (each ending in the checkpoint's
    own projection), the embedding size, the learned logit scale (and bias, for sigmoid-loss models),
    the checkpoint's image preprocessing and the ``clip`` config keys that rebuild the architecture
    offline (``save_model`` writes them)."""

    visual: nn.Module
    text: nn.Module
    embed_dim: int
    logit_scale: float
    preprocess: dict[str, Any]    #: image_size, mean, std, resize (squash | center_crop), interpolation
    rebuild: dict[str, Any]
    logit_bias: float | None = None

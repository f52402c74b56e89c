"""What every tower shares: freezing with open_clip's semantics (lock everything, then unlock the last
N layer groups) over an ordered list of a module's trainable blocks."""

from __future__ import annotations

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

"""Attention-bias focus (after FALIP): the heatmap steers where the transformer looks, pixels unchanged.

The heatmap ``H`` averaged over each patch gives ``h_j`` in [0, 1] per patch token ``j``. Block ``l`` of
the last ``last_blocks`` adds

    b_ij = s_l * log(f + (1 - f) * h_j)

to the attention logit of query ``i`` on patch key ``j`` (0 on the class / register tokens), for the
class / pooling token's queries only, or for every query with ``all_tokens``. The bias is 0 where the
heatmap is 1 and ``s_l * log f`` where it is 0 (``f = floor``, 0.01 by default: about -4.6 s_l), a
foveal mask in log space. ``s_l`` is one learnable strength per block (init ``strength_init``); with
``s = 0`` the tower is exactly the plain one. The tower's own attention code runs unchanged: the bias
reaches it as the float attention mask its blocks take (:mod:`.layout`). Acts at inference too.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch
from torch import nn

from focusclip.errors import UsageError
from focusclip.model.focus.base import Focus, as_heatmap_batch, register_focus
from focusclip.model.focus.layout import ViTLayout, hooked, require_vit, vit_layout


@register_focus
class AttentionFocus(Focus):
    mode = "attention"
    at_inference = True

    def __init__(self, tower: nn.Module, last_blocks: int = 0, strength_init: float = 1.0,
                 all_tokens: bool = False, floor: float = 0.01):
        super().__init__()
        layout = require_vit(tower, self.mode)
        n = len(layout.blocks)
        if not 0 <= int(last_blocks) <= n:
            raise UsageError(f"roi.last_blocks must be in 0..{n} (0: all {n} blocks), got {last_blocks}")
        if not 0.0 < float(floor) < 1.0:
            raise UsageError(f"roi.floor must be in (0, 1), got {floor}")
        self.last_blocks = int(last_blocks) or n
        self.all_tokens = bool(all_tokens)
        self.floor = float(floor)
        self.strength = nn.Parameter(torch.full((self.last_blocks,), float(strength_init)))

    @classmethod
    def supports(cls, tower: nn.Module) -> bool:
        return vit_layout(tower) is not None

    def patch_bias(self, layout: ViTLayout, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        """``log(f + (1 - f) h_j)`` per patch token: (B, N), 0 where the heatmap is 1."""
        h = layout.patch_grid(as_heatmap_batch(image, heatmap)).clamp(0.0, 1.0)
        return torch.log(self.floor + (1.0 - self.floor) * h)

    def attention_mask(self, layout: ViTLayout, cols: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """The additive mask of one block: (B, 1, L, L), or (B * heads, L, L) for torch's attention."""
        b, n = cols.shape
        p = layout.num_prefix
        row = torch.cat([cols.new_zeros(b, p), cols], dim=1) * strength  # (B, L): bias on each key
        mask = row[:, None, :].expand(b, p + n, p + n)
        if not self.all_tokens:
            queries = torch.zeros(p + n, 1, dtype=cols.dtype, device=cols.device)
            queries[:p] = 1.0
            mask = mask * queries  # only the class / register tokens' queries are biased
        if layout.heads_in_batch:
            return mask.repeat_interleave(layout.heads_in_batch, dim=0)
        return mask[:, None]

    def _hook(self, layout: ViTLayout, cols: torch.Tensor, index: int, module: nn.Module,
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        x = args[0] if args else next(iter(kwargs.values()))
        mask = self.attention_mask(layout, cols, self.strength[index]).to(x.dtype)
        pos, name = layout.mask_pos, layout.mask_arg
        if len(args) > pos:
            given = args[pos]
            args = (*args[:pos], mask if given is None else given + mask, *args[pos + 1:])
        else:
            given = kwargs.get(name)
            kwargs = {**kwargs, name: mask if given is None else given + mask}
        return args, kwargs

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        layout = require_vit(tower, self.mode)
        cols = self.patch_bias(layout, image, heatmap)
        biased = layout.blocks[len(layout.blocks) - self.last_blocks:]
        with contextlib.ExitStack() as stack:
            for i, block in enumerate(biased):
                stack.enter_context(hooked(block, functools.partial(self._hook, layout, cols, i), pre=True))
            return tower(image)

    def summary(self) -> dict[str, torch.Tensor]:
        return {"strength": self.strength.detach().mean()}

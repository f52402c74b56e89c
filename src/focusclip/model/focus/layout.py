"""Where a focus mechanism reaches into a vision tower: the patch embedding, the transformer blocks and
how a block takes an additive attention bias, for each tower family that holds a ViT.

=======================  ==================================  ===============================================
tower                    patch embedding                     blocks (bias argument)
=======================  ==================================  ===============================================
timm ViT                 ``trunk.patch_embed.proj``          ``trunk.blocks`` (``attn_mask``, (B, 1, L, L))
timm hybrid ViT          ``trunk.patch_embed.proj`` (on the      ``trunk.blocks``
                         CNN's feature map)
open_clip ViT            ``visual.conv1``                    ``visual.transformer.resblocks``
                                                             (``attn_mask``, (B * heads, L, L))
Hugging Face CLIP ViT    ``vision_model.embeddings           ``vision_model.encoder.layers``
                         .patch_embedding``                  (``attention_mask``, (B, 1, L, L))
=======================  ==================================  ===============================================

Every block listed adds a float mask to its attention logits before the softmax (timm and transformers
through ``F.scaled_dot_product_attention`` or their eager path, open_clip through its attention module),
so the mechanisms only pass a bias in; none of the towers' code is replaced.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from focusclip.errors import UsageError


@dataclass(frozen=True)
class ViTLayout:
    """The parts of a ViT tower a focus mechanism uses."""

    patch_conv: nn.Conv2d          #: the patch embedding (its output is (B, D, H / p, W / p))
    blocks: tuple[nn.Module, ...]  #: the transformer blocks, first to last
    num_prefix: int                #: class / register tokens before the patch tokens
    mask_arg: str                  #: the keyword a block takes its additive attention mask as
    mask_pos: int                  #: that argument's position among the block's positional arguments
    heads_in_batch: int = 0        #: >0: the mask is (B * heads, L, L) (torch's MultiheadAttention)
    #: the module whose output is the token embedding before the first block (None: ``patch_conv``;
    #: Hugging Face's ``embeddings``, which adds the class token with the *input's* batch size)
    embeddings: nn.Module | None = None
    #: the pixel cell one patch token covers (None: ``patch_conv``'s kernel, which reads the pixels; a
    #: hybrid ViT's ``patch_conv`` reads a CNN's feature map, so its tokens cover the CNN's stride)
    token_cell: tuple[int, int] | None = None

    @property
    def pixel_geometry(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(kernel, stride, padding) in pixels of the patch tokens: the patch embedding's own, or a hybrid's
        cell (kernel = stride = ``token_cell``, no padding)."""
        if self.token_cell is not None:
            return self.token_cell, self.token_cell, (0, 0)
        conv = self.patch_conv
        return tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding)  # type: ignore[return-value]

    @property
    def embedding_module(self) -> nn.Module:
        """Where every pass over one image is the same until the first block (:func:`shared_embedding`)."""
        return self.embeddings if self.embeddings is not None else self.patch_conv

    def patch_grid(self, heatmap: torch.Tensor) -> torch.Tensor:
        """``heatmap`` (B, 1, H, W) averaged over each patch: (B, N) in patch-token order."""
        kernel, stride, _ = self.pixel_geometry
        return nn.functional.avg_pool2d(heatmap, kernel, stride).flatten(1)


def vit_layout(tower: nn.Module) -> ViTLayout | None:
    """The :class:`ViTLayout` of a tower, or None when it holds no ViT these mechanisms know."""
    for find in (_timm, _open_clip, _hf_clip):
        layout = find(tower)
        if layout is not None:
            return layout
    return None


def require_vit(tower: nn.Module, mode: str) -> ViTLayout:
    """The :class:`ViTLayout` of ``tower``; a clear error naming focus mode ``mode`` when it is not a ViT."""
    layout = vit_layout(tower)
    if layout is None:
        raise UsageError(f"focus mode {mode!r} needs a ViT vision tower (timm, open_clip or Hugging Face CLIP); "
                         f"{type(tower).__name__} is not one")
    return layout


def _takes(block: nn.Module, arg: str) -> int | None:
    """The position of ``arg`` among ``block.forward``'s parameters (None: it takes no such argument)."""
    names = list(inspect.signature(block.forward).parameters)
    return names.index(arg) if arg in names else None


def _timm(tower: nn.Module) -> ViTLayout | None:
    trunk = getattr(tower, "trunk", None)
    proj = getattr(getattr(trunk, "patch_embed", None), "proj", None)
    blocks = getattr(trunk, "blocks", None)
    if not isinstance(proj, nn.Conv2d) or not isinstance(blocks, nn.Sequential | nn.ModuleList) or not len(blocks):
        return None
    pos = _takes(blocks[0], "attn_mask")
    if pos is None:
        return None
    return ViTLayout(proj, tuple(blocks), int(getattr(trunk, "num_prefix_tokens", 1)), "attn_mask", pos,
                     token_cell=_hybrid_cell(trunk.patch_embed))


def _hybrid_cell(patch_embed: nn.Module) -> tuple[int, int] | None:
    """The pixels per token of timm's ``HybridEmbed`` (a CNN under the patch projection), else None."""
    if getattr(patch_embed, "backbone", None) is None:
        return None
    (h, w), (gh, gw) = patch_embed.img_size, patch_embed.grid_size
    return h // gh, w // gw


def _open_clip(tower: nn.Module) -> ViTLayout | None:
    visual = getattr(tower, "visual", None)
    conv = getattr(visual, "conv1", None)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(blocks, nn.ModuleList) or not len(blocks):
        return None
    pos = _takes(blocks[0], "attn_mask")
    heads = getattr(getattr(blocks[0], "attn", None), "num_heads", None)
    if pos is None or heads is None:
        return None
    prefix = 1 if getattr(visual, "class_embedding", None) is not None else 0
    return ViTLayout(conv, tuple(blocks), prefix, "attn_mask", pos, int(heads))


def _hf_clip(tower: nn.Module) -> ViTLayout | None:
    vm = getattr(tower, "vision_model", None)
    conv = getattr(getattr(vm, "embeddings", None), "patch_embedding", None)
    layers = getattr(getattr(vm, "encoder", None), "layers", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(layers, nn.ModuleList) or not len(layers):
        return None
    pos = _takes(layers[0], "attention_mask")
    return None if pos is None else ViTLayout(conv, tuple(layers), 1, "attention_mask", pos, embeddings=vm.embeddings)


@contextlib.contextmanager
def hooked(module: nn.Module, hook: Callable, pre: bool = False) -> Iterator[None]:
    """``hook`` on ``module`` for the duration of the block (a forward pre-hook with keyword arguments
    when ``pre``, else a forward hook)."""
    handle = (module.register_forward_pre_hook(hook, with_kwargs=True) if pre
              else module.register_forward_hook(hook))
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def shared_embedding(layout: ViTLayout, rows: torch.Tensor) -> Iterator[None]:
    """While active, the tower embeds each *distinct* image once and repeats the embedding for every row
    that shows it: ``rows`` (R,) indexes the images given to the tower, and the tower returns R rows.
    Every focused pass over one photo starts from the same patch embedding as its plain pass."""
    def expand(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output[rows.to(output.device)]

    with hooked(layout.embedding_module, expand):
        yield

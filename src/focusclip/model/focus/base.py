"""The interface every focus mechanism implements (one file per mechanism in this folder), and the
registry a mechanism joins with :func:`register_focus` where its class is defined."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, TypeVar

import torch
from torch import nn

from focusclip.errors import UsageError


class Focus(nn.Module):
    """How the subject marked by a heatmap steers an image encoding.

    ``encode(tower, image, heatmap)`` returns the tower's pooled features of ``image`` focused on
    ``heatmap`` ``(B, 1, H, W)`` in [0, 1]; the model projects them like plain image features.
    ``summary()`` returns the mechanism's scalar state to log during training (e.g. its mixing weight).
    ``at_inference`` says whether ``encode_image(image, heatmap=...)`` may use the mechanism (the
    paper's highlight only trains a branch; mechanisms that change the encoder itself can focus at
    inference). ``supports(tower)`` says whether a tower can host the mechanism.
    """

    mode: ClassVar[str] = ""
    at_inference: ClassVar[bool] = False

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def summary(self) -> dict[str, torch.Tensor]:
        return {}

    @classmethod
    def supports(cls, tower: nn.Module) -> bool:
        return True


def as_heatmap_batch(image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
    """``heatmap`` as (B, 1, H, W) matching ``image`` (B, C, H, W); a clear error when the sizes differ."""
    if heatmap.dim() == image.dim() - 1:
        heatmap = heatmap.unsqueeze(1)
    if heatmap.shape[-2:] != image.shape[-2:]:
        raise UsageError(f"heatmap size {tuple(heatmap.shape[-2:])} != image size {tuple(image.shape[-2:])}")
    return heatmap.to(image.dtype)


#: the mode of a config whose ``roi`` section names none
DEFAULT_FOCUS_MODE = "highlight"

_MODES: dict[str, type[Focus]] = {}  # filled only by register_focus, at import time of the mechanisms

#: ``roi.mode`` -> mechanism class, the default (``highlight``) first, then by name, whatever the order the
#: modules were imported in: a read-only view that every reader (model configs, ``focusclip ablate``, serve,
#: the tests) goes through.
FOCUS_MODES: Mapping[str, type[Focus]] = MappingProxyType(_MODES)

F = TypeVar("F", bound=type[Focus])


def register_focus(cls: F) -> F:
    """Class decorator: make a :class:`Focus` subclass the mechanism of ``roi.mode = cls.mode``.

    >>> @register_focus                                   # doctest: +SKIP
    ... class MyFocus(Focus):
    ...     mode = "mine"
    """
    if not (isinstance(cls, type) and issubclass(cls, Focus)) or not cls.mode:
        raise TypeError(f"register_focus takes a Focus subclass with a 'mode' name, got {cls!r}")
    if _MODES.get(cls.mode, cls) is not cls:
        raise ValueError(f"focus mode {cls.mode!r} is already registered by {_MODES[cls.mode].__qualname__}")
    _MODES[cls.mode] = cls
    ordered = sorted(_MODES.items(), key=lambda item: (item[0] != DEFAULT_FOCUS_MODE, item[0]))
    _MODES.clear()
    _MODES.update(ordered)
    return cls

"""The paper's focus: the ROI branch encodes the highlighted image ``I * (a + H * (1 - a))``.

``H`` is the ROI heatmap in [0, 1] and ``a`` one learnable scalar (init 0.5): pixels outside the subject
are dimmed towards ``a`` times their value. ``alpha_constraint="clamp"`` keeps the effective ``a`` in
[0, 1]; ``"none"`` is the reference code's unconstrained scalar (the paper preset). The image is
normalised before highlighting, so dimmed pixels move towards the dataset mean colour. The pixels of
the plain image branch are never changed, so this mechanism only acts in training.
"""

from __future__ import annotations

import torch
from torch import nn

from focusclip.errors import UsageError
from focusclip.model.focus.base import Focus, as_heatmap_batch, register_focus

ALPHA_CONSTRAINTS = ("clamp", "none")


@register_focus
class HighlightFocus(Focus):
    mode = "highlight"
    at_inference = False

    def __init__(self, alpha_init: float = 0.5, alpha_constraint: str = "clamp"):
        super().__init__()
        if alpha_constraint not in ALPHA_CONSTRAINTS:
            raise UsageError(f"roi.alpha_constraint must be one of {ALPHA_CONSTRAINTS}, got {alpha_constraint!r}")
        self.alpha_constraint = alpha_constraint
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def mixing_alpha(self) -> torch.Tensor:
        """The effective mixing scalar ``a``."""
        return self.alpha.clamp(0.0, 1.0) if self.alpha_constraint == "clamp" else self.alpha

    def highlight(self, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        """``image * (a + heatmap * (1 - a))`` with the heatmap broadcast over channels."""
        heatmap = as_heatmap_batch(image, heatmap)
        a = self.mixing_alpha().to(image.dtype)
        return image * (a + heatmap * (1 - a))

    def encode(self, tower: nn.Module, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        return tower(self.highlight(image, heatmap))

    def summary(self) -> dict[str, torch.Tensor]:
        return {"alpha": self.mixing_alpha().detach()}

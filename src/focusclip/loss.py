"""Contrastive losses: the paper's NT-Xent, CLIP's symmetric loss, and the three-pair FocusCLIP objective.

With ``torch.distributed`` initialised, features are gathered from every rank *with gradients*, so each
rank computes the loss of the global batch. Under DistributedDataParallel (which averages gradients
over ranks) a run on N processes then optimises exactly the objective of one process on the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from focusclip.errors import UsageError

PAIRS = ("roi_img", "roi_txt", "img_txt")
LOSS_NAMES = ("ntxent", "clip")
_PAIR_FEATURES = {"roi_img": ("roi_features", "image_features"),
                  "roi_txt": ("roi_features", "text_features"),
                  "img_txt": ("image_features", "text_features")}


# ------------------------------------------------------------------------------ gather
class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradients over ranks and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        sizes = torch.tensor([x.shape[0]], device=x.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
        dist.all_gather(all_sizes, sizes)
        counts = [int(s.item()) for s in all_sizes]
        biggest = max(counts)
        padded = x.new_zeros((biggest, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        rank = dist.get_rank()
        ctx.start = sum(counts[:rank])
        ctx.count = counts[rank]
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start: ctx.start + ctx.count]


def gather_features(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks (rank order) with gradients; identity without distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


# ------------------------------------------------------------------------------ losses
def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent over the 2N embeddings of N pairs ``(a_i, b_i)`` (docs/method.md, "The loss").

    ``u = normalize([a; b])``, ``s = u u^T / t``; row i's positive is its partner; the denominator sums over
    every other row (same-modality negatives included); the loss is the mean over all 2N rows.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise UsageError(f"nt_xent expects two (N, D) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = a.shape[0]
    u = F.normalize(torch.cat([a, b]).float(), dim=-1)
    sim = u @ u.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=sim.device), float("-inf"))
    idx = torch.arange(n, device=sim.device)
    targets = torch.cat([idx + n, idx])
    return F.cross_entropy(sim, targets)


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over the N x N similarity matrix of normalised features."""
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    logits = logit_scale * a @ b.T
    targets = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class NTXentLoss(nn.Module):
    """NT-Xent with a fixed temperature, gathered across ranks."""

    def __init__(self, temperature: float = 0.5, gather: bool = True):
        super().__init__()
        self.temperature = temperature
        self.gather = gather

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.gather:
            a, b = gather_features(a), gather_features(b)
        return nt_xent(a, b, self.temperature)


class ClipLoss(nn.Module):
    """CLIP's symmetric loss with the model's learnable logit scale, gathered across ranks."""

    def __init__(self, gather: bool = True):
        super().__init__()
        self.gather = gather

    def forward(self, a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        if self.gather:
            a, b = gather_features(a), gather_features(b)
        return clip_loss(a, b, logit_scale)


class FocusCLIPLoss(nn.Module):
    """The weighted sum over the pairs (roi, image), (roi, text), (image, text).

    ``name="ntxent"`` is the paper (fixed temperature 0.5, weights 1, 1, 1); ``"clip"`` uses CLIP's
    symmetric loss with the model's logit scale for every pair. Without ROI features (the CLIP baseline)
    only the image-text term is computed. Returns ``{"loss": total, <pair>: term, ...}``.
    """

    def __init__(self, name: str = "ntxent", weights: Sequence[float] | Mapping[str, float] = (1.0, 1.0, 1.0),
                 temperature: float = 0.5, gather: bool = True):
        super().__init__()
        if name not in LOSS_NAMES:
            raise UsageError(f"loss name must be one of {LOSS_NAMES}, got {name!r}")
        self.name = name
        self.weights = dict(weights) if isinstance(weights, Mapping) else dict(zip(PAIRS, weights))
        unknown = set(self.weights) - set(PAIRS)
        if unknown or len(self.weights) != 3:
            raise UsageError(f"loss weights need exactly the pairs {PAIRS}, got {sorted(self.weights)}")
        self.temperature = temperature
        self.gather = gather

    def forward(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats = {k: gather_features(v) if self.gather else v
                 for k, v in outputs.items() if k.endswith("_features")}
        terms: dict[str, torch.Tensor] = {}
        for pair in PAIRS:
            fa, fb = _PAIR_FEATURES[pair]
            if fa not in feats or fb not in feats or self.weights[pair] == 0:
                continue
            if self.name == "ntxent":
                terms[pair] = nt_xent(feats[fa], feats[fb], self.temperature)
            else:
                terms[pair] = clip_loss(feats[fa], feats[fb], outputs["logit_scale"])
        if not terms:
            raise UsageError("no loss term could be computed: outputs lack the features of every weighted pair")
        total = sum(self.weights[p] * t for p, t in terms.items())
        return {"loss": total, **terms}

"""Optimisers, the learning-rate schedule and tower freezing.

The paper: SGD (lr 5e-4, momentum 0.9, no weight decay), constant learning rate, gradient-norm clip 1.0.
The option: AdamW with linear warm-up and cosine decay; no weight decay on biases, norms and scalars.
The schedule is a pure function of the step, so it needs no state of its own in checkpoints.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from focusclip.errors import UsageError
from focusclip.model import FocusCLIP
from focusclip.train.config import LossConfig, ModelConfig, OptimConfig

logger = logging.getLogger(__name__)


def apply_freezing(model: FocusCLIP, cfg: ModelConfig, loss_cfg: LossConfig) -> None:
    """Lock towers as configured; the logit scale only trains with the CLIP loss (NT-Xent ignores it)."""
    if cfg.lock_image:
        model.lock_image_tower(cfg.lock_image_unlocked_groups)
    if cfg.lock_text:
        model.lock_text_tower(cfg.lock_text_unlocked_layers)
    if loss_cfg.name != "clip":
        model.logit_scale.requires_grad_(False)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    logger.info("trainable parameters: %s of %s", f"{n_train:,}", f"{n_all:,}")


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise UsageError("no trainable parameters: both towers are locked with nothing left unlocked")
    fused = _fused_ok([p for _, p in params])
    if cfg.name == "sgd":
        return torch.optim.SGD([p for _, p in params], lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, fused=fused)
    decay = [p for n, p in params if p.ndim >= 2]
    no_decay = [p for n, p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps, fused=fused)


def _fused_ok(params: list[torch.Tensor]) -> bool | None:
    """The fused (one kernel for all parameters) update where torch has it: floating-point parameters
    on the CPU or a GPU, all on one device; None (torch's default) otherwise."""
    devices = {p.device.type for p in params}
    return True if len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params) \
        else None


def lr_at(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then constant or cosine."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(total_steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr

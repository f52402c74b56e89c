"""Training precision: what ``precision`` means on this machine, and the bf16 check of ``precision=auto``.

``auto`` picks bf16 autocast where the hardware computes in bf16 natively - a GPU with bf16 support, a
CPU with AVX512-BF16 or AMX - and fp32 elsewhere. Before training, :func:`bf16_agrees` runs the loss and
gradients of a few training samples once in fp32 and once under bf16 autocast (same weights, same
dropout masks, nothing updated) and ``auto`` falls back to fp32, with a warning, when they disagree
beyond :data:`LOSS_RTOL` (relative difference of the loss) or :data:`GRAD_MIN_COSINE` (cosine
similarity of the two gradients over all trainable parameters).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from focusclip.runtime import autocast, rng_state, set_rng_state

logger = logging.getLogger(__name__)

LOSS_RTOL = 0.02          #: bf16 and fp32 losses may differ by 2% of the fp32 loss
GRAD_MIN_COSINE = 0.98    #: ... and their gradients must point the same way (cosine >= 0.98)
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """This CPU computes bf16 natively (AVX512-BF16 or AMX), as the kernel reports its flags."""
    if torch.backends.cpu.get_cpu_capability() == "AMX":
        return True
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return any(f in flags for f in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run uses on ``device`` for the configured ``precision`` (fp32 | bf16 | fp16 | auto)."""
    if device.type == "cuda":
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning("this GPU has no bf16 support; using fp16 with loss scaling")
            return "fp16"
        return precision
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if precision == "bf16" and device.type == "cpu":
        if not cpu_has_bf16():
            logger.warning("precision=bf16 on a CPU without AVX512-BF16/AMX is slow; it runs as asked")
        return "bf16"
    if precision != "fp32":
        logger.warning("precision=%s needs a GPU; training in fp32 on %s", precision, device)
        return "fp32"
    return precision


def _loss_and_grads(model: nn.Module, loss_fn: Callable, batch: dict[str, Any], device: torch.device,
                    precision: str) -> tuple[float, torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    with autocast(device, precision):
        out = model(batch["image"], batch["text"], batch["heatmap"])
    loss = loss_fn(out)["loss"]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(p)).float().reshape(-1)
                      for g, p in zip(grads, params, strict=True)])
    return float(loss.detach()), flat


def bf16_agrees(model: nn.Module, loss_fn: Callable, batch: dict[str, Any], device: torch.device
                ) -> tuple[bool, dict[str, float]]:
    """Whether one bf16 step agrees with the fp32 step on ``batch`` (module docstring); the model's
    weights, buffers (batch-norm statistics), gradients and the RNG are as before."""
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    rng = rng_state()
    try:
        loss32, g32 = _loss_and_grads(model, loss_fn, batch, device, "fp32")
        set_rng_state(rng)  # the same dropout masks
        loss16, g16 = _loss_and_grads(model, loss_fn, batch, device, "bf16")
    finally:
        set_rng_state(rng)
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
    rel = abs(loss16 - loss32) / max(abs(loss32), 1e-8)
    cos = float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)) if g32.norm() > 0 else 1.0
    report = {"loss_fp32": loss32, "loss_bf16": loss16, "loss_rel_diff": rel, "grad_cosine": cos}
    ok = math.isfinite(loss16) and rel <= LOSS_RTOL and cos >= GRAD_MIN_COSINE
    return ok, report

"""Where and how tensors run: device choice, mixed precision, moving batches, seeding and RNG state.

One implementation for training, evaluation and prediction, so ``--device cuda`` or ``precision=bf16``
mean the same everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from focusclip.errors import UsageError

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")


class DeviceError(UsageError):
    """A device that does not exist on this machine (e.g. ``cuda`` without a GPU)."""


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU (``cuda:<local_rank>``) when CUDA is available, else the CPU;
    ``cuda`` -> ``cuda:<local_rank>``; anything else as given. A GPU that is not there is an error."""
    if isinstance(device, torch.device):
        dev = device
    else:
        name = str(device).strip()
        if name == "auto":
            return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise DeviceError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r} requested but CUDA is not available on this machine; "
                              "use --device cpu (or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(device)!r} requested but this machine has "
                              f"{torch.cuda.device_count()} GPU(s)")
    return dev


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """Mixed precision for ``device``: ``fp32`` (none), ``bf16``, ``fp16``, or ``auto`` (bf16 on GPUs that
    support it, else fp16 on GPUs, none on the CPU; what evaluation and prediction use)."""
    if precision == "auto":
        if device.type != "cuda":
            return contextlib.nullcontext()
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be auto or one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def to_device(obj: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Tensors (also inside mappings, lists and tuples) moved to ``device``; anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    return obj


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all GPUs included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's generator states as tensors and primitives (safe for ``torch.load(weights_only=True)``)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py[0], "state": torch.tensor(py[1], dtype=torch.int64), "gauss": py[2]},
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

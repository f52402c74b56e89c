"""Self-describing, atomically written training checkpoints; retention; resume; model exports.

A checkpoint (``RUN/checkpoints/step-00001234.pt``) is a plain dict of tensors and Python primitives,
loadable with ``torch.load(..., weights_only=True)`` (no arbitrary unpickling)::

    format, version (focusclip), config (resolved TrainConfig dict), model_config,
    epoch, step, batch_in_epoch (position inside the epoch), best (metric, value, step),
    model, optimizer, scaler (state dicts), schedule {name, step},
    rng: one entry per rank {python, numpy, torch, cuda}
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from focusclip.errors import InputError, MissingInput
from focusclip.io import atomic_save

logger = logging.getLogger(__name__)

FORMAT = "focusclip-checkpoint"
CKPT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8,})\.pt$")


class CheckpointError(InputError):
    """A checkpoint that is damaged, of another format, or for another model."""


# ------------------------------------------------------------------------------ files
def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CKPT_DIR


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first (by step)."""
    d = checkpoint_dir(run_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` atomically as ``step-XXXXXXXX.pt`` and delete all but the newest ``keep``."""
    from focusclip import __version__

    path = checkpoint_dir(run_dir) / f"step-{int(state['step']):08d}.pt"
    payload = {"format": FORMAT, "version": __version__, **state}
    atomic_save(path, lambda f: torch.save(payload, f))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        logger.debug("removed old checkpoint %s", old)
    logger.info("checkpoint %s", path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint file; :class:`CheckpointError` names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"{path}: damaged or unreadable checkpoint ({type(e).__name__}: {e}). "
                              "Resume from an earlier checkpoint in the same folder.") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a focusclip training checkpoint (expected format {FORMAT!r})")
    missing = [k for k in ("model", "optimizer", "step", "epoch", "model_config", "config") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return ckpt


def resolve_resume(resume: str, run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to resume from, loaded: ``"latest"`` -> the newest readable one of the run (None when
    there is none), else the given path. Each file is read once."""
    if resume != "latest":
        return Path(resume), load_checkpoint(resume)
    candidates = list_checkpoints(run_dir)
    for path in reversed(candidates):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as e:
            logger.warning("skipping %s", e)
    if candidates:
        raise CheckpointError(f"{checkpoint_dir(run_dir)}: no readable checkpoint among {len(candidates)}")
    return None


def check_compatible(ckpt: dict[str, Any], model_config: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint made for another model configuration, naming the differing keys."""
    diffs = _diff(_strip(ckpt["model_config"]), _strip(model_config))
    if diffs:
        raise CheckpointError(f"{path}: checkpoint was made for a different model; differing keys: "
                              + "; ".join(diffs[:8]))


def _strip(cfg: dict[str, Any]) -> dict[str, Any]:
    """The architecture-relevant part of a model config (normalised through JSON)."""
    cfg = json.loads(json.dumps(cfg))
    cfg.pop("description", None)
    cfg.pop("default_pretrained", None)
    for tower in ("vision", "text"):
        if isinstance(cfg.get(tower), dict):
            cfg[tower].pop("weights", None)
    return cfg


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: checkpoint {a!r} vs config {b!r}"]


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    from focusclip.model.focusclip import WeightsMismatchError, load_state_strict

    try:
        load_state_strict(model, state, f"checkpoint {path}")
    except WeightsMismatchError as e:
        raise CheckpointError(str(e)) from None

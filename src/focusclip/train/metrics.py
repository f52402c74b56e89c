"""Training observability: RUN/metrics.jsonl (append-and-flush), optional TensorBoard, loss-curve PNG.

Each metrics line is one JSON object with ``type`` (``train`` | ``val`` | ``zeroshot`` | ``event``),
``step``, ``epoch`` and its values, e.g.
``{"type": "train", "step": 10, "epoch": 0, "loss": 2.1, "img_txt": 0.7, "lr": 0.0005, "alpha": 0.5,
"samples_per_s": 41.2}``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from focusclip.io import JsonlAppender, atomic_save, atomic_write_text, json_text, read_jsonl

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "loss_curves.png"


class MetricsLogger:
    """Writes metrics of the main process; a no-op on other ranks."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._jsonl: JsonlAppender | None = None
        self._tb = None
        if not enabled:
            return
        self._jsonl = JsonlAppender(self.run_dir / METRICS_FILE)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.info("tensorboard not installed; metrics go to %s only", self.run_dir / METRICS_FILE)
            else:
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def log(self, row_type: str, step: int, epoch: int, **values: Any) -> None:
        if not self.enabled:
            return
        row = {"type": row_type, "step": step, "epoch": epoch, "time": round(time.time(), 3), **values}
        assert self._jsonl is not None
        self._jsonl.write(row)
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    self._tb.add_scalar(f"{row_type}/{k}", v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def truncate_metrics(run_dir: str | Path, step: int) -> None:
    """Drop metrics written after ``step`` (by a run that died after its last checkpoint) before resuming."""
    path = Path(run_dir) / METRICS_FILE
    rows = read_jsonl(path)
    kept = [r for r in rows if int(r.get("step", 0)) <= step]
    if len(kept) != len(rows) or (path.exists() and not path.read_bytes().endswith(b"\n")):
        atomic_write_text(path, "".join(json_text(r, where=str(path)) + "\n" for r in kept))
        logger.info("resuming at step %d: dropped %d metrics lines written after it", step, len(rows) - len(kept))


def read_metrics(run_dir: str | Path, row_type: str | None = None) -> list[dict[str, Any]]:
    """The run's metrics rows, all or those of one ``type`` (rows of 0.1 runs call it ``kind``)."""
    rows = read_jsonl(Path(run_dir) / METRICS_FILE)
    return [r for r in rows if row_type is None or r.get("type", r.get("kind")) == row_type]


def plot_run_losses(run_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """PNG of one run's train loss terms per step and its validation loss (None when nothing is logged)."""
    from matplotlib.figure import Figure

    train = read_metrics(run_dir, "train")
    val = read_metrics(run_dir, "val")
    if not train and not val:
        return None
    out = Path(out) if out else Path(run_dir) / CURVE_FILE
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    terms = [k for k in ("loss", "img_txt", "roi_img", "roi_txt") if any(k in r for r in train)]
    for k in terms:
        pts = [(r["step"], r[k]) for r in train if k in r and _finite(r[k])]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=f"train {k}", lw=1.5 if k == "loss" else 1.0, alpha=1.0 if k == "loss" else 0.7)
    pts = [(r["step"], r["loss"]) for r in val if _finite(r.get("loss"))]
    if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "o-", color="black", label="val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(Path(run_dir).name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save(out, lambda f: fig.savefig(f, format="png"))
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)

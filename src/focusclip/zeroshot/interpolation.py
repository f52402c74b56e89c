"""Zero-shot accuracy along the WiSE-FT path between a base (zero-shot) model and its fine-tuned version.

For every ``alpha`` the merged model ``(1 - alpha) * base + alpha * finetuned``
(:func:`focusclip.model.merge.merge_models`) is evaluated on the tasks; the results file keeps every
point (keys are task + the merged model's fingerprint, so a rerun reuses them), and the path is drawn
as accuracy against alpha, one line per task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from focusclip.io import atomic_save
from focusclip.model.merge import merge_models
from focusclip.zeroshot.evaluate import evaluate
from focusclip.zeroshot.tasks import Task

logger = logging.getLogger(__name__)


def evaluate_interpolation(base: Any, finetuned: Any, alphas: Sequence[float], tokenizer: Callable,
                           transform: Callable, tasks: Sequence[Task],
                           data_root: str | os.PathLike | Mapping[str, str], *, out: str | os.PathLike | None = None,
                           model_name: str = "", **evaluate_kwargs: Any) -> dict[str, Any]:
    """``{"alphas": [...], "scores": {task: [acc per alpha, None where absent]}, "fingerprints": [...],
    "data": <the results file's content>}``; ``evaluate_kwargs`` go to :func:`evaluate`."""
    scores: dict[str, list[float | None]] = {t.name: [] for t in tasks}
    fingerprints: list[str] = []
    data: dict[str, Any] = {}
    for alpha in alphas:
        merged = merge_models(base, finetuned, alpha)
        data = evaluate(merged, tokenizer, transform, tasks, data_root, out=out,
                        model_name=f"{model_name} alpha={alpha:g}", **evaluate_kwargs)
        fp = data["model"]
        fingerprints.append(fp)
        for task in tasks:
            entry = data["results"].get(f"{task.name}@{fp}")
            scores[task.name].append(float(entry["metrics"]["acc"]) if entry else None)
        logger.info("alpha %g: %s", alpha, ", ".join(f"{t} {v[-1]:.2f}" for t, v in scores.items() if v[-1] is not None))
        del merged
    return {"alphas": list(alphas), "scores": scores, "fingerprints": fingerprints, "data": data}


def interpolation_table(path: Mapping[str, Any]) -> str:
    """Markdown: one row per alpha, one column per task, and their mean."""
    tasks = [t for t, v in path["scores"].items() if any(x is not None for x in v)]
    lines = ["| alpha | " + " | ".join(tasks) + " | mean |", "|---:|" + "---:|" * (len(tasks) + 1)]
    for i, alpha in enumerate(path["alphas"]):
        vals = [path["scores"][t][i] for t in tasks]
        present = [v for v in vals if v is not None]
        mean = sum(present) / len(present) if present else None
        cells = ["" if v is None else f"{v:.2f}" for v in [*vals, mean]]
        lines.append(f"| {alpha:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_interpolation(path: Mapping[str, Any], png: str | os.PathLike, title: str = "") -> Path:
    """Accuracy against alpha per task (and the mean), as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.subplots()
    alphas = path["alphas"]
    means: list[list[float]] = [[] for _ in alphas]
    for task, values in path["scores"].items():
        pts = [(a, v) for a, v in zip(alphas, values) if v is not None]
        if not pts:
            continue
        ax.plot([a for a, _ in pts], [v for _, v in pts], marker="o", label=task)
        for i, v in enumerate(values):
            if v is not None:
                means[i].append(v)
    mean_pts = [(a, sum(m) / len(m)) for a, m in zip(alphas, means) if m]
    if len(path["scores"]) > 1 and mean_pts:
        ax.plot([a for a, _ in mean_pts], [v for _, v in mean_pts], color="black", linewidth=2.5, label="mean")
    ax.set_xlabel("alpha (0 = base, 1 = fine-tuned)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_xlim(min(alphas) - 0.03, max(alphas) + 0.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "WiSE-FT: accuracy along the weight-space path", fontsize=10)
    fig.tight_layout()
    atomic_save(png, lambda f: fig.savefig(f, format="png"))
    return Path(png)

"""Reports of zero-shot results: a markdown table beside the paper's numbers, confusion-matrix PNGs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.io import atomic_save
from focusclip.zeroshot.metrics import headline
from focusclip.zeroshot.tasks import Task, headline_spec, load_registry

_PAPER_COLUMNS = (("chance", "chance (paper)"), ("clip", "CLIP baseline (paper)"), ("focusclip", "FocusCLIP (paper)"))


def confusion_path(results_path: str | os.PathLike, task_name: str, fingerprint: str) -> Path:
    """``<results stem>_confusion/<task>__<model>.png`` next to the results file."""
    p = Path(results_path)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_name)
    return p.parent / f"{p.stem}_confusion" / f"{safe}__{fingerprint}.png"


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows = true class) as a PNG; class names shown up to 60 classes."""
    from matplotlib.figure import Figure

    n = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, np.maximum(rows, 1), dtype=float)
    size = min(4 + 0.28 * n, 24)
    fig = Figure(figsize=(size, size), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 60:
        ax.set_xticks(range(n), labels=class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels=class_names, fontsize=7)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return Path(path)


def _fmt(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else f"{v:.2f}"


def markdown_table(data: Mapping[str, Any], fingerprint: str, registry: Mapping[str, Task] | None = None,
                   spec: Mapping[str, Any] | None = None) -> str:
    """Per task (this model): n, top-1, accuracy at the paper's k, mean per-class recall, and the paper's
    chance / CLIP / FocusCLIP numbers; then the headline aggregate beside the published one."""
    registry = load_registry() if registry is None else registry
    spec = headline_spec() if spec is None else spec
    entries = [e for e in data["results"].values() if e.get("model") == fingerprint]
    order = {name: i for i, name in enumerate(registry)}
    entries.sort(key=lambda e: (order.get(e["task"], len(order)), e["task"]))
    header = ["task", "group", "n", "top-1", "acc@k", "k", "mean class recall"] + [c[1] for c in _PAPER_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in entries:
        paper = registry[e["task"]].paper if e["task"] in registry else {}
        m = e["metrics"]
        lines.append("| " + " | ".join([e["task"], e.get("group", ""), str(e["n"]), _fmt(m["top1"]),
                                        _fmt(m["acc"]), str(e["k"]), _fmt(m["mean_per_class_recall"])]
                                       + [_fmt(paper.get(c)) for c, _ in _PAPER_COLUMNS]) + " |")
    ours = headline({e["task"]: e["metrics"]["acc"] for e in entries}, spec["groups"])
    published = {c: headline({t.name: t.paper[c] for t in registry.values() if c in t.paper}, spec["groups"])
                 for c, _ in _PAPER_COLUMNS}
    lines.append("| **headline** | activity+age+emotion | | | " + _fmt(ours["headline"]) + " | | | "
                 + " | ".join(_fmt(published[c]["headline"]) for c, _ in _PAPER_COLUMNS) + " |")
    notes = ["", "acc@k is the paper's metric (accuracy at the task's k); numbers are percentages.",
             "headline = mean of the activity (Stanford40), age (EMOTIC, LAGENDA body, LAGENDA face, UTKFace) "
             "and emotion (EMOTIC, FER2013) means, as in the paper's abstract "
             f"(published: CLIP {spec.get('published', {}).get('clip', '')}, "
             f"FocusCLIP {spec.get('published', {}).get('focusclip', '')})."]
    if ours["missing"]:
        notes.append(f"Our headline is over the tasks present; missing: {', '.join(ours['missing'])} "
                     "(not comparable with the published number).")
    return "\n".join(lines + notes) + "\n"

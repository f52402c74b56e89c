"""Zero-shot metrics from ranked predictions: top-k accuracy, mean per-class recall, confusion, headline.

Predictions are ``topk`` (N, K) class indices, best first; labels are one tuple of class indices per
sample (one index for single-label tasks; several for multi-label ones, where a sample counts as a hit
at k when any of its labels is among its top k). All numbers are percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from focusclip.errors import UsageError


def topk_hits(topk: np.ndarray, labels: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Boolean (N,): whether any of sample i's labels is among its first ``k`` predictions."""
    if len(topk) != len(labels):
        raise UsageError(f"{len(topk)} predictions but {len(labels)} labels")
    if k > topk.shape[1]:
        raise UsageError(f"top-{k} asked but only {topk.shape[1]} predictions kept per sample")
    head = topk[:, :k]
    return np.array([bool(set(head[i].tolist()) & set(lab)) for i, lab in enumerate(labels)], dtype=bool)


def accuracy(topk: np.ndarray, labels: Sequence[Sequence[int]], k: int = 1) -> float:
    """Top-k accuracy in percent."""
    if len(labels) == 0:
        return float("nan")
    return 100.0 * float(topk_hits(topk, labels, k).mean())


def per_class_recall(top1: np.ndarray, labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Recall (percent) of each class: of the samples labelled c, the share whose top-1 prediction is c.
    NaN for classes without samples."""
    hit = np.zeros(num_classes)
    count = np.zeros(num_classes)
    for p, lab in zip(top1.tolist(), labels):
        for c in lab:
            count[c] += 1
            hit[c] += p == c
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 100.0 * hit / np.maximum(count, 1), np.nan)


def mean_per_class_recall(top1: np.ndarray, labels: Sequence[Sequence[int]], num_classes: int) -> float:
    """Mean of :func:`per_class_recall` over the classes that have samples."""
    r = per_class_recall(top1, labels, num_classes)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def confusion_matrix(top1: np.ndarray, labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = top-1 prediction. A multi-label sample adds one count
    to the row of each of its labels."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, lab in zip(top1.tolist(), labels):
        for c in lab:
            cm[c, p] += 1
    return cm


def task_metrics(topk: np.ndarray, labels: Sequence[Sequence[int]], num_classes: int, k: int) -> dict[str, float]:
    """``top1``, ``top<k>`` for k in {3, 5, task k} below the class count, ``acc`` (= top-<task k>, the
    paper's number) and ``mean_per_class_recall`` (top-1)."""
    out = {"top1": accuracy(topk, labels, 1)}
    for kk in sorted({3, 5, k}):
        if 1 < kk <= min(num_classes, topk.shape[1]):
            out[f"top{kk}"] = accuracy(topk, labels, kk)
    out["acc"] = out[f"top{min(k, num_classes)}"] if min(k, num_classes) > 1 else out["top1"]
    out["mean_per_class_recall"] = mean_per_class_recall(topk[:, 0], labels, num_classes)
    return out


def headline(scores: Mapping[str, float], groups: Mapping[str, Sequence[str]]) -> dict:
    """The paper's headline: the mean over groups of each group's mean task score.

    Computed over the tasks present in ``scores``; ``missing`` lists the absent ones and ``complete``
    says whether the number is comparable with the published one.
    """
    group_means: dict[str, float | None] = {}
    missing: list[str] = []
    for g, names in groups.items():
        present = [scores[n] for n in names if n in scores and scores[n] == scores[n]]
        missing += [n for n in names if n not in scores]
        group_means[g] = float(np.mean(present)) if present else None
    vals = [v for v in group_means.values() if v is not None]
    return {"headline": float(np.mean(vals)) if vals else None, "groups": group_means,
            "missing": missing, "complete": not missing}

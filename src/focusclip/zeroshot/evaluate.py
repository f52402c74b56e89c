"""Batched zero-shot evaluation: class prompts encoded once per task, images batched through a
DataLoader, ranked predictions -> metrics; results keyed by task name + model fingerprint, so an
existing results file is extended rather than recomputed.

``evaluate(model, tokenizer, transform, tasks, data_root, ...) -> dict``. The model is anything with
``encode_image(images, normalize=True)`` and ``encode_text(tokens, normalize=True)`` (a FocusCLIP,
or a hand-made module in tests); ``tokenizer(list_of_str)`` returns a dict of tensors or a tensor;
``transform(pil_image)`` returns Tensor[3, S, S].

``focus="boxes"`` evaluates with focus at inference instead of cropping: each sample's person boxes (the
crop boxes Stanford40, EMOTIC, LAGENDA and CUB ship, the synthetic world's annotated subjects) become a
heatmap over the whole image that the model focuses on (``model.encode_image(images, heatmap=...)``; a
model that cannot focus at inference sees the whole image). Its results are kept under the model's
fingerprint with a ``+focus-boxes`` suffix. ``focus_mode`` (one of
:data:`~focusclip.model.focus.FOCUS_AT_INFERENCE`) focuses any model on the boxes that way instead
(``encode_image(..., focus=focus_mode)``: attention on any ViT, crop, blur, circle, dim; docs/focus.md);
its results get a ``+focus-boxes-<mode>`` suffix.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import inspect
import logging
import os
import random
import string
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from focusclip.errors import InputError, UsageError
from focusclip.io import atomic_write_json, read_json
from focusclip.progress import Progress
from focusclip.runtime import autocast, resolve_device
from focusclip.zeroshot.classifier import build_zero_shot_classifier, encode_images
from focusclip.zeroshot.datasets import DATASETS, DatasetAbsent, LoadedSet, Sample, load_benchmark
from focusclip.zeroshot.datasets.common import DatasetError, DatasetLayoutError
from focusclip.zeroshot.image_cache import EvalImageCache, cached_batches, sample_key
from focusclip.zeroshot.images import SampleImages
from focusclip.zeroshot.metrics import confusion_matrix, headline, task_metrics
from focusclip.zeroshot.tasks import Task, headline_spec

logger = logging.getLogger(__name__)

RESULTS_VERSION = 1
MAX_K = 5
FOCUS_SOURCES = ("boxes",)  #: where evaluation with focus takes its heatmaps from


# ------------------------------------------------------------------------------------ small helpers
def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the model's weights (names, shapes and values) and class name."""
    h = hashlib.blake2b(digest_size=8)
    h.update(type(model).__qualname__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_data_root(data_root: str | os.PathLike | Mapping[str, str]) -> None:
    """A ``data_root`` template may only hold the ``{dataset}`` placeholder."""
    if isinstance(data_root, Mapping):
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(str(data_root)) if f is not None]
    except ValueError as e:
        raise UsageError(f"data root {str(data_root)!r}: not a valid template ({e}); write {{dataset}} for the "
                         "dataset's name, e.g. 'data/{dataset}'") from None
    other = [f for f in fields if f != "dataset"]
    if other:
        raise UsageError(f"data root {str(data_root)!r}: unknown placeholder {{{other[0]}}}; the only one is "
                         "{dataset}, e.g. 'data/{dataset}'")


def dataset_roots(data_root: str | os.PathLike | Mapping[str, str], dataset: str) -> list[Path]:
    """Where a dataset may be, in order: ``data_root`` is a template with ``{dataset}``, a mapping dataset ->
    folder, or a folder holding one folder per dataset; a folder holding no dataset folder may also be the
    dataset itself (the demo's ``runs/demo/data`` is the synthetic dataset)."""
    if isinstance(data_root, Mapping):
        if dataset not in data_root:
            raise DatasetAbsent(f"{dataset}: no root given")
        return [Path(data_root[dataset])]
    s = str(data_root)
    if "{dataset}" in s:
        return [Path(s.format(dataset=dataset))]
    folder = Path(s)
    if any((folder / name).is_dir() for name in DATASETS):  # a folder of datasets: look nowhere else
        return [folder / dataset]
    return [folder / dataset, folder]


def dataset_root(data_root: str | os.PathLike | Mapping[str, str], dataset: str) -> Path:
    """The first place :func:`dataset_roots` names."""
    return dataset_roots(data_root, dataset)[0]


def result_key(task_name: str, fingerprint: str) -> str:
    return f"{task_name}@{fingerprint}"


def subsample(samples: list[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """At most ``limit`` samples, a fixed random subset kept in dataset order."""
    if limit is None or limit >= len(samples):
        return samples
    keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in keep]


# ------------------------------------------------------------------------------------- the encoders
@torch.inference_mode()
def rank_images(model: Any, transform: Callable, samples: Sequence[Sample], class_emb: torch.Tensor,
                device: torch.device, batch_size: int = 64, workers: int = 2, desc: str = "eval",
                kmax: int = MAX_K, focus: bool = False, image_cache: EvalImageCache | None = None,
                features: dict | None = None, focus_mode: str | None = None) -> np.ndarray:
    """(N, kmax) class indices, best first, for every sample (batched through a DataLoader; decoded
    once per ``image_cache`` when the transform is deterministic, see :mod:`focusclip.zeroshot.image_cache`).
    ``features`` (a dict, for one model) keeps each image's features: tasks on the same images encode
    each image once. With ``focus``, each image is focused on the heatmap of its subject boxes (neither
    cache applies: they hold plain images), by ``focus_mode`` when given (else the model's own mechanism)."""
    kmax = min(kmax, class_emb.shape[0])
    if focus or features is None or getattr(transform, "pixel_key", None) is None:
        batches = _batches(transform, samples, device, batch_size, workers, image_cache, focus)
        return _rank(model, batches, len(samples), class_emb, device, desc, kmax, focus_mode)
    keys = [(transform.pixel_key, sample_key(s)) for s in samples]  # type: ignore[attr-defined]
    todo = [i for i, k in enumerate(keys) if k not in features]
    if todo:
        feats = _encode(model, transform, [samples[i] for i in todo], device, batch_size, workers, desc,
                        image_cache)
        features.update({keys[i]: f for i, f in zip(todo, feats, strict=True)})
    emb = torch.stack([features[k] for k in keys]).to(device)
    return (emb @ class_emb.T).topk(kmax, dim=-1).indices.cpu().numpy()


def _batches(transform: Callable, samples: Sequence[Sample], device: torch.device, batch_size: int, workers: int,
             image_cache: EvalImageCache | None, focus: bool = False) -> Any:
    """``(images, idx)`` batches, from ``image_cache`` when it applies; with ``focus``
    ``(images, heatmaps, has_heatmap, idx)``."""
    pin = device.type == "cuda"
    if not focus and image_cache is not None and getattr(transform, "pixel_key", None) is not None:
        return cached_batches(image_cache, transform, samples, batch_size, workers, pin)
    return torch.utils.data.DataLoader(SampleImages(samples, transform, focus=focus), batch_size=batch_size,
                                       num_workers=workers, shuffle=False, pin_memory=pin, persistent_workers=False)


def _features(model: Any, batch: Sequence[torch.Tensor], device: torch.device,
              focus_mode: str | None = None) -> torch.Tensor:
    """Normalised float32 image features of one batch of :func:`_batches` (focused where it has heatmaps)."""
    images, *heat = batch
    images = images.to(device, non_blocking=True)
    if heat:
        return encode_images(model, images, heat[0].to(device), heat[1], focus=focus_mode).float()
    return model.encode_image(images, normalize=True).float()


def _encode(model: Any, transform: Callable, samples: Sequence[Sample], device: torch.device, batch_size: int,
            workers: int, desc: str, image_cache: EvalImageCache | None) -> torch.Tensor:
    """(N, D) normalised image features (float32) of ``samples``, in order."""
    out: torch.Tensor | None = None
    with Progress(len(samples), desc, unit="img") as prog, autocast(device):
        for *batch, idx in _batches(transform, samples, device, batch_size, workers, image_cache):
            feats = _features(model, batch, device)
            if out is None:
                out = torch.zeros(len(samples), feats.shape[1], device=feats.device)
            out[idx.to(feats.device)] = feats
            prog.update(len(idx))
    assert out is not None
    return out


def _rank(model: Any, batches: Any, n: int, class_emb: torch.Tensor, device: torch.device, desc: str,
          kmax: int, focus_mode: str | None = None) -> np.ndarray:
    out = np.zeros((n, kmax), dtype=np.int64)
    with Progress(n, desc, unit="img") as prog, autocast(device):
        for *batch, idx in batches:
            feats = _features(model, batch, device, focus_mode)
            top = (feats @ class_emb.T).topk(kmax, dim=-1).indices
            out[idx.numpy()] = top.cpu().numpy()
            prog.update(len(idx))
    return out


# ----------------------------------------------------------------------------------------- one task
def focus_options(task: Task, options: Mapping[str, Any]) -> dict[str, Any]:
    """Loader options for evaluation with focus: a loader that reads its person boxes only for cropping
    (``crop=False`` by default: Stanford40, CUB) is asked to read them."""
    from focusclip.zeroshot.datasets import DATASETS

    crop = inspect.signature(DATASETS[task.dataset]).parameters.get("crop")
    if crop is not None and crop.default is False and "crop" not in options:
        return {**options, "crop": True}
    return dict(options)


def as_focus_sample(sample: Sample) -> Sample:
    """The sample shown whole, its crop box (if any) becoming a subject box to focus on."""
    if sample.box is None:
        return sample
    return dataclasses.replace(sample, box=None, subject=sample.subject or (sample.box,))


def _labels_as_indices(task: Task, classes: list[str], data: LoadedSet) -> list[tuple[int, ...]]:
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for s in data.samples:
        try:
            out.append(tuple(index[lab] for lab in s.labels))
        except KeyError as e:
            raise DatasetError(f"{task.name}: sample {s.id!r} has label {e.args[0]!r}, which is not among the "
                               f"task's classes {classes}") from None
    return out


def evaluate_task(model: Any, tokenizer: Callable, transform: Callable, task: Task, root: str | os.PathLike,
                  device: torch.device, batch_size: int = 64, workers: int = 2, limit: int | None = None,
                  ensemble: bool = False, dataset_options: Mapping[str, Any] | None = None,
                  focus: str | None = None, image_cache: EvalImageCache | None = None,
                  features: dict | None = None, focus_mode: str | None = None
                  ) -> tuple[dict[str, Any], np.ndarray, list[str]]:
    """Evaluate one task on the dataset at ``root``: (result entry, confusion matrix, class keys).
    ``dataset_options`` are extra loader options (e.g. FER+'s ``fer2013_csv``) over the task's own;
    ``focus`` (``"boxes"``) focuses on the person boxes instead of cropping to them (by ``focus_mode``
    when given)."""
    t0 = time.monotonic()
    options = {**task.options, **(dataset_options or {})}
    data = load_benchmark(task.dataset, root, task.split, **(focus_options(task, options) if focus else options))
    if focus:
        data.samples = [as_focus_sample(s) for s in data.samples]
    classes = list(task.classes) if task.classes is not None else data.classes
    if not classes:
        raise DatasetError(f"{task.name}: the task lists no classes and dataset {task.dataset} gives none")
    total = len(data.samples)
    data.samples = subsample(data.samples, limit)
    if not data.samples:
        raise DatasetError(f"{task.name}: no samples in {root} (split {task.split!r}; skipped: {data.skipped})")
    labels = _labels_as_indices(task, classes, data)
    if not task.multilabel and any(len(lab) != 1 for lab in labels):
        raise DatasetError(f"{task.name}: multi-label samples in a single-label task")
    class_emb = build_zero_shot_classifier(model, tokenizer, task.prompts(classes, ensemble=ensemble), device)
    t1 = time.monotonic()
    topk = rank_images(model, transform, data.samples, class_emb, device, batch_size, workers,
                       desc=f"eval {task.name}", kmax=max(MAX_K, task.k), focus=bool(focus),
                       image_cache=image_cache, features=features, focus_mode=focus_mode if focus else None)
    seconds = time.monotonic() - t1
    metrics = task_metrics(topk, labels, len(classes), task.k)
    entry = {
        "task": task.name, "dataset": task.dataset, "split": task.split, "group": task.group,
        "k": task.k, "multilabel": task.multilabel, "num_classes": len(classes), "n": len(data.samples),
        "n_available": total, "limit": limit, "skipped": dict(data.skipped), "ensemble": ensemble, "focus": focus,
        **({"focus_mode": focus_mode} if focus and focus_mode else {}),
        "prompts": task.prompts(classes[:1], ensemble=ensemble)[0], "task_hash": task.fingerprint(),
        "metrics": metrics, "seconds": round(time.monotonic() - t0, 3),
        "images_per_s": round(len(data.samples) / max(seconds, 1e-9), 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return entry, confusion_matrix(topk[:, 0], labels, len(classes)), classes


# ---------------------------------------------------------------------------------- results file
def read_eval_results(path: str | os.PathLike) -> dict[str, Any]:
    """An evaluation results file (empty results when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return {"version": RESULTS_VERSION, "results": {}, "headline": {}}
    data = read_json(path, "results file")
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(f"{path}: not a focusclip results file (expected an object with 'results')")
    data.setdefault("headline", {})
    return data


def _reusable(entry: Mapping[str, Any] | None, task: Task, limit: int | None, ensemble: bool,
              focus: str | None = None, focus_mode: str | None = None) -> bool:
    return bool(entry) and entry.get("task_hash") == task.fingerprint() and entry.get("limit") == limit \
        and entry.get("ensemble", False) == ensemble and entry.get("focus") == focus \
        and entry.get("focus_mode") == (focus_mode if focus else None)


def model_headline(results: Mapping[str, Any], fingerprint: str,
                   spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The paper's headline aggregate over the tasks of ``fingerprint`` present in ``results``."""
    spec = headline_spec() if spec is None else spec
    scores = {e["task"]: e["metrics"]["acc"] for e in results.values() if e.get("model") == fingerprint}
    return headline(scores, spec["groups"])


# --------------------------------------------------------------------------------------- evaluate
def evaluate(model: Any, tokenizer: Callable, transform: Callable, tasks: Sequence[Task],
             data_root: str | os.PathLike | Mapping[str, str], *, batch_size: int = 64, workers: int = 2,
             device: str | torch.device = "auto", limit: int | None = None, ensemble: bool = False,
             out: str | os.PathLike | None = None, force: bool = False, model_id: str | None = None,
             model_name: str = "", confusion: bool = True,
             dataset_options: Mapping[str, Mapping[str, Any]] | None = None,
             focus: str | None = None, image_cache: EvalImageCache | None = None,
             focus_mode: str | None = None) -> dict[str, Any]:
    """Evaluate ``tasks``; returns ``{"version", "results": {task@model: entry}, "headline": {model: ...},
    "model": <this model's fingerprint>, "skipped_tasks": [...]}``.

    Args:
        model, tokenizer, transform: the model, its tokenizer and evaluation transform (e.g. the fields of
            :func:`focusclip.model.factory.load_model_spec`'s answer).
        tasks: :class:`Task` objects, e.g. ``resolve_tasks("paper")``.
        data_root: where the datasets are: a template with ``{dataset}``, a folder of dataset folders, one
            dataset's folder, or a mapping dataset -> folder.
        batch_size, workers, device, limit: images per forward pass, loader processes, device, at most
            ``limit`` images per task (a fixed random subset).
        ensemble: average each class over the task's extra templates.
        out: a results JSON to extend (see below); None keeps the results in memory only.
        force, model_id, model_name, confusion, dataset_options, focus, image_cache: see below.

    Returns:
        the results dict above (also written to ``out`` when given).

    Example::

        loaded = load_model_spec("runs/demo/model-final")
        data = evaluate(loaded.model, loaded.tokenizer, loaded.transform, resolve_tasks("synthetic"),
                        "runs/demo/data", out="results.json")

    With ``out``, existing results for the same task, model fingerprint, limit and task definition are
    kept (``force`` recomputes), the file is rewritten atomically after each task, and confusion-matrix
    PNGs go to ``<out stem>_confusion/``. Datasets whose root does not exist are skipped with one log line.
    ``dataset_options`` maps a dataset name to extra loader options (``{"ferplus": {"fer2013_csv": ...}}``).
    ``focus="boxes"``: focus on the person boxes instead of cropping (see the module docstring);
    ``focus_mode``: how (:data:`~focusclip.model.focus.FOCUS_AT_INFERENCE`; default the model's own
    mechanism, none for a model without one).
    Every image is decoded once per ``image_cache`` (pass one to share it across calls; by default the
    tasks of this call share a new one).
    """
    image_cache = EvalImageCache() if image_cache is None else image_cache
    check_data_root(data_root)
    if focus is not None and focus not in FOCUS_SOURCES:
        raise UsageError(f"focus must be one of {', '.join(FOCUS_SOURCES)}, got {focus!r}")
    if focus_mode is not None:
        from focusclip.model.focus.inference import resolve_focus

        if not focus:
            raise UsageError(f"focus_mode={focus_mode!r} needs focus='boxes' (the heatmaps to focus on)")
        resolve_focus(model, focus_mode)  # a mode this model cannot use fails before any work
    elif focus and not getattr(model, "focus_at_inference", False):
        logger.warning("this model's focus does not act at inference (roi.mode %s): with focus=%s it sees the "
                       "whole images, unfocused", _mode(model), focus)
    device = resolve_device(device)
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.to(device).eval()
    try:
        return _evaluate(model, tokenizer, transform, tasks, data_root, batch_size, workers, device, limit,
                         ensemble, out, force, model_id, model_name, confusion, dataset_options or {}, focus,
                         image_cache, focus_mode)
    finally:
        if was_training:  # e.g. called from the training loop: give the model back as it came
            model.train()


def _mode(model: Any) -> str:
    config = getattr(model, "config", None) or {}
    roi = config.get("roi") or {}
    return str(roi.get("mode", "highlight")) if roi.get("enabled") else "none"


def _evaluate(model: Any, tokenizer: Callable, transform: Callable, tasks: Sequence[Task],
              data_root: str | os.PathLike | Mapping[str, str], batch_size: int, workers: int,
              device: torch.device, limit: int | None, ensemble: bool, out: str | os.PathLike | None,
              force: bool, model_id: str | None, model_name: str, confusion: bool,
              dataset_options: Mapping[str, Mapping[str, Any]], focus: str | None,
              image_cache: EvalImageCache, focus_mode: str | None = None) -> dict[str, Any]:
    fp = model_id or (model_fingerprint(model) if isinstance(model, torch.nn.Module) else type(model).__name__)
    if focus:
        fp = f"{fp}+focus-{focus}" + (f"-{focus_mode}" if focus_mode else "")
    data = read_eval_results(out) if out else {"version": RESULTS_VERSION, "results": {}, "headline": {}}
    results = data["results"]
    absent: list[str] = []
    features: dict = {}  # this call's model: each image encoded once for all its tasks
    for task in tasks:
        key = result_key(task.name, fp)
        if not force and _reusable(results.get(key), task, limit, ensemble, focus, focus_mode):
            logger.info("%s: kept the existing result (%s = %.2f); --force recomputes", task.name,
                        "acc", results[key]["metrics"]["acc"])
            continue
        found = _evaluate_somewhere(model, tokenizer, transform, task, dataset_roots(data_root, task.dataset),
                                    device, batch_size, workers, limit, ensemble, dataset_options.get(task.dataset),
                                    focus, image_cache, features, focus_mode)
        if found is None:
            logger.warning("%s: skipped, dataset %s not found at %s", task.name, task.dataset,
                           dataset_root(data_root, task.dataset))
            absent.append(task.name)
            continue
        root, (entry, cm, classes) = found
        entry.update(model=fp, model_name=model_name, root=str(root))
        if out and confusion:
            from focusclip.zeroshot.report import confusion_path, plot_confusion

            png = confusion_path(out, task.name, fp)
            plot_confusion(cm, [task.text(c) for c in classes], png,
                           title=f"{task.name} ({model_name or fp}) top-1, n={entry['n']}")
            entry["confusion_png"] = os.path.relpath(png, Path(out).parent)
        results[key] = entry
        logger.info("%s: top1 %.2f | acc@%d %.2f | mean per-class recall %.2f | n=%d | %.1f img/s",
                    task.name, entry["metrics"]["top1"], task.k, entry["metrics"]["acc"],
                    entry["metrics"]["mean_per_class_recall"], entry["n"], entry["images_per_s"])
        data["headline"][fp] = model_headline(results, fp)
        if out:
            atomic_write_json(out, data)
    data["headline"][fp] = model_headline(results, fp)
    data["skipped_tasks"] = absent
    data["model"] = fp  # the fingerprint of this call's model: results keys are "<task>@<model>"
    if out and (results or Path(out).exists()):  # nothing evaluated and no earlier results: write nothing
        atomic_write_json(out, data)
    return data


def _evaluate_somewhere(model: Any, tokenizer: Callable, transform: Callable, task: Task, roots: list[Path],
                        device: torch.device, batch_size: int, workers: int, limit: int | None, ensemble: bool,
                        options: Mapping[str, Any] | None, focus: str | None, image_cache: EvalImageCache,
                        features: dict | None = None, focus_mode: str | None = None) -> tuple[Path, tuple] | None:
    """Evaluate the task at the first root that holds its dataset (None when none does). Only the first
    root's layout errors are errors; a fallback root that does not hold the dataset counts as absent."""
    for i, root in enumerate(roots):
        try:
            return root, evaluate_task(model, tokenizer, transform, task, root, device, batch_size, workers,
                                       limit, ensemble, options, focus, image_cache, features, focus_mode)
        except DatasetAbsent:
            continue
        except DatasetLayoutError:
            if i == 0 and root.exists():
                raise
    return None

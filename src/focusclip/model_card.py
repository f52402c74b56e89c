"""A Hugging Face model card (``README.md`` with YAML front matter) written from what a saved model knows.

* its ``config.json``: the towers and where their weights came from, the focus mechanism (``roi.mode``),
  the embedding size, the focusclip version that wrote it and the training step;
* the run's ``config.yaml`` next to the model folder (``RUN/model-final`` -> ``RUN/config.yaml``): the
  training data and recipe;
* zero-shot results for the model's fingerprint (:func:`focusclip.zeroshot.evaluate.model_fingerprint`):
  the results JSON files ``focusclip eval`` / the demo write, given explicitly or found beside the model
  (the model folder, its run folder and the two folders above, and their ``results/`` folders); training-time
  results (``RUN/zeroshot.json``, keyed ``step-N``) count for the step the model was exported at.
  They become a results table and the Hub's ``model-index`` metadata (``huggingface_hub.EvalResult``).

The licence is left to the author: the card says where to set it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TASK_TYPE = "zero-shot-image-classification"
MAX_RESULTS_FILE = 32 * 1024 * 1024  #: bigger JSON files beside a model are not read as results
_SEARCH_LEVELS = 4                   #: the model folder and three folders above it


# ---------------------------------------------------------------------------------------- results
def _results_candidates(model_dir: Path) -> list[Path]:
    found: list[Path] = []
    folder = model_dir.resolve()
    for _ in range(_SEARCH_LEVELS):
        for where in (folder, folder / "results"):
            if where.is_dir():
                found += sorted(p for p in where.glob("*.json") if p.name != "config.json")
        if folder.parent == folder:
            break
        folder = folder.parent
    return list(dict.fromkeys(found))


def _read_results(path: Path) -> Mapping[str, Any] | None:
    try:
        if path.stat().st_size > MAX_RESULTS_FILE:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("results"), dict):
        return data
    return None


def find_results(model_dir: str | os.PathLike, fingerprint: str, files: Iterable[str | os.PathLike] | None = None,
                 step: int | None = None) -> list[dict[str, Any]]:
    """Zero-shot result entries of the model with ``fingerprint`` (also ``fingerprint+focus-...``), newest
    per task and focus, each with ``"source"`` (the file's name). ``files``: results files to read instead of
    searching beside the model; ``step``: the training step the model was exported at (matches ``step-N``
    entries of its run's ``zeroshot.json``)."""
    model_dir = Path(model_dir)
    explicit = files is not None
    paths = [Path(f) for f in files] if explicit else _results_candidates(model_dir)
    run_zeroshot = (model_dir.resolve().parent / "zeroshot.json")
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        data = _read_results(path)
        if data is None:
            if explicit:
                from focusclip.errors import InputError

                raise InputError(f"{path}: not a focusclip results file (expected an object with 'results')")
            continue
        ids = {fingerprint}
        if step is not None and path.resolve() == run_zeroshot:
            ids.add(f"step-{step}")
        for entry in data["results"].values():
            if not isinstance(entry, dict) or "task" not in entry or "metrics" not in entry:
                continue
            model = str(entry.get("model", ""))
            base, plus, variant = model.partition("+")
            if base not in ids:
                continue
            key = (entry["task"], variant if plus else "")
            if key not in best or str(entry.get("date", "")) >= str(best[key].get("date", "")):
                best[key] = {**entry, "source": path.name, "focus_variant": variant if plus else ""}
    return [best[k] for k in sorted(best)]


# ---------------------------------------------------------------------------------------- the card
def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, int | float) and v == v else ""


def _towers(config: Mapping[str, Any], sources: Mapping[str, Any]) -> list[str]:
    clip = config.get("clip") or {}
    if clip:
        kind = "open_clip" if clip.get("open_clip_model") else "Hugging Face CLIPModel"
        arch = clip.get("open_clip_model") or clip.get("hf_clip_model")
        src = sources.get("clip")
        return [f"- **Image and text towers**: a whole {kind} `{arch}`"
                + (f", initialised from `{src}`" if src else "") + " (towers, projections and logit scale)"]
    lines = []
    vision, text = config.get("vision") or {}, config.get("text") or {}
    v_arch = vision.get("timm_model_name") or vision.get("name") or "?"
    lines.append(f"- **Image tower**: timm `{v_arch}` at {vision.get('image_size', '?')} px"
                 + (f", initialised from `{sources['vision']}`" if sources.get("vision") else ""))
    t_arch = text.get("hf_model_name") or (text.get("hf_config") or {}).get("model_type") or "?"
    lines.append(f"- **Text tower**: Hugging Face `{t_arch}`, {text.get('pooling', 'mean')} pooling, "
                 f"{text.get('context_length', '?')} tokens"
                 + (f", initialised from `{sources['text']}`" if sources.get("text") else ""))
    return lines


def _tower_sources(saved: Mapping[str, Any]) -> dict[str, Any]:
    """Where the towers' weights came from: recorded by save_model, else the registered config of that name."""
    sources = dict(saved.get("sources") or {})
    if sources:
        return sources
    name = (saved.get("model") or {}).get("name")
    try:
        from focusclip.model.factory import get_model_config, list_models

        if name in list_models():
            reg = get_model_config(name)
            sources = {"vision": (reg.get("vision") or {}).get("weights"),
                       "text": (reg.get("text") or {}).get("weights"),
                       "clip": (reg.get("clip") or {}).get("pretrained")}
    except Exception:  # noqa: BLE001 - a card is still written without the registry
        return {}
    return {k: v for k, v in sources.items() if v and v is not True}


def _focus(config: Mapping[str, Any]) -> tuple[str, list[str]]:
    roi = config.get("roi") or {}
    if not roi.get("enabled"):
        return "none", ["- **Focus**: none (a plain CLIP-style model without the ROI branch)"]
    mode = str(roi.get("mode", "highlight"))
    from focusclip.model.focus import FOCUS_MODES

    at_inference = bool(mode in FOCUS_MODES and getattr(FOCUS_MODES[mode], "at_inference", False))
    shared = "shares the image tower" if roi.get("shared", True) else "has its own copy of the image tower"
    return mode, [f"- **Focus**: ROI branch with focus mode `{mode}` ({shared}); "
                  + ("the model can focus on a given person at inference (`--keypoints`/`--boxes`/`--detect`)"
                     if at_inference else "used in training; at inference the model answers as a plain CLIP")]


def _public_path(value: Any) -> str:
    """A data path for the card: relative paths as written, absolute ones by their last two parts."""
    if not value:
        return ""
    p = Path(str(value))
    return str(Path(*p.parts[-2:])) if p.is_absolute() else str(p)


def _recipe(run: Mapping[str, Any] | None, training: Mapping[str, Any]) -> list[str]:
    if not run:
        lines = ["No run configuration was found next to the model (`RUN/config.yaml`)."]
        if training:
            lines.append(f"The model was exported at step {training.get('step', '?')} "
                         f"(epoch {training.get('epoch', '?')}) of run `{training.get('run', '?')}`.")
        return lines
    data, model, loss, optim = (dict(run.get(k) or {}) for k in ("data", "model", "loss", "optim"))
    rows = [
        ("run", run.get("name")),
        ("training data", f"{_public_path(data.get('train'))} ({data.get('format', 'records')})"
         if data.get("train") else data.get("format")),
        ("validation data", _public_path(data.get("val"))),
        ("ROI heatmaps", data.get("heatmap")), ("captions", data.get("captions")),
        ("start model", f"{model.get('name')} (weights: {model.get('pretrained') or 'its default'})"),
        ("epochs / max steps", f"{run.get('epochs')} / {run.get('max_steps') or '-'}"),
        ("batch size", f"{run.get('batch_size')} (accumulation {run.get('accum_steps', 1)})"),
        ("precision", run.get("precision")),
        ("loss", f"{loss.get('name')} (temperature {loss.get('temperature')}, weights {loss.get('weights')})"),
        ("optimizer", f"{optim.get('name')}, lr {optim.get('lr')}, {optim.get('schedule')} schedule, "
                      f"warm-up {optim.get('warmup_steps')}, weight decay {optim.get('weight_decay')}"),
        ("frozen towers", ", ".join(n for n, k in (("image", "lock_image"), ("text", "lock_text")) if model.get(k))
         or "none"),
        ("seed", run.get("seed")),
    ]
    if training:
        rows.append(("exported at", f"step {training.get('step')}, epoch {training.get('epoch')}"))
    return ["| setting | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows if v not in (None, "")]


def _results_table(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| task | dataset | group | n | acc@k | k | top-1 | mean class recall | focus | from |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for e in entries:
        m = e["metrics"]
        n = f"{e.get('n')}" + (f" of {e['n_available']}" if e.get("n_available") not in (None, e.get("n")) else "")
        lines.append(f"| {e['task']} | {e.get('dataset', '')} | {e.get('group', '')} | {n} | {_fmt(m.get('acc'))} | "
                     f"{e.get('k', '')} | {_fmt(m.get('top1'))} | {_fmt(m.get('mean_per_class_recall'))} | "
                     f"{e.get('focus_variant') or 'no'} | {e.get('source', '')} |")
    return lines


def _eval_results(entries: Sequence[Mapping[str, Any]]) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []
    for e in entries:
        k = int(e.get("k") or 1)
        config = ", ".join(x for x in (f"focus-{e['focus_variant']}" if e.get("focus_variant") else "",
                                        f"subset of {e['n']}" if e.get("limit") else "") if x) or None
        out.append(EvalResult(task_type=TASK_TYPE, task_name="Zero-shot image classification",
                              dataset_type=str(e.get("dataset") or e["task"]), dataset_name=str(e["task"]),
                              dataset_split=e.get("split") or None, metric_type="accuracy",
                              metric_name="top-1 accuracy" if k == 1 else f"top-{k} accuracy",
                              metric_value=round(float(e["metrics"]["acc"]), 2), metric_config=config))
    return out


def read_run_config(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training run's ``config.yaml`` next to a model folder (``RUN/model-final``), if there is one."""
    path = Path(model_dir).resolve().parent / "config.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        logger.warning("%s: not readable (%s); the card has no training recipe", path, e)
        return None
    return data if isinstance(data, dict) else None


def model_card(model_dir: str | os.PathLike, *, results: Sequence[str | os.PathLike] | None = None,
               repo_id: str | None = None, fingerprint: str | None = None) -> str:
    """The model card of a saved model folder, as ``README.md`` text (YAML front matter + markdown).

    ``results``: results JSON files to take the zero-shot numbers from (default: found beside the model);
    ``fingerprint``: the model's weights fingerprint (default: computed by loading the model)."""
    from huggingface_hub import ModelCardData

    from focusclip.model.factory import _read_saved_config

    folder = Path(model_dir)
    saved = _read_saved_config(folder)
    config = dict(saved["model"])
    training = dict(saved.get("training") or {})
    if fingerprint is None:
        from focusclip.model.factory import load_model
        from focusclip.zeroshot.evaluate import model_fingerprint

        fingerprint = model_fingerprint(load_model(folder))
    entries = find_results(folder, fingerprint, results, step=training.get("step"))
    run = read_run_config(folder)
    name = repo_id.split("/")[-1] if repo_id else folder.name
    mode, focus_lines = _focus(config)
    sources = _tower_sources(saved)
    base_models = [s.split("hf-hub:", 1)[-1] for s in sources.values()
                   if isinstance(s, str) and s.count("/") == 1 and not s.startswith(("package:", "/", "."))
                   and not Path(s).exists()]
    data = ModelCardData(
        library_name="focusclip", pipeline_tag=TASK_TYPE, model_name=name,
        tags=["focusclip", "clip", "vision", "zero-shot-image-classification", f"focus-{mode}"],
        base_model=base_models or None, eval_results=_eval_results(entries) or None,
    )
    load_name = f"hf-hub:{repo_id}" if repo_id else str(folder)
    body = [
        f"# {name}", "",
        "A FocusCLIP model (the `focusclip` library): CLIP-style image-text embeddings trained "
        "with subject-level guidance (ROI heatmaps of the people in the image and descriptions of their poses).",
        f"Written by focusclip {saved.get('version', '?')}; config `{config.get('name', '?')}`"
        + (f" ({str(config['description']).rstrip('.')})" if config.get("description") else "") + ".", "",
        "## Model", "",
        *_towers(config, sources),
        f"- **Embedding size**: {config.get('embed_dim', 'from the checkpoint')}",
        *focus_lines,
        f"- **Weights fingerprint**: `{fingerprint}` (the key of its results in `focusclip eval` files)", "",
        "## Training", "",
        *_recipe(run, training), "",
        "## Zero-shot results", "",
    ]
    if entries:
        body += [*_results_table(entries), "",
                 "acc@k is the accuracy at the task's k (the FocusCLIP paper's metric), in percent; numbers come "
                 "from `focusclip eval` results files for this model's fingerprint."]
    else:
        body += ["No zero-shot results were found for this model's fingerprint. Run `focusclip eval --model "
                 f"{load_name} --out results.json` and push again with `--results results.json`."]
    body += [
        "", "## How to use", "",
        "```bash", "pip install focusclip",
        f"focusclip predict photo.jpg --model {load_name} --labels \"running, sitting, dancing\"",
        f"focusclip eval --model {load_name} --tasks paper --data-root data/{{dataset}}", "```", "",
        "```python", "import focusclip", "",
        f"model = focusclip.load_model(\"{load_name}\")  # downloaded once into the Hugging Face cache",
        f"clf = focusclip.ZeroShotClassifier.from_pretrained(\"{load_name}\", [\"running\", \"sitting\"])",
        "print(clf.predict([\"photo.jpg\"]))", "```", "",
        "`hf-hub:ORG/NAME@REVISION` loads a branch, tag or commit; with `HF_HUB_OFFLINE=1` the cached copy is used.",
        "", "## License", "",
        "Not set by focusclip: the author adds `license:` to the front matter above (e.g. `mit`, `apache-2.0`, "
        "`cc-by-4.0`) and states here the terms of the weights, of the training data and of the towers' "
        "original weights.", "",
    ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)

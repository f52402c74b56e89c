"""The steps every experiment recipe shares: build the data, train an arm, evaluate an arm, summarise
over seeds, tell a real difference from noise, plot.

A recipe (:mod:`.demo`, :mod:`.ablate`) is a short sequence of these calls with its own defaults; the
steps take plain arguments, never a recipe's config object, so a new recipe needs no other recipe.
"""

from __future__ import annotations

import logging
import statistics
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from focusclip.errors import UsageError
from focusclip.io import atomic_save, read_json

logger = logging.getLogger(__name__)

#: captions of the training records: the rule-based pose descriptions, or one plain caption per image
CAPTION_STYLES = ("rules", "plain")


# ------------------------------------------------------------------------------------------- checks
def check_seeds(seeds: Sequence[int], option: str = "--seeds") -> list[int]:
    """``seeds`` as a list of distinct non-negative whole numbers, or a :class:`UsageError` naming the
    problem. A seed given twice is refused (it would train once and report a spread of 0 over "two" seeds)."""
    seeds = list(seeds)
    if not seeds:
        raise UsageError(f"{option}: give at least one seed")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise UsageError(f"{option}: seeds are whole numbers >= 0, got {', '.join(map(str, bad))}")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise UsageError(f"{option}: seed {', '.join(map(str, twice))} given twice; each seed is one independent "
                         f"run, so the spread over seeds needs distinct seeds (e.g. 0,1,2)")
    return seeds


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """Comma-separated seeds (``"0,1,2"``), checked by :func:`check_seeds`."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated whole numbers, e.g. 0,1,2") from None
    return check_seeds(seeds, option)


# --------------------------------------------------------------------------------------------- data
def build_world(data_dir: Path, *, n_train: int, n_eval: int, render_size: int = 224, crowd: int = 0,
                workers: int = 0, captions: str = "rules", caption_variants: int = 2) -> dict[str, Path]:
    """The synthetic world in ``data_dir`` with captioned ``train`` / ``val`` records (returned paths).
    ``captions``: ``"rules"`` (``caption_variants`` rule-based pose descriptions per image) or ``"plain"``
    (one short caption naming the subject's activity, age and expression, :func:`plain_caption`).
    A world with the same parameters already there is reused; another one is rendered again."""
    from focusclip.data.synthetic import generate_world

    if captions not in CAPTION_STYLES:
        raise UsageError(f"captions must be one of {', '.join(CAPTION_STYLES)}, got {captions!r}")
    world = data_dir / "world.json"
    wanted = {"n": n_train, "eval_n": n_eval, "seed": 0, "image_size": render_size, "crowd": crowd}
    if not (world.exists() and _same_world(world, wanted)):
        for derived in [*data_dir.glob("*.desc*.jsonl"), *data_dir.glob("*.captioned*.jsonl"),
                        *data_dir.glob("*.plain.jsonl")]:
            derived.unlink()  # captions of the old world's records (written here): stale now
        generate_world(data_dir, n=n_train, seed=0, image_size=render_size, eval_n=n_eval, workers=workers,
                       overwrite=True, crowd=crowd)
    if captions == "plain":
        return {split: _plain_captions(data_dir, split) for split in ("train", "val")}
    return {split: _rule_captions(data_dir, split, caption_variants) for split in ("train", "val")}


def _rule_captions(data_dir: Path, split: str, variants: int) -> Path:
    from focusclip.data.records import read_records
    from focusclip.describe.results import merge_captions
    from focusclip.describe.rules import RulesDescriber
    from focusclip.describe.run import describe_records

    records = data_dir / f"{split}.jsonl"
    captioned = data_dir / f"{split}.captioned.jsonl"
    current = records
    for variant in range(variants):
        desc = data_dir / f"{split}.desc{variant}.jsonl"
        describe_records(read_records(records), desc, RulesDescriber(seed=variant), fsync=False)
        target = captioned if variant == variants - 1 else data_dir / f"{split}.captioned{variant}.jsonl"
        merge_captions(current, desc, target, mode="replace" if variant == 0 else "append")
        current = target
    return captioned


def plain_caption(labels: Mapping[str, str]) -> str:
    """One plain caption of a synthetic subject, e.g. ``a photo of a kid running, feeling happy``."""
    return f"a photo of a {labels['age']} {labels['activity']}, feeling {labels['expression']}"


def _plain_captions(data_dir: Path, split: str) -> Path:
    from focusclip.data.records import read_records, write_records

    target = data_dir / f"{split}.plain.jsonl"
    if not target.exists():
        records = list(read_records(data_dir / f"{split}.jsonl"))
        for rec in records:
            rec["captions"] = [plain_caption(rec["labels"])]
        write_records(target, records)
    return target


def _same_world(world_json: Path, wanted: dict[str, Any]) -> bool:
    try:
        saved = read_json(world_json)
    except (OSError, ValueError):
        return False
    return all(saved.get(k, 0 if k == "crowd" else None) == v for k, v in wanted.items())  # older worlds: no crowd


# ----------------------------------------------------------------------------------------- training
def training_recipe(*, name: str, run_dir: Path, seed: int, data: Mapping[str, Path], model: str,
                    overrides: Mapping[str, Any] | None = None, epochs: int, batch_size: int, lr: float,
                    workers: int, precision: str = "fp32", text_unlocked_layers: int = 0, heatmap: str = "person",
                    context_length: int | None = None, pretrained: str | None = None,
                    warmup_steps: int = 10, loss: str = "ntxent") -> dict[str, Any]:
    """A training config (see :mod:`focusclip.train.config`) of one arm: ``loss`` NT-Xent t = 0.5 (the
    paper's) or ``clip`` (learnable temperature) over the three pairs, AdamW with warm-up and cosine decay,
    one checkpoint per epoch, no evaluation during training.
    ``text_unlocked_layers``: 0 freezes the text tower (its projection trains), -1 trains all of it.
    ``pretrained``: a saved model directory to start from (None: the model config's own weights)."""
    conf: dict[str, Any] = {
        "name": name, "out_dir": str(run_dir), "seed": seed, "epochs": epochs,
        "batch_size": batch_size, "precision": precision,
        "data": {"train": str(data["train"]), "val": str(data["val"]), "heatmap": heatmap,
                 "captions": "random", "num_workers": workers},
        "model": {"name": model, "overrides": dict(overrides or {}),
                  "lock_text": text_unlocked_layers >= 0, "lock_text_unlocked_layers": max(text_unlocked_layers, 0)},
        "loss": {"name": loss, "temperature": 0.5, "weights": [1.0, 1.0, 1.0]},
        "optim": {"name": "adamw", "lr": lr, "weight_decay": 0.05, "schedule": "cosine",
                  "warmup_steps": warmup_steps, "grad_clip": 1.0},
        "checkpoint": {"every_epochs": 1, "keep": 1, "best_metric": "val_loss"},
        "eval": {"tasks": [], "every_epochs": 0},
        "log": {"every_steps": 5, "every_seconds": 15, "tensorboard": False},
    }
    if context_length is not None:
        conf["data"]["context_length"] = context_length
    if pretrained is not None:
        conf["model"]["pretrained"] = str(pretrained)
    return conf


def train_run(conf: dict[str, Any]) -> tuple[Path, bool]:
    """Train ``conf`` (a training config whose ``out_dir`` is the run's folder), resuming an interrupted
    run; returns (final model directory, reused) where ``reused`` says a finished run of the same recipe
    was found and nothing was trained. A run made with another recipe is moved aside, never reused and
    never deleted."""
    from focusclip.train import train

    run_dir = Path(conf["out_dir"])
    changes = _recipe_changes(run_dir, conf)
    if changes:
        aside = _free_name(run_dir)
        run_dir.rename(aside)
        logger.warning("%s: %s was trained with another recipe (%s); moved it to %s and training again",
                       conf["name"], run_dir, "; ".join(changes[:3]), aside)
    final = run_dir / "model-final"
    if (final / "model.safetensors").exists():
        logger.info("%s: reusing the finished run in %s", conf["name"], run_dir)
        return final, True
    conf = {**conf, "resume": "latest" if (run_dir / "checkpoints").exists() else None}
    result = train(conf)
    return Path(result["model_final"]), False


def train_timed(conf: dict[str, Any], label: str, timings: dict[str, float]) -> Path:
    """:func:`train_run` with a log line; its seconds go to ``timings[f"train {label}"]`` unless a finished
    run was reused."""
    t = time.monotonic()
    logger.info("training %s", label)
    model_dir, reused = train_run(conf)
    if not reused:
        timings[f"train {label}"] = time.monotonic() - t
    return model_dir


def _recipe_changes(run_dir: Path, conf: dict[str, Any]) -> list[str]:
    """How the recipe of an earlier run in ``run_dir`` differs from ``conf`` (empty when there is none)."""
    from focusclip.train.config import config_changes, load_config, load_yaml

    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return []
    try:
        old = load_yaml(saved.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an unreadable config is a different recipe
        return ["config.yaml unreadable"]
    return config_changes(old or {}, load_config(None, base=conf).to_dict())


def _free_name(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.name}.previous-{n}")).exists():
        n += 1
    return candidate


def start_from(base_dir: Path, model: str, overrides: Mapping[str, Any], target: Path) -> Path:
    """A saved model ``target`` of ``model`` with ``overrides`` whose weights are ``base_dir``'s wherever
    the two share a parameter (the towers, projections, logit scale); only parameters the base lacks (a
    focus mechanism's) keep their initial values. The way to fine-tune a pretrained CLIP with focus:
    pass ``target`` as the training config's ``model.pretrained``. Reused when it exists."""
    import torch
    from safetensors.torch import load_file

    from focusclip.model import create_model, get_tokenizer, save_model
    from focusclip.model.factory import WEIGHTS_FILE

    if (target / WEIGHTS_FILE).exists():
        return target
    net = create_model(model, pretrained="none", **overrides)
    base = load_file(str(base_dir / WEIGHTS_FILE))
    own = net.state_dict()
    foreign = [k for k in base if k not in own]
    wrong = [k for k in base if k in own and own[k].shape != base[k].shape]
    if foreign or wrong:
        raise UsageError(f"{base_dir}: not a base for {model} (keys it lacks: {', '.join(foreign[:3]) or '-'}; "
                         f"other shapes: {', '.join(wrong[:3]) or '-'})")
    with torch.no_grad():
        missing = net.load_state_dict(base, strict=False).missing_keys
    logger.info("%s from %s: %d tensors copied, %d new (%s)", model, base_dir, len(base), len(missing),
                ", ".join(missing[:4]) or "none")
    save_model(net, target, get_tokenizer(str(base_dir)))
    return target


# --------------------------------------------------------------------------------------- evaluation
def eval_image_cache() -> Any:
    """One cache of the held-out images to share across arms and seeds: they are decoded once."""
    from focusclip.zeroshot.image_cache import EvalImageCache

    return EvalImageCache()


def evaluate_model(model_dir: Path, data_root: Any, results_path: Path, tasks: Sequence[str], *, workers: int,
                   focus: str | None = None, focus_mode: str | None = None,
                   image_cache: Any = None) -> dict[str, float]:
    """Zero-shot accuracy (each task's acc@k, in %) of a saved model on ``tasks`` (datasets under
    ``data_root``: a folder or ``{dataset: folder}``); results are kept in ``results_path`` (extended, not
    recomputed). ``focus`` / ``focus_mode`` as in :func:`focusclip.zeroshot.evaluate.evaluate`;
    ``image_cache`` (:func:`eval_image_cache`) shares the decoded images across calls."""
    from focusclip.model import eval_transform, get_tokenizer, load_model
    from focusclip.zeroshot.evaluate import evaluate
    from focusclip.zeroshot.tasks import resolve_tasks

    model = load_model(model_dir)
    extra = {"focus_mode": focus_mode} if focus_mode is not None else {}
    data = evaluate(model, get_tokenizer(str(model_dir)), eval_transform(model), resolve_tasks(list(tasks)),
                    data_root, batch_size=64, workers=workers, device="auto", out=results_path,
                    model_name=model_dir.parent.name, focus=focus, image_cache=image_cache, **extra)
    return {e["task"]: e["metrics"]["acc"] for e in data["results"].values() if e["model"] == data["model"]}


def task_groups(tasks: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """(group -> task names, dataset names) of zero-shot ``tasks`` (names or sets); a misspelt task fails
    here, before any work."""
    from focusclip.zeroshot.tasks import resolve_tasks

    groups: dict[str, tuple[str, ...]] = {}
    datasets = []
    for t in resolve_tasks(list(tasks)):
        groups[t.group] = (*groups.get(t.group, ()), t.name)
        datasets.append(t.dataset)
    return groups, sorted(set(datasets))


def chance_levels(data_dir: Path, tasks: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Accuracy of guessing at random (k classes out of C), in %, per synthetic task, per group and for the
    headline (the mean of the group means)."""
    from focusclip.zeroshot.tasks import resolve_tasks

    classes = read_json(data_dir / "classes.json", "class lists")
    out = {}
    for t in resolve_tasks(list(tasks)):
        n = len(classes[t.options["attribute"]])
        out[t.name] = 100.0 * min(t.k, n) / n
    for group, names in groups.items():
        out[f"{group} mean"] = statistics.fmean(out[t] for t in names)
    out["headline"] = statistics.fmean(out[f"{g} mean"] for g in groups)
    return out


# ---------------------------------------------------------------------------------------- summaries
def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and count."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def summarise(scores: Mapping[str, Sequence[Mapping[str, float]]],
              groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Per arm (``scores``: arm -> one {task: accuracy} per seed): mean and spread over seeds per task,
    per group and for the headline (the mean of the group means)."""
    out: dict[str, Any] = {}
    for arm, per_seed in scores.items():
        rows: dict[str, list[float]] = {t: [s[t] for s in per_seed] for tasks in groups.values() for t in tasks}
        for group, tasks in groups.items():
            rows[f"{group} mean"] = [statistics.fmean(s[t] for t in tasks) for s in per_seed]
        rows["headline"] = [statistics.fmean(statistics.fmean(s[t] for t in tasks) for tasks in groups.values())
                            for s in per_seed]
        out[arm] = {k: stats(v) for k, v in rows.items()}
    return out


def spread_text(s: Mapping[str, float]) -> str:
    """`` ± std`` where there are several seeds, else nothing."""
    return f" ± {s['std']:.1f}" if s["n"] > 1 else ""


#: an arm "beats chance clearly" when its mean is this many points above chance and above chance by more
#: than its own spread over seeds
CLEAR_OVER_CHANCE = 5.0


def beats_chance(s: Mapping[str, float], chance: float, margin: float = CLEAR_OVER_CHANCE) -> bool:
    """Whether a summary row (mean, std, n) is clearly above ``chance``: by ``margin`` points and by more
    than its spread over seeds."""
    return s["mean"] - chance >= max(margin, s["std"])


def difference(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, Any]:
    """``a`` - ``b`` and whether it counts: only with several seeds on both sides and when the gap exceeds
    the larger of the two spreads over seeds (chance is checked by :func:`verdict`)."""
    gap = a["mean"] - b["mean"]
    spread = max(a["std"], b["std"])
    return {"gap": gap, "spread": spread, "real": a["n"] > 1 and b["n"] > 1 and abs(gap) > spread}


def verdict(summary: Mapping[str, Mapping[str, Mapping[str, float]]], row: str, chance: float | None,
            arms: Iterable[str] | None = None) -> dict[str, Any]:
    """Which differences between ``arms`` (default all) on ``row`` (e.g. ``headline``) are real, in words.
    A difference is reported as one only when every compared arm beats chance clearly
    (:func:`beats_chance`) and the difference exceeds the seeds' spread (:func:`difference`); otherwise the
    text says the arms cannot be told apart and why. Returns ``{"text", "learned", "ranking", "real"}``
    (``real``: (better, worse, gap) triples)."""
    arms = list(summary if arms is None else arms)
    rows = {a: summary[a][row] for a in arms}
    if not rows:
        return {"text": "No arms to compare.", "learned": False, "ranking": [], "real": []}
    ranking = sorted(rows, key=lambda a: -rows[a]["mean"])
    if chance is not None:
        weak = [a for a in ranking if not beats_chance(rows[a], chance)]
        if weak:
            text = (f"Not every arm beats chance clearly on {row} (chance {chance:.1f}; needs +{CLEAR_OVER_CHANCE:g} "
                    f"points and more than its spread): {', '.join(weak)}. Differences between arms are not "
                    "reported: they compare models that did not learn the task.")
            return {"text": text, "learned": False, "ranking": ranking, "real": []}
    real = []
    for i, a in enumerate(ranking):
        for b in ranking[i + 1:]:
            d = difference(rows[a], rows[b])
            if d["real"]:
                real.append((a, b, d["gap"]))
    single = [a for a in ranking if rows[a]["n"] < 2]
    parts = [f"Every arm beats chance clearly on {row}." if chance is not None else ""]
    if real:
        parts.append("Differences larger than the seeds' spread: " +
                     "; ".join(f"{a} > {b} by {gap:.1f} points" for a, b, gap in real) + ".")
        parts.append("Every other pair is within the seeds' spread: not a difference.")
    else:
        parts.append("No difference between arms exceeds the seeds' spread: they cannot be told apart here.")
    if single:
        parts.append(f"With one seed ({', '.join(single)}) there is no spread, so no difference is claimed for it.")
    return {"text": " ".join(p for p in parts if p), "learned": True, "ranking": ranking, "real": real}


# -------------------------------------------------------------------------------------------- plots
def plot_examples(records_path: Path, path: Path, n: int = 6) -> Path:
    """Example training images with their person heatmap overlay and (start of) caption."""
    from matplotlib.figure import Figure

    from focusclip.data.records import read_records, record_keypoints, resolve_image
    from focusclip.drawing import draw_skeleton, overlay_heatmap
    from focusclip.heatmaps import record_heatmap
    from focusclip.images import open_rgb

    picks, seen = [], set()
    for rec in read_records(records_path):  # one image per activity, in file order
        if rec["labels"]["activity"] not in seen and len(picks) < n:
            seen.add(rec["labels"]["activity"])
            picks.append(rec)
    fig = Figure(figsize=(4.2 * ((n + 1) // 2), 11), dpi=90)
    axes = fig.subplots(2, (n + 1) // 2)
    for ax, rec in zip(axes.flat, picks):
        image = open_rgb(resolve_image(rec, records_path.parent))
        heat = record_heatmap(rec, (image.height, image.width), source="person")
        joints, visible = record_keypoints(rec)
        ax.imshow(draw_skeleton(overlay_heatmap(image, heat, alpha=0.45), joints, visible))
        caption = rec["captions"][0]
        ax.set_title(f"{rec['labels']['activity']} / {rec['labels']['age']} / {rec['labels']['expression']}",
                     fontsize=10)
        ax.set_xlabel(textwrap.fill(textwrap.shorten(caption, 260), 52), fontsize=7, loc="left")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(picks):]:
        ax.axis("off")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.96, bottom=0.12, wspace=0.08, hspace=0.42)
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return path


def plot_losses(run_dirs: Mapping[str, Sequence[Path]], path: Path,
                colours: Mapping[str, str] | None = None) -> Path:
    """Training loss (image-text term, comparable across arms) and validation loss per arm and seed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from focusclip.train.metrics import read_metrics

    fig = Figure(figsize=(11, 4), dpi=100)
    axes = fig.subplots(1, 2)
    for k, (arm, dirs) in enumerate(run_dirs.items()):
        colour = (colours or {}).get(arm, f"C{k}")
        for i, d in enumerate(dirs):
            train = [r for r in read_metrics(d, "train") if "img_txt" in r]
            val = [r for r in read_metrics(d, "val") if "img_txt" in r]
            label = arm if i == 0 else None
            axes[0].plot([r["step"] for r in train], [r["img_txt"] for r in train], color=colour,
                         alpha=0.8, label=label)
            axes[1].plot([r["epoch"] for r in val], [r["img_txt"] for r in val], "o-", color=colour,
                         alpha=0.8, label=label)
    axes[0].set(title="train: image-text NT-Xent", xlabel="optimizer step", ylabel="loss")
    axes[1].set(title="validation: image-text NT-Xent", xlabel="epoch", ylabel="loss")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return path

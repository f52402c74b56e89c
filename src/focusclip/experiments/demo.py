"""The demo recipe: the whole FocusCLIP story offline, on the built-in synthetic world.

1. render the synthetic world (train / val / held-out eval images with MPII skeletons);
2. write rule-based pose descriptions (two phrasings per image) and person heatmaps;
3. train FocusCLIP and the CLIP baseline with the same budget, data and seed (per seed);
4. evaluate both zero-shot on the held-out activity / age / expression tasks;
5. print a table and write ``report.md`` with figures.

Nothing is tuned on the evaluation sets: the recipe below was fixed before looking at its numbers.
"""

from __future__ import annotations

import logging
import statistics
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import OutputError
from focusclip.io import atomic_save, atomic_write_json, atomic_write_text, check_dir_target, read_json

logger = logging.getLogger(__name__)

TASKS = ("synth-activity", "synth-age", "synth-expression")
GROUPS = {"activity": ("synth-activity",), "age": ("synth-age",), "emotion": ("synth-expression",)}
ARMS = ("focusclip", "clip")


@dataclass
class DemoConfig:
    out_dir: str = "runs/demo"
    n_train: int = 720                #: training + validation images (10% go to validation)
    n_eval: int = 360                 #: held-out zero-shot images
    render_size: int = 224            #: pixel size of the rendered images
    model: str = "lite0-minilm"       #: towers: focusclip-<model> and clip-<model>
    image_size: int = 128             #: training / evaluation resolution
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4
    text_unlocked_layers: int = 0     #: train only the last N text layers (0: frozen text tower, CPU budget); -1: all
    seeds: list[int] = field(default_factory=lambda: [0])
    workers: int = 2
    heatmap: str = "person"
    caption_variants: int = 2         #: rule-based phrasings per image (one drawn per epoch)
    crowd: int = 0                    #: more full-size, unlabelled people beside the subject in every scene
    precision: str = "fp32"           #: training precision; auto (bf16 where the CPU has it, checked) falls back here

    def model_name(self, arm: str) -> str:
        return f"{arm}-{self.model}"


# ------------------------------------------------------------------------------------------ steps
def build_data(cfg: DemoConfig, data_dir: Path) -> dict[str, Path]:
    """Synthetic world + rule-based descriptions; reuses what an earlier run already made."""
    from focusclip.data.records import read_records
    from focusclip.data.synthetic import generate_world
    from focusclip.describe.results import merge_captions
    from focusclip.describe.rules import RulesDescriber
    from focusclip.describe.run import describe_records

    world = data_dir / "world.json"
    wanted = {"n": cfg.n_train, "eval_n": cfg.n_eval, "seed": 0, "image_size": cfg.render_size, "crowd": cfg.crowd}
    if not (world.exists() and _same_world(world, wanted)):
        for derived in [*data_dir.glob("*.desc*.jsonl"), *data_dir.glob("*.captioned*.jsonl")]:
            derived.unlink()  # descriptions of the old world's records (the demo wrote them): stale now
        generate_world(data_dir, n=cfg.n_train, seed=0, image_size=cfg.render_size, eval_n=cfg.n_eval,
                       workers=cfg.workers, overwrite=True, crowd=cfg.crowd)
    paths = {}
    for split in ("train", "val"):
        records = data_dir / f"{split}.jsonl"
        captioned = data_dir / f"{split}.captioned.jsonl"
        current = records
        for variant in range(cfg.caption_variants):
            desc = data_dir / f"{split}.desc{variant}.jsonl"
            describe_records(read_records(records), desc, RulesDescriber(seed=variant), fsync=False)
            last = variant == cfg.caption_variants - 1
            target = captioned if last else data_dir / f"{split}.captioned{variant}.jsonl"
            merge_captions(current, desc, target, mode="replace" if variant == 0 else "append")
            current = target
        paths[split] = captioned
    return paths


def _same_world(world_json: Path, wanted: dict[str, Any]) -> bool:
    try:
        saved = read_json(world_json)
    except (OSError, ValueError):
        return False
    return all(saved.get(k, 0 if k == "crowd" else None) == v for k, v in wanted.items())  # older worlds: no crowd


def train_config(cfg: DemoConfig, arm: str, seed: int, data: dict[str, Path], run_dir: Path) -> dict[str, Any]:
    """The training recipe of one arm (identical for both arms but the model)."""
    lock = cfg.text_unlocked_layers >= 0
    return {
        "name": f"{arm}-seed{seed}", "out_dir": str(run_dir), "seed": seed, "epochs": cfg.epochs,
        "batch_size": cfg.batch_size, "precision": cfg.precision,
        "data": {"train": str(data["train"]), "val": str(data["val"]), "heatmap": cfg.heatmap,
                 "captions": "random", "num_workers": cfg.workers},
        "model": {"name": cfg.model_name(arm), "overrides": {"vision": {"image_size": cfg.image_size}},
                  "lock_text": lock, "lock_text_unlocked_layers": max(cfg.text_unlocked_layers, 0)},
        "loss": {"name": "ntxent", "temperature": 0.5, "weights": [1.0, 1.0, 1.0]},
        "optim": {"name": "adamw", "lr": cfg.lr, "weight_decay": 0.05, "schedule": "cosine",
                  "warmup_steps": 10, "grad_clip": 1.0},
        "checkpoint": {"every_epochs": 1, "keep": 1, "best_metric": "val_loss"},
        "eval": {"tasks": [], "every_epochs": 0},
        "log": {"every_steps": 5, "every_seconds": 15, "tensorboard": False},
    }


def train_arm(cfg: DemoConfig, arm: str, seed: int, data: dict[str, Path], out: Path,
              conf: dict[str, Any] | None = None) -> tuple[Path, bool]:
    """Train one arm for one seed, resuming an interrupted run; returns (final model directory, reused)
    where ``reused`` says a finished run of the same recipe was found and nothing was trained. A run made
    with another recipe (other demo options) is moved aside, never reused and never deleted. ``conf``:
    the arm's training config (default: :func:`train_config`) with ``out_dir`` ``out/runs/<arm>-seed<seed>``."""
    from focusclip.train import train

    run_dir = out / "runs" / f"{arm}-seed{seed}"
    conf = train_config(cfg, arm, seed, data, run_dir) if conf is None else conf
    changes = _recipe_changes(run_dir, conf)
    if changes:
        aside = _free_name(run_dir)
        run_dir.rename(aside)
        logger.warning("%s seed %d: %s was trained with another recipe (%s); moved it to %s and training again",
                       arm, seed, run_dir, "; ".join(changes[:3]), aside)
    final = run_dir / "model-final"
    if (final / "model.safetensors").exists():
        logger.info("%s seed %d: reusing the finished run in %s", arm, seed, run_dir)
        return final, True
    conf["resume"] = "latest" if (run_dir / "checkpoints").exists() else None
    result = train(conf)
    return Path(result["model_final"]), False


def train_timed(cfg: DemoConfig, arm: str, seed: int, data: dict[str, Path], out: Path,
                timings: dict[str, float], conf: dict[str, Any] | None = None) -> Path:
    """:func:`train_arm` with a log line; its seconds go to ``timings`` unless a finished run was reused."""
    t = time.monotonic()
    logger.info("[2/4] training %s (seed %d)", arm if conf is not None else cfg.model_name(arm), seed)
    model_dir, reused = train_arm(cfg, arm, seed, data, out, conf)
    if not reused:
        timings[f"train {arm} seed {seed}"] = time.monotonic() - t
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


def evaluate_arm(model_dir: Path, data_dir: Path, results_path: Path, cfg: DemoConfig,
                 tasks: Sequence[str] = TASKS, data_root: Any = None, focus: str | None = None,
                 image_cache: Any = None) -> dict[str, float]:
    """Zero-shot accuracy (the task's acc@k, in %) on the held-out synthetic tasks (or ``tasks`` with
    their datasets at ``data_root``); ``focus`` as in :func:`focusclip.zeroshot.evaluate.evaluate`;
    ``image_cache`` (an :class:`~focusclip.zeroshot.image_cache.EvalImageCache`) shares the decoded
    images across calls."""
    from focusclip.model import eval_transform, get_tokenizer, load_model
    from focusclip.zeroshot.evaluate import evaluate
    from focusclip.zeroshot.tasks import resolve_tasks

    model = load_model(model_dir)
    data = evaluate(model, get_tokenizer(str(model_dir)), eval_transform(model), resolve_tasks(list(tasks)),
                    data_root or {"synthetic": str(data_dir)}, batch_size=64, workers=cfg.workers, device="auto",
                    out=results_path, model_name=model_dir.parent.name, focus=focus, image_cache=image_cache)
    return {e["task"]: e["metrics"]["acc"] for e in data["results"].values() if e["model"] == data["model"]}


# ------------------------------------------------------------------------------------- summaries
def summarise(scores: dict[str, list[dict[str, float]]],
              groups: Mapping[str, Sequence[str]] = GROUPS) -> dict[str, Any]:
    """Mean and spread over seeds per task, per group and for the headline (mean of group means)."""
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    out: dict[str, Any] = {}
    for arm, per_seed in scores.items():
        rows: dict[str, list[float]] = {t: [s[t] for s in per_seed] for tasks in groups.values() for t in tasks}
        for group, tasks in groups.items():
            rows[f"{group} mean"] = [statistics.fmean(s[t] for t in tasks) for s in per_seed]
        rows["headline"] = [statistics.fmean(statistics.fmean(s[t] for t in tasks) for tasks in groups.values())
                            for s in per_seed]
        out[arm] = {k: stats(v) for k, v in rows.items()}
    return out


def format_table(summary: dict[str, Any], chance: dict[str, float]) -> str:
    rows = list(summary["focusclip"])
    lines = ["| task | chance | CLIP | FocusCLIP | FocusCLIP - CLIP |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        c, f = summary["clip"][r], summary["focusclip"][r]
        lines.append(f"| {r} | {chance.get(r, float('nan')):.1f} | {c['mean']:.1f}{_spread(c)} | "
                     f"{f['mean']:.1f}{_spread(f)} | {f['mean'] - c['mean']:+.1f} |")
    return "\n".join(lines)


def _spread(s: dict[str, float]) -> str:
    return f" ± {s['std']:.1f}" if s["n"] > 1 else ""


def chance_levels(data_dir: Path) -> dict[str, float]:
    """Accuracy of always guessing at random, per task (k classes out of C), in %."""
    from focusclip.zeroshot.tasks import resolve_tasks

    classes = read_json(data_dir / "classes.json", "class lists")
    out = {}
    for t in resolve_tasks(list(TASKS)):
        n = len(classes[t.options["attribute"]])
        out[t.name] = 100.0 * min(t.k, n) / n
    for group, tasks in GROUPS.items():
        out[f"{group} mean"] = statistics.fmean(out[t] for t in tasks)
    out["headline"] = statistics.fmean(out[f"{g} mean"] for g in GROUPS)
    return out


# ------------------------------------------------------------------------------------------ figures
def plot_examples(records_path: Path, path: Path, n: int = 6, size: int = 224) -> Path:
    """Example training images with their person heatmap overlay and (start of) description."""
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


def plot_arm_losses(run_dirs: dict[str, list[Path]], path: Path) -> Path:
    """Training loss (image-text term, comparable across arms) and validation loss per arm and seed."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from focusclip.train.metrics import read_metrics

    fig = Figure(figsize=(11, 4), dpi=100)
    axes = fig.subplots(1, 2)
    colours = {"focusclip": "tab:red", "clip": "tab:blue"}
    for k, (arm, dirs) in enumerate(run_dirs.items()):
        colour = colours.get(arm, f"C{k}")
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


def plot_task_bars(summary: dict[str, Any], chance: dict[str, float], path: Path) -> Path:
    from matplotlib.figure import Figure

    names = [*TASKS, "headline"]
    x = np.arange(len(names))
    fig = Figure(figsize=(9, 4.2), dpi=100)
    ax = fig.subplots()
    for i, (arm, colour) in enumerate((("clip", "tab:blue"), ("focusclip", "tab:red"))):
        means = [summary[arm][n]["mean"] for n in names]
        stds = [summary[arm][n]["std"] for n in names]
        ax.bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, color=colour,
               label="CLIP baseline" if arm == "clip" else "FocusCLIP")
    ax.scatter(x, [chance[n] for n in names], marker="_", s=900, color="black", label="chance", zorder=3)
    ax.set_xticks(x, names)
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_title("Held-out synthetic tasks (acc@k of each task)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return path


# -------------------------------------------------------------------------------------------- report
def write_report(out: Path, cfg: DemoConfig, table: str, figures: dict[str, Path], confusions: list[Path],
                 alphas: dict[str, float], timings: dict[str, float]) -> Path:
    rel = lambda p: p.relative_to(out).as_posix()  # noqa: E731
    seeds = ", ".join(map(str, cfg.seeds))
    text_tower = ("frozen text tower, its projection trained" if cfg.text_unlocked_layers == 0 else
                  "whole text tower trained" if cfg.text_unlocked_layers < 0 else
                  f"last {cfg.text_unlocked_layers} text layers trained")
    text = f"""# FocusCLIP demo report

FocusCLIP and the CLIP baseline trained on the built-in synthetic world with the same data, budget and
seeds ({seeds}), then evaluated zero-shot on held-out images with prompts in the paper's style.
Towers: `{cfg.model_name('focusclip')}` / `{cfg.model_name('clip')}` at {cfg.image_size} px ({text_tower});
{cfg.epochs} epochs of {cfg.n_train} images (10% held for validation), batch {cfg.batch_size}, AdamW lr {cfg.lr}
with warm-up and cosine decay, NT-Xent t = 0.5 over the three pairs (FocusCLIP) or image-text only (CLIP),
person heatmaps, two rule-based descriptions per image (one drawn per epoch).
Numbers are whatever this run measured (mean ± standard deviation over seeds where there are several);
nothing was tuned on the evaluation sets.

## Zero-shot accuracy (%)

{table}

Mixing scalar `a` at the end of training: {', '.join(f'seed {k}: {v:.3f}' for k, v in alphas.items())}.

![per-task accuracy]({rel(figures['bars'])})

## Data: images, ROI heatmaps, pose descriptions

Person heatmaps from the MPII skeletons and the rule-based pose descriptions (first phrasing):

![examples]({rel(figures['examples'])})

## Training

![loss curves]({rel(figures['loss'])})

## Confusion matrices (first seed)

{chr(10).join(f'![{p.stem}]({rel(p)})' for p in confusions)}

## Time

{chr(10).join(f'- {k}: {v:.0f} s' for k, v in timings.items())}

Training reused from an earlier run in the same folder is not listed.

Configuration: `demo_config.json`. Results of every task: `results/*.json`.
"""
    path = out / "report.md"
    atomic_write_text(path, text)
    return path


# ---------------------------------------------------------------------------------------------- main
def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    out = Path(cfg.out_dir)
    check_dir_target("--out", out)
    if out.is_dir() and any(out.iterdir()) and not (out / "demo_config.json").exists():
        raise OutputError(f"{out} is not empty and holds no demo (no demo_config.json); the demo writes data/, "
                          "runs/, results/ and figures/ there, so choose a new or a demo folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "demo_config.json", asdict(cfg))
    data_dir = out / "data"
    timings: dict[str, float] = {}

    t = time.monotonic()
    logger.info("[1/4] synthetic world and rule-based pose descriptions -> %s", data_dir)
    data = build_data(cfg, data_dir)
    timings["data"] = time.monotonic() - t

    scores: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    run_dirs: dict[str, list[Path]] = {arm: [] for arm in ARMS}
    alphas: dict[str, float] = {}
    confusions: list[Path] = []
    eval_images = eval_image_cache()
    for seed in cfg.seeds:
        for arm in ARMS:
            model_dir = train_timed(cfg, arm, seed, data, out, timings)
            run_dirs[arm].append(model_dir.parent)
            t = time.monotonic()
            logger.info("[3/4] zero-shot evaluation of %s (seed %d)", arm, seed)
            results_path = out / "results" / f"{arm}-seed{seed}.json"
            scores[arm].append(evaluate_arm(model_dir, data_dir, results_path, cfg, image_cache=eval_images))
            timings[f"eval {arm} seed {seed}"] = time.monotonic() - t
            if seed == cfg.seeds[0]:
                confusions += sorted(results_path.parent.glob(f"{results_path.stem}_confusion/*.png"))
            if arm == "focusclip":
                alphas[str(seed)] = _final_alpha(model_dir)

    logger.info("[4/4] report")
    summary = summarise(scores)
    chance = chance_levels(data_dir)
    table = format_table(summary, chance)
    figures = {
        "examples": plot_examples(data["train"], out / "figures" / "examples.png"),
        "loss": plot_arm_losses(run_dirs, out / "figures" / "loss_curves.png"),
        "bars": plot_task_bars(summary, chance, out / "figures" / "zeroshot_bars.png"),
    }
    report = write_report(out, cfg, table, figures, confusions, alphas, timings)
    atomic_write_json(out / "summary.json", {"summary": summary, "chance": chance, "scores": scores,
                                             "timings": timings})
    return {"table": table, "report": report, "summary": summary}


def eval_image_cache() -> Any:
    """One cache of the held-out images for every arm and seed: they are decoded once per demo."""
    from focusclip.zeroshot.image_cache import EvalImageCache

    return EvalImageCache()


def _final_alpha(model_dir: Path) -> float:
    from focusclip.model import load_model

    return float(load_model(model_dir).focus_summary()["alpha"])

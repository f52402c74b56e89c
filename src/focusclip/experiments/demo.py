"""The demo recipe: the whole FocusCLIP story offline, on the built-in synthetic world.

1. render the synthetic world (train / val / held-out eval images with MPII skeletons);
2. write rule-based pose descriptions (two phrasings per image) and person heatmaps;
3. train FocusCLIP and the CLIP baseline with the same budget, data and seed (per seed);
4. evaluate both zero-shot on the held-out activity / age / expression tasks;
5. print a table and write ``report.md`` with figures.

The steps are :mod:`focusclip.experiments.toolkit`'s; this module is the recipe (its defaults, table and
report).

Nothing is tuned on the evaluation sets: the recipe below was fixed before looking at its numbers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import OutputError
from focusclip.experiments import toolkit
from focusclip.io import atomic_save, atomic_write_json, atomic_write_text, check_dir_target

logger = logging.getLogger(__name__)

TASKS = ("synth-activity", "synth-age", "synth-expression")
GROUPS = {"activity": ("synth-activity",), "age": ("synth-age",), "emotion": ("synth-expression",)}
ARMS = ("focusclip", "clip")
ARM_COLOURS = {"focusclip": "tab:red", "clip": "tab:blue"}


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
    return toolkit.build_world(data_dir, n_train=cfg.n_train, n_eval=cfg.n_eval, render_size=cfg.render_size,
                               crowd=cfg.crowd, workers=cfg.workers, captions="rules",
                               caption_variants=cfg.caption_variants)


def train_config(cfg: DemoConfig, arm: str, seed: int, data: dict[str, Path], run_dir: Path) -> dict[str, Any]:
    """The training recipe of one arm (identical for both arms but the model)."""
    return toolkit.training_recipe(
        name=f"{arm}-seed{seed}", run_dir=run_dir, seed=seed, data=data, model=cfg.model_name(arm),
        overrides={"vision": {"image_size": cfg.image_size}}, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, workers=cfg.workers, precision=cfg.precision, text_unlocked_layers=cfg.text_unlocked_layers,
        heatmap=cfg.heatmap)


def evaluate_arm(model_dir: Path, data_dir: Path, results_path: Path, cfg: DemoConfig,
                 image_cache: Any = None) -> dict[str, float]:
    """Zero-shot accuracy (the task's acc@k, in %) on the held-out synthetic tasks."""
    return toolkit.evaluate_model(model_dir, {"synthetic": str(data_dir)}, results_path, TASKS,
                                  workers=cfg.workers, image_cache=image_cache)


# ------------------------------------------------------------------------------------- summaries
def format_table(summary: dict[str, Any], chance: dict[str, float]) -> str:
    rows = list(summary["focusclip"])
    lines = ["| task | chance | CLIP | FocusCLIP | FocusCLIP - CLIP |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        c, f = summary["clip"][r], summary["focusclip"][r]
        lines.append(f"| {r} | {chance.get(r, float('nan')):.1f} | {c['mean']:.1f}{toolkit.spread_text(c)} | "
                     f"{f['mean']:.1f}{toolkit.spread_text(f)} | {f['mean'] - c['mean']:+.1f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ figures
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
    toolkit.check_seeds(cfg.seeds)
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
    eval_images = toolkit.eval_image_cache()  # every arm and seed is evaluated on the same images
    for seed in cfg.seeds:
        for arm in ARMS:
            logger.info("[2/4] training %s (seed %d)", cfg.model_name(arm), seed)
            conf = train_config(cfg, arm, seed, data, out / "runs" / f"{arm}-seed{seed}")
            model_dir = toolkit.train_timed(conf, f"{arm} seed {seed}", timings)
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
    summary = toolkit.summarise(scores, GROUPS)
    chance = toolkit.chance_levels(data_dir, TASKS, GROUPS)
    table = format_table(summary, chance)
    figures = {
        "examples": toolkit.plot_examples(data["train"], out / "figures" / "examples.png"),
        "loss": toolkit.plot_losses(run_dirs, out / "figures" / "loss_curves.png", ARM_COLOURS),
        "bars": plot_task_bars(summary, chance, out / "figures" / "zeroshot_bars.png"),
    }
    report = write_report(out, cfg, table, figures, confusions, alphas, timings)
    atomic_write_json(out / "summary.json", {"summary": summary, "chance": chance, "scores": scores,
                                             "timings": timings})
    return {"table": table, "report": report, "summary": summary}


def _final_alpha(model_dir: Path) -> float:
    from focusclip.model import load_model

    return float(load_model(model_dir).focus_summary()["alpha"])

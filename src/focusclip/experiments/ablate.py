"""The focus ablation: one arm per focus mechanism (``roi.mode``), same data, budget and seeds.

1. render the synthetic world (multi-person scenes by default: the labelled subject is one of two
   full-size figures, so focusing on it at inference has something to show) with rule-based descriptions;
2. train one model per mode and seed: ``none`` (the CLIP baseline: no ROI branch), ``highlight`` (the
   paper's), ``attention``, ``alpha``, ``pool`` (conv towers), all on the same towers and recipe;
3. evaluate each zero-shot without focus and, for modes that focus at inference, with the subject's
   box as a heatmap (``evaluate(..., focus="boxes")``);
4. write a table (mean ± std over seeds, difference to ``none``), a bar chart and ``report.md``.

It reuses the demo's steps (:mod:`focusclip.experiments.demo`): the same data building, recipe, resumable
training (finished arms are not retrained) and evaluation; results files are extended, not recomputed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import OutputError, UsageError
from focusclip.experiments import demo
from focusclip.io import atomic_save, atomic_write_json, atomic_write_text, check_dir_target
from focusclip.mappings import deep_merge

logger = logging.getLogger(__name__)

MODES = ("none", "highlight", "attention", "alpha", "pool")
DEFAULT_MODES = ("none", "highlight", "attention", "alpha")
FOCUSED = "+focus"  #: suffix of an arm evaluated with focus at inference


@dataclass
class AblateConfig(demo.DemoConfig):
    """The demo's recipe with one arm per mode. ``model`` is one model config name for every arm (``none``
    switches its ROI branch off); ``tasks`` zero-shot task names or sets (datasets other than the
    synthetic world are looked up under ``data_root``); ``train_config`` a training config file whose
    keys replace the recipe's (the arm's name, folder, seed and focus mode stay the ablation's)."""

    out_dir: str = "runs/ablate"
    model: str = "focusclip-vit-minilm"
    image_size: int = 64
    n_train: int = 240
    n_eval: int = 240
    epochs: int = 3
    batch_size: int = 16              #: more optimizer steps for the same samples (the ViT starts from scratch)
    lr: float = 1e-3                  #: the ViT trains from random initialisation
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    crowd: int = 1
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    tasks: list[str] = field(default_factory=lambda: list(demo.TASKS))
    data_root: str = "data/{dataset}"
    train_config: str | None = None
    context_length: int = 48          #: training text tokens (the descriptions name activity, age and expression first)

    def model_name(self, arm: str) -> str:
        return self.model

    def check(self) -> None:
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise UsageError(f"--modes: unknown focus mode {', '.join(unknown) or '(none given)'}; "
                             f"known: {', '.join(MODES)}")
        if len(set(self.modes)) != len(self.modes):
            raise UsageError(f"--modes lists a mode twice: {','.join(self.modes)}")
        if not self.seeds:
            raise UsageError("--seeds: give at least one seed")


# ------------------------------------------------------------------------------------------ steps
def arm_config(cfg: AblateConfig, mode: str, seed: int, data: dict[str, Path], run_dir: Path,
               user: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo's recipe, the user's training config over it, then this arm's model, mode and seed."""
    recipe = demo.train_config(cfg, mode, seed, data, run_dir)
    recipe["data"]["context_length"] = cfg.context_length
    conf = deep_merge(recipe, user or {})
    roi = {"enabled": False} if mode == "none" else {"enabled": True, "mode": mode}
    overrides = deep_merge((conf.get("model") or {}).get("overrides") or {}, {"roi": roi})
    conf["model"] = {**conf.get("model", {}), "name": cfg.model, "overrides": overrides}
    conf.update(name=f"{mode}-seed{seed}", out_dir=str(run_dir), seed=seed)
    return conf


def _user_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    from focusclip.io import read_text
    from focusclip.train.config import load_yaml

    loaded = load_yaml(read_text(path, "training config")) or {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a mapping of training config keys at the top level")
    return loaded


def _task_groups(tasks: list[str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """(group -> task names, dataset names) of the resolved tasks."""
    from focusclip.zeroshot.tasks import resolve_tasks

    groups: dict[str, tuple[str, ...]] = {}
    datasets = []
    for t in resolve_tasks(list(tasks)):
        groups[t.group] = (*groups.get(t.group, ()), t.name)
        datasets.append(t.dataset)
    return groups, sorted(set(datasets))


def _data_root(cfg: AblateConfig, data_dir: Path, datasets: list[str]) -> dict[str, str]:
    from focusclip.zeroshot.evaluate import dataset_root

    return {ds: str(data_dir) if ds == "synthetic" else str(dataset_root(cfg.data_root, ds)) for ds in datasets}


def _focuses(model_dir: Path) -> bool:
    from focusclip.model import load_model

    return load_model(model_dir).focus_at_inference


# ------------------------------------------------------------------------------------- summaries
def format_table(summary: dict[str, Any], rows: list[str], chance: dict[str, float]) -> str:
    """One line per arm (and per arm with focus at inference): each task / group / the headline, mean ±
    std over seeds, and the headline's difference to ``none``."""
    arms = list(summary)
    base = summary.get("none", {}).get("headline")
    head = "| arm | focus at inference | " + " | ".join(rows) + " | headline - none |"
    lines = [head, "|---|---|" + "---:|" * (len(rows) + 1)]
    if chance:
        lines.append("| chance | | " + " | ".join(f"{chance.get(r, float('nan')):.1f}" for r in rows) + " | |")
    for arm in arms:
        mode, focused = arm.removesuffix(FOCUSED), arm.endswith(FOCUSED)
        cells = [f"{summary[arm][r]['mean']:.1f}{demo._spread(summary[arm][r])}" for r in rows]
        diff = f"{summary[arm]['headline']['mean'] - base['mean']:+.1f}" if base and mode != "none" else ""
        lines.append(f"| {mode} | {'yes' if focused else 'no'} | " + " | ".join(cells) + f" | {diff} |")
    return "\n".join(lines)


def plot_bars(summary: dict[str, Any], names: list[str], chance: dict[str, float], path: Path) -> Path:
    """One panel per task / the headline: a bar per arm without focus, a hatched one with focus."""
    from matplotlib.figure import Figure

    modes = list(dict.fromkeys(a.removesuffix(FOCUSED) for a in summary))
    fig = Figure(figsize=(3.2 * len(names), 4.2), dpi=100)
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=False))
    x = np.arange(len(modes))
    for ax, name in zip(axes, names):
        for offset, suffix, hatch in ((-0.2, "", None), (0.2, FOCUSED, "//")):
            have = [m for m in modes if m + suffix in summary]
            xs = [x[modes.index(m)] + offset for m in have]
            ax.bar(xs, [summary[m + suffix][name]["mean"] for m in have], 0.4,
                   yerr=[summary[m + suffix][name]["std"] for m in have], capsize=3, hatch=hatch,
                   color=[f"C{modes.index(m)}" for m in have], edgecolor="black", linewidth=0.5,
                   label="with focus at inference" if suffix else "without focus")
        if name in chance:
            ax.axhline(chance[name], color="black", linestyle=":", linewidth=1, label="chance")
        ax.set_xticks(x, modes, rotation=20)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("zero-shot accuracy (%)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return path


def write_report(out: Path, cfg: AblateConfig, table: str, figures: dict[str, Path], summaries: dict[str, str],
                 timings: dict[str, float]) -> Path:
    rel = lambda p: p.relative_to(out).as_posix()  # noqa: E731
    crowd = (f"every scene shows the labelled subject among {cfg.crowd} more full-size, unlabelled "
             "people doing other activities (only the subject is annotated)" if cfg.crowd else
             "single-subject scenes")
    text = f"""# Focus ablation report

One arm per focus mechanism (`roi.mode`): {', '.join(f'`{m}`' for m in cfg.modes)}, trained with the same
data, budget and seeds ({', '.join(map(str, cfg.seeds))}) on `{cfg.model}` at {cfg.image_size} px; `none` is
the CLIP baseline (no ROI branch). Synthetic world: {cfg.n_train} training images (10% validation),
{cfg.n_eval} held-out; {crowd}. {cfg.epochs} epochs of batch {cfg.batch_size}, AdamW lr {cfg.lr}, NT-Xent
t = 0.5 over the three pairs ({cfg.heatmap} heatmaps, descriptions cut at {cfg.context_length} tokens){'; training config ' + cfg.train_config if cfg.train_config else ''}.
Each arm is evaluated zero-shot without focus and, where its mechanism acts at inference, with the
subject's box as the heatmap ("focus at inference: yes"; `evaluate(..., focus="boxes")`). Numbers are
whatever this run measured (mean ± standard deviation over seeds); nothing was tuned on them.

## Zero-shot accuracy (%)

{table}

![accuracy per arm]({rel(figures['bars'])})

Mechanism state at the end of training (first seed): {'; '.join(f'{k}: {v}' for k, v in summaries.items()) or 'none'}.

## Data

{'Training images with the subject heatmap (only the labelled person is marked):' if cfg.crowd else 'Training images with their heatmaps:'}

![examples]({rel(figures['examples'])})

## Training

![loss curves]({rel(figures['loss'])})

## Time

{chr(10).join(f'- {k}: {v:.0f} s' for k, v in timings.items())}

Training reused from an earlier run in the same folder is not listed. Configuration: `ablate_config.json`;
results of every task: `results/*.json`; numbers: `summary.json`.
"""
    path = out / "report.md"
    atomic_write_text(path, text)
    return path


# ---------------------------------------------------------------------------------------------- main
def run_ablation(cfg: AblateConfig) -> dict[str, Any]:
    cfg.check()
    out = Path(cfg.out_dir)
    check_dir_target("--out", out)
    if out.is_dir() and any(out.iterdir()) and not (out / "ablate_config.json").exists():
        raise OutputError(f"{out} is not empty and holds no ablation (no ablate_config.json); choose a new or an "
                          "ablation folder")
    groups, datasets = _task_groups(cfg.tasks)  # a misspelt task fails before any work
    user = _user_config(cfg.train_config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablate_config.json", asdict(cfg))
    data_dir = out / "data"
    timings: dict[str, float] = {}

    t = time.monotonic()
    logger.info("[1/4] synthetic world (crowd %d) and rule-based pose descriptions -> %s", cfg.crowd, data_dir)
    data = demo.build_data(cfg, data_dir)
    timings["data"] = time.monotonic() - t
    root = _data_root(cfg, data_dir, datasets)

    scores: dict[str, list[dict[str, float]]] = {}
    run_dirs: dict[str, list[Path]] = {m: [] for m in cfg.modes}
    states: dict[str, str] = {}
    eval_images = demo.eval_image_cache()  # every arm is evaluated on the same images: decoded once
    for seed in cfg.seeds:
        for mode in cfg.modes:
            conf = arm_config(cfg, mode, seed, data, out / "runs" / f"{mode}-seed{seed}", user)
            model_dir = demo.train_timed(cfg, mode, seed, data, out, timings, conf)
            run_dirs[mode].append(model_dir.parent)
            t = time.monotonic()
            logger.info("[3/4] zero-shot evaluation of %s (seed %d)", mode, seed)
            results = out / "results" / f"{mode}-seed{seed}.json"
            plain = demo.evaluate_arm(model_dir, data_dir, results, cfg, cfg.tasks, root, image_cache=eval_images)
            scores.setdefault(mode, []).append(plain)
            if _focuses(model_dir):
                focused = demo.evaluate_arm(model_dir, data_dir, results, cfg, cfg.tasks, root, focus="boxes")
                scores.setdefault(mode + FOCUSED, []).append(focused)
            timings[f"eval {mode} seed {seed}"] = time.monotonic() - t
            if seed == cfg.seeds[0] and mode != "none":
                states[mode] = _state(model_dir)

    logger.info("[4/4] report")
    summary = demo.summarise(scores, groups)
    chance = demo.chance_levels(data_dir) if list(groups) == list(demo.GROUPS) else {}
    rows = [t for tasks in groups.values() for t in tasks] + [f"{g} mean" for g in groups if len(groups[g]) > 1]
    rows.append("headline")
    table = format_table(summary, rows, chance)
    figures = {
        "examples": demo.plot_examples(data["train"], out / "figures" / "examples.png"),
        "loss": demo.plot_arm_losses(run_dirs, out / "figures" / "loss_curves.png"),
        "bars": plot_bars(summary, rows, chance, out / "figures" / "ablation_bars.png"),
    }
    report = write_report(out, cfg, table, figures, states, timings)
    atomic_write_json(out / "summary.json", {"summary": summary, "chance": chance, "scores": scores,
                                             "timings": timings})
    return {"table": table, "report": report, "summary": summary}


def _state(model_dir: Path) -> str:
    from focusclip.model import load_model

    model = load_model(model_dir)
    return ", ".join(f"{k} {float(v):.3f}" for k, v in model.focus_summary().items())

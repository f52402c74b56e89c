"""The focus ablation: which focus works best when the question is about one person among several.

1. a small CLIP is pretrained once per seed on a larger synthetic world with plain captions
   (single-subject scenes; cached under ``pretrain_dir`` and reused by every later ablation with the same
   recipe): the offline stand-in for a pretrained CLIP, so the spread over seeds holds the pretraining's
   noise too (``base="none"``: start from random initialisation instead; a saved model: one base for all);
2. the ablation's world: crowd scenes (the labelled subject among ``crowd`` more full-size, unlabelled
   people), rule-based descriptions;
3. trained arms, per seed: one per focus mechanism (``roi.mode``) on the ViT towers, fine-tuned from the
   pretrained CLIP (``none`` is the CLIP baseline: no ROI branch), and the demo's towers
   (EfficientNet-Lite0 + MiniLM, ``highlight``: the demo's model; ``pool`` is their only other mechanism)
   trained with the demo's recipe on the same data;
4. each trained model and the untouched pretrained CLIP is evaluated zero-shot about the labelled subject:
   on the whole image, and with focus at inference on the subject's box for every mode it can host
   (the image-space modes ``crop`` / ``blur`` / ``circle`` / ``dim`` on any tower, ``attention`` on any
   ViT, and the model's own trained mechanism);
5. a table (mean ± std over seeds), the verdict in words (a difference counts only when every compared
   arm beats chance clearly and the gap exceeds the seeds' spread: :func:`toolkit.verdict`), a bar chart
   and ``report.md``.

The steps are :mod:`focusclip.experiments.toolkit`'s; finished runs and evaluations are reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import OutputError, UsageError
from focusclip.experiments import toolkit
from focusclip.io import atomic_save, atomic_write_json, atomic_write_text, check_dir_target
from focusclip.mappings import deep_merge

logger = logging.getLogger(__name__)

TASKS = ("synth-activity", "synth-age", "synth-expression")
WHOLE = "whole"   #: the inference "mode" of no focus: the whole image
OWN = "own"       #: the inference mode of a model's own trained mechanism (evaluate(..., focus="boxes"))
#: image-space focus modes: they change the pixels, so they work with every tower
IMAGE_SPACE = ("crop", "blur", "circle", "dim")
DEFAULT_MODES = ("none", "attention", "alpha")
DEFAULT_FOCUS_MODES = (*IMAGE_SPACE, "attention")


def trained_modes() -> tuple[str, ...]:
    """The arms one can train: ``none`` (no ROI branch) and every registered focus mechanism."""
    from focusclip.model.focus import FOCUS_MODES

    return ("none", *FOCUS_MODES)


def inference_modes() -> tuple[str, ...]:
    """The focus modes an arm can be evaluated with (the library's, less ``auto``)."""
    from focusclip.model.focus import FOCUS_AT_INFERENCE

    return tuple(m for m in FOCUS_AT_INFERENCE if m != "auto")


@dataclass
class AblateConfig:
    """The ablation's recipe. ``model``: the ViT towers of the ``modes`` arms; ``conv_model``: the demo's
    towers for ``conv_modes`` (``[]``: none); ``focus_modes``: inference modes tried on every arm that can
    host them; ``base``: ``pretrained`` (the cached synthetic-pretrained CLIP, built when missing),
    ``none`` (random initialisation) or a saved model directory of ``model`` to fine-tune; ``tasks``
    zero-shot task names or sets (datasets other than the synthetic world under ``data_root``);
    ``train_config`` a training config file whose keys replace the recipe's (each arm keeps its name,
    folder, seed and mode)."""

    out_dir: str = "runs/ablate"
    model: str = "focusclip-hybrid-minilm"  #: EfficientNet-Lite0 features under a small ViT (offline weights)
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    conv_model: str = "focusclip-lite0-minilm"
    conv_modes: list[str] = field(default_factory=lambda: ["highlight"])
    focus_modes: list[str] = field(default_factory=lambda: list(DEFAULT_FOCUS_MODES))
    base: str = "pretrained"
    pretrain_dir: str = "runs/pretrained"   #: where the pretrained CLIP is cached (never inside out_dir)
    pretrain_n: int = 1920                  #: single-subject images of the pretraining world
    pretrain_epochs: int = 4
    pretrain_lr: float = 5e-4
    pretrain_batch_size: int = 64
    n_train: int = 960                      #: crowd images to train the arms on (10% validation)
    n_eval: int = 240                       #: held-out crowd images
    render_size: int = 128
    image_size: int = 128                   #: the ViT arms' resolution (the hybrid: an 8 x 8 token grid)
    patch_size: int = 0                     #: a plain timm ViT's patch (0: the model config's; the hybrid has none)
    conv_image_size: int = 128              #: the demo's towers' resolution (the demo's)
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-4                        #: fine-tuning (the demo's lr; the conv arms always use it)
    text_unlocked_layers: int = 0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    workers: int = 2
    precision: str = "fp32"
    crowd: int = 1
    caption_variants: int = 2
    heatmap: str = "person"
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    data_root: str = "data/{dataset}"
    train_config: str | None = None
    context_length: int = 48                #: training text tokens (descriptions name activity, age, expression first)

    def check(self) -> None:
        """Refuse what would fail later, before any work: unknown or repeated modes, modes a tower cannot
        host, bad seeds, unknown tasks, a missing base."""
        toolkit.check_seeds(self.seeds)
        known = trained_modes()
        for option, modes in (("--modes", self.modes), ("--conv-modes", self.conv_modes)):
            unknown = [m for m in modes if m not in known]
            if unknown:
                raise UsageError(f"{option}: unknown focus mode {', '.join(unknown)}; known: {', '.join(known)}")
            if len(set(modes)) != len(modes):
                raise UsageError(f"{option} lists a mode twice: {','.join(modes)}")
        if not self.modes and not self.conv_modes:
            raise UsageError("--modes: give at least one arm to train (or --conv-modes)")
        unknown = [m for m in self.focus_modes if m not in inference_modes()]
        if unknown:
            raise UsageError(f"--focus-modes: unknown inference focus mode {', '.join(unknown)}; "
                             f"known: {', '.join(inference_modes())}")
        _check_hosts(self.model, self.modes, "--modes", "--model", {"image_size": self.image_size,
                                                                    **_vit_kwargs(self)})
        _check_hosts(self.conv_model, self.conv_modes, "--conv-modes", "--conv-model",
                     {"image_size": self.conv_image_size})
        if self.base not in ("pretrained", "none") and not (Path(self.base) / "model.safetensors").exists():
            raise UsageError(f"--base {self.base}: expected pretrained, none or a saved model directory "
                             "(with model.safetensors)")
        toolkit.task_groups(self.tasks)

    def arms(self) -> list[str]:
        """The trained arms' names: the ViT modes as they are, the conv modes as ``conv-<mode>``."""
        return [*self.modes, *(f"conv-{m}" for m in self.conv_modes)]


def _vit_kwargs(cfg: AblateConfig) -> dict[str, Any]:
    return {"timm_kwargs": {"patch_size": cfg.patch_size}} if cfg.patch_size else {}


def _check_hosts(model: str, modes: list[str], option: str, model_option: str, vision: dict[str, Any]) -> None:
    """Each mode's mechanism can steer ``model``'s vision tower (built without weights: cheap)."""
    wanted = [m for m in modes if m != "none"]
    if not wanted:
        return
    from focusclip.model import create_model
    from focusclip.model.focus import FOCUS_MODES

    tower = create_model(model, pretrained="none", roi={"enabled": False}, vision=vision).visual
    cannot = [m for m in wanted if not FOCUS_MODES[m].supports(tower)]
    if cannot:
        able = [m for m, c in FOCUS_MODES.items() if c.supports(tower)]
        raise UsageError(f"{option}: {model_option} {model} ({type(tower).__name__}) cannot do focus mode "
                         f"{', '.join(cannot)}; it supports: {', '.join(able) or 'none'}")


# ------------------------------------------------------------------------------------- pretraining
def pretrain_recipe(cfg: AblateConfig, seed: int = 0) -> dict[str, Any]:
    """What the pretrained CLIP of ``seed`` depends on (its cache key)."""
    return {"model": cfg.model, "image_size": cfg.image_size, "patch_size": cfg.patch_size, "n": cfg.pretrain_n,
            "epochs": cfg.pretrain_epochs, "lr": cfg.pretrain_lr, "batch_size": cfg.pretrain_batch_size, "loss": "clip",
            "render_size": cfg.render_size, "captions": "plain", "crowd": 0, "seed": seed}


def pretrained_base(cfg: AblateConfig, seed: int = 0, timings: dict[str, float] | None = None) -> Path:
    """The small CLIP pretrained (training seed ``seed``; the world is the same for every seed) on a larger
    single-subject synthetic world with plain captions, built once under ``pretrain_dir/<model>-<key>/``
    (the key: a hash of :func:`pretrain_recipe`) and reused. The offline stand-in for "a pretrained CLIP"
    that the ablation fine-tunes with focus."""
    recipe = pretrain_recipe(cfg, seed)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    home = Path(cfg.pretrain_dir) / f"{cfg.model}-{key}"
    check_dir_target("--pretrain-dir", home)
    home.mkdir(parents=True, exist_ok=True)
    atomic_write_json(home / "recipe.json", recipe)
    logger.info("pretrained CLIP, seed %d: %s (%d plain-captioned images, %d epochs)", seed, home, cfg.pretrain_n,
                cfg.pretrain_epochs)
    data = toolkit.build_world(home / "data", n_train=cfg.pretrain_n, n_eval=0, render_size=cfg.render_size,
                               crowd=0, workers=cfg.workers, captions="plain")
    conf = toolkit.training_recipe(
        name=f"pretrain-seed{seed}", run_dir=home / "run", seed=seed, data=data, model=cfg.model,
        overrides={"vision": {"image_size": cfg.image_size, **_vit_kwargs(cfg)}, "roi": {"enabled": False}},
        epochs=cfg.pretrain_epochs, batch_size=cfg.pretrain_batch_size, lr=cfg.pretrain_lr, workers=cfg.workers,
        precision=cfg.precision, context_length=cfg.context_length, warmup_steps=20, loss="clip")
    conf["checkpoint"]["every_epochs"] = cfg.pretrain_epochs  # one checkpoint: the run is short
    return toolkit.train_timed(conf, f"pretrained CLIP seed {seed}", timings if timings is not None else {})


def bases(cfg: AblateConfig, timings: dict[str, float] | None = None) -> dict[int, Path]:
    """Seed -> where that seed's ViT arms start: its own pretrained CLIP (``base="pretrained"``), the one
    saved model given (every seed), or nothing (``base="none"``, or no ViT arms)."""
    if not cfg.modes or cfg.base == "none":
        return {}
    if cfg.base == "pretrained":
        logger.info("[1/5] the pretrained CLIP of each seed (built once, then reused)")
        return {seed: pretrained_base(cfg, seed, timings) for seed in cfg.seeds}
    return {seed: Path(cfg.base) for seed in cfg.seeds}


# ------------------------------------------------------------------------------------------- arms
def arm_config(cfg: AblateConfig, arm: str, seed: int, data: dict[str, Path], run_dir: Path,
               user: dict[str, Any] | None = None, start: Path | None = None) -> dict[str, Any]:
    """One arm's training config: the recipe, the user's training config over it, then this arm's model,
    mode, seed and starting weights (``start``: a saved model directory)."""
    conv = arm.startswith("conv-")
    mode = arm.removeprefix("conv-")
    vision = {"image_size": cfg.conv_image_size} if conv else {"image_size": cfg.image_size, **_vit_kwargs(cfg)}
    recipe = toolkit.training_recipe(
        name=f"{arm}-seed{seed}", run_dir=run_dir, seed=seed, data=data, model=cfg.conv_model if conv else cfg.model,
        overrides={"vision": vision}, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, workers=cfg.workers,
        precision=cfg.precision, text_unlocked_layers=cfg.text_unlocked_layers, heatmap=cfg.heatmap,
        context_length=cfg.context_length, pretrained=str(start) if start else None)
    conf = deep_merge(recipe, user or {})
    overrides = deep_merge((conf.get("model") or {}).get("overrides") or {}, {"roi": _roi(mode)})
    conf["model"] = {**conf.get("model", {}), "name": recipe["model"]["name"], "overrides": overrides}
    conf.update(name=f"{arm}-seed{seed}", out_dir=str(run_dir), seed=seed)
    return conf


def _roi(mode: str) -> dict[str, Any]:
    return {"enabled": False} if mode == "none" else {"enabled": True, "mode": mode}


def _user_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    from focusclip.io import read_text
    from focusclip.train.config import load_yaml

    loaded = load_yaml(read_text(path, "training config")) or {}
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a mapping of training config keys at the top level")
    return loaded


def _data_root(cfg: AblateConfig, data_dir: Path, datasets: list[str]) -> dict[str, str]:
    from focusclip.zeroshot.evaluate import dataset_root

    return {ds: str(data_dir) if ds == "synthetic" else str(dataset_root(cfg.data_root, ds)) for ds in datasets}


def hosted_modes(model_dir: Path, wanted: list[str]) -> list[str]:
    """The inference modes a saved model is evaluated with: ``whole``, its own trained mechanism (``own``)
    when it acts at inference, and each of ``wanted`` the model can host
    (:func:`focusclip.model.focus.focus_modes`: image-space modes on any tower, ``attention`` on a ViT, a
    trained mechanism only on a model trained with it)."""
    from focusclip.model import load_model
    from focusclip.model.focus import focus_modes

    model = load_model(model_dir)
    own = model.focus.mode if model.focus_at_inference else None
    able = focus_modes(model)
    return [WHOLE] + ([OWN] if own else []) + [m for m in wanted if m in able and m != own]


def evaluate_modes(model_dir: Path, modes: list[str], root: dict[str, str], results: Path, cfg: AblateConfig,
                   image_cache: Any) -> dict[str, dict[str, float]]:
    """{inference mode: {task: accuracy}} of one model."""
    out = {}
    for mode in modes:
        if mode == WHOLE:
            out[mode] = toolkit.evaluate_model(model_dir, root, results, cfg.tasks, workers=cfg.workers,
                                               image_cache=image_cache)
        else:
            out[mode] = toolkit.evaluate_model(model_dir, root, results, cfg.tasks, workers=cfg.workers,
                                               focus="boxes", focus_mode=None if mode == OWN else mode)
    return out


# ------------------------------------------------------------------------------------- summaries
def row_name(arm: str, mode: str) -> str:
    return f"{arm} @ {mode}"


def format_table(summary: dict[str, Any], rows: list[str], chance: dict[str, float]) -> str:
    """One line per (arm, inference mode): each task / group / the headline, mean ± std over seeds."""
    head = "| arm | focus at inference | " + " | ".join(rows) + " |"
    lines = [head, "|---|---|" + "---:|" * len(rows)]
    if chance:
        lines.append("| chance | | " + " | ".join(f"{chance.get(r, float('nan')):.1f}" for r in rows) + " |")
    for name, row in summary.items():
        arm, mode = name.split(" @ ")
        cells = [f"{row[r]['mean']:.1f}{toolkit.spread_text(row[r])}" for r in rows]
        lines.append(f"| {arm} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_matrix(summary: dict[str, Any], row: str = "headline") -> str:
    """Arms down, inference modes across: ``row`` (the headline) mean ± std."""
    arms = list(dict.fromkeys(n.split(" @ ")[0] for n in summary))
    modes = list(dict.fromkeys(n.split(" @ ")[1] for n in summary))
    lines = ["| arm | " + " | ".join(modes) + " |", "|---|" + "---:|" * len(modes)]
    for arm in arms:
        cells = [f"{summary[row_name(arm, m)][row]['mean']:.1f}{toolkit.spread_text(summary[row_name(arm, m)][row])}"
                 if row_name(arm, m) in summary else "" for m in modes]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(summary: dict[str, Any], chance: float | None, row: str = "headline") -> list[str]:
    """The comparisons in words: per arm across its inference modes, then across arms on the whole image."""
    arms = list(dict.fromkeys(n.split(" @ ")[0] for n in summary))
    out = []
    for arm in arms:
        names = [n for n in summary if n.split(" @ ")[0] == arm]
        if len(names) > 1:
            v = toolkit.verdict(summary, row, chance, names)
            out.append(f"**{arm}, by inference mode** (best first: {', '.join(v['ranking'])}): {v['text']}")
    whole = [n for n in summary if n.endswith(f" @ {WHOLE}")]
    if len(whole) > 1:
        v = toolkit.verdict(summary, row, chance, whole)
        out.append(f"**Arms on the whole image** (best first: {', '.join(v['ranking'])}): {v['text']}")
    return out


def plot_bars(summary: dict[str, Any], chance: float | None, path: Path, row: str = "headline") -> Path:
    """Headline per arm, one bar per inference mode."""
    from matplotlib.figure import Figure

    arms = list(dict.fromkeys(n.split(" @ ")[0] for n in summary))
    modes = list(dict.fromkeys(n.split(" @ ")[1] for n in summary))
    fig = Figure(figsize=(max(6.0, 1.1 * len(arms) * len(modes) / 2), 4.4), dpi=100)
    ax = fig.subplots()
    width = 0.8 / len(modes)
    x = np.arange(len(arms))
    for i, mode in enumerate(modes):
        have = [a for a in arms if row_name(a, mode) in summary]
        ax.bar([x[arms.index(a)] + (i - (len(modes) - 1) / 2) * width for a in have],
               [summary[row_name(a, mode)][row]["mean"] for a in have], width,
               yerr=[summary[row_name(a, mode)][row]["std"] for a in have], capsize=2, color=f"C{i}",
               edgecolor="black", linewidth=0.4, label=mode)
    if chance is not None:
        ax.axhline(chance, color="black", linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(x, arms, rotation=15)
    ax.set_ylabel(f"zero-shot accuracy, {row} (%)")
    ax.set_title("About the labelled subject among distractors, by focus at inference", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_save(path, lambda f: fig.savefig(f, format="png"))
    return path


def write_report(out: Path, cfg: AblateConfig, tables: dict[str, str], words: list[str],
                 figures: dict[str, Path], states: dict[str, str], timings: dict[str, float],
                 starts: dict[int, Path]) -> Path:
    rel = lambda p: p.relative_to(out).as_posix()  # noqa: E731
    crowd = (f"every scene shows the labelled subject among {cfg.crowd} more full-size, unlabelled "
             "people doing other activities (only the subject is annotated)" if cfg.crowd else
             "single-subject scenes")
    where = ", ".join(f"seed {s}: `{b}`" for s, b in starts.items())
    start = (f"each seed fine-tuned from its own small CLIP pretrained here ({cfg.pretrain_n} single-subject "
             f"images with plain captions, {cfg.pretrain_epochs} epochs of batch {cfg.pretrain_batch_size}, lr "
             f"{cfg.pretrain_lr}, CLIP loss; {where})" if starts and cfg.base == "pretrained"
             else f"fine-tuned from `{cfg.base}`" if starts else "from random initialisation")
    conv = (f"; the demo's towers `{cfg.conv_model}` at {cfg.conv_image_size} px: "
            f"{', '.join(f'`conv-{m}`' for m in cfg.conv_modes)}" if cfg.conv_modes else "")
    text = f"""# Focus ablation report

Trained arms: `{cfg.model}` at {cfg.image_size} px{f' (patch {cfg.patch_size})' if cfg.patch_size else ''}, {start}:
{', '.join(f'`{m}`' for m in cfg.modes) or 'none'} (`none`: the CLIP baseline, no ROI branch){conv}. Same data,
budget and seeds ({', '.join(map(str, cfg.seeds))}) for every arm: {cfg.n_train} training images (10% validation),
{cfg.n_eval} held out; {crowd}. {cfg.epochs} epochs of batch {cfg.batch_size}, AdamW lr {cfg.lr}, NT-Xent t = 0.5
({cfg.heatmap} heatmaps, rule-based descriptions cut at {cfg.context_length} tokens){'; training config ' + cfg.train_config if cfg.train_config else ''}.
`base` is the pretrained CLIP itself, untouched ({'one per seed' if cfg.base == 'pretrained' else 'one model: no spread over seeds'}).

Each model is evaluated zero-shot about the labelled subject: on the whole image (`{WHOLE}`), with its
own trained mechanism (`{OWN}`) where that acts at inference, and with each inference-time focus mode it can
host on the subject's box ({', '.join(f'`{m}`' for m in cfg.focus_modes)}). Numbers are whatever this run
measured (mean ± standard deviation over seeds); nothing was tuned on them.

## Headline (mean of the three task groups, %): arms down, focus at inference across

{tables['matrix']}

## What it says

{chr(10).join(f'- {w}' for w in words)}

A difference is reported only when every compared row beats chance clearly (by {toolkit.CLEAR_OVER_CHANCE:g}
points and by more than its own spread) and the gap exceeds the larger spread over seeds.

## Every task (%)

{tables['full']}

![accuracy per arm and mode]({rel(figures['bars'])})

Mechanism state at the end of training (first seed): {'; '.join(f'{k}: {v}' for k, v in states.items()) or 'none'}.

## Data

Training images with the subject heatmap (only the labelled person is marked):

![examples]({rel(figures['examples'])})

## Training

![loss curves]({rel(figures['loss'])})

## Time

{chr(10).join(f'- {k}: {v:.0f} s' for k, v in timings.items())}

Training reused from an earlier run is not listed. Configuration: `ablate_config.json`; results of every
task: `results/*.json`; numbers: `summary.json`.
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
    groups, datasets = toolkit.task_groups(cfg.tasks)
    user = _user_config(cfg.train_config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablate_config.json", asdict(cfg))
    timings: dict[str, float] = {}

    starts = bases(cfg, timings)  # seed -> the ViT arms' starting point

    data_dir = out / "data"
    t = time.monotonic()
    logger.info("[2/5] synthetic world (crowd %d) and rule-based pose descriptions -> %s", cfg.crowd, data_dir)
    data = toolkit.build_world(data_dir, n_train=cfg.n_train, n_eval=cfg.n_eval, render_size=cfg.render_size,
                               crowd=cfg.crowd, workers=cfg.workers, caption_variants=cfg.caption_variants)
    timings["data"] = time.monotonic() - t
    root = _data_root(cfg, data_dir, datasets)

    scores: dict[str, list[dict[str, float]]] = {}
    run_dirs: dict[str, list[Path]] = {arm: [] for arm in cfg.arms()}
    states: dict[str, str] = {}
    eval_images = toolkit.eval_image_cache()  # every arm is evaluated on the same images: decoded once
    if starts:
        logger.info("[3/5] the untouched pretrained CLIP, by focus mode")
        for seed, base in _distinct(starts).items():
            results = out / "results" / (f"base-seed{seed}.json" if cfg.base == "pretrained" else "base.json")
            for mode, acc in evaluate_modes(base, hosted_modes(base, cfg.focus_modes), root, results, cfg,
                                            eval_images).items():
                scores.setdefault(row_name("base", mode), []).append(acc)
    for seed in cfg.seeds:
        for arm in cfg.arms():
            run_dir = out / "runs" / f"{arm}-seed{seed}"
            start = None
            if starts and not arm.startswith("conv-"):
                overrides = {"vision": {"image_size": cfg.image_size, **_vit_kwargs(cfg)}, "roi": _roi(arm)}
                start = toolkit.start_from(starts[seed], cfg.model, overrides,
                                           out / "start" / (f"{arm}-seed{seed}" if cfg.base == "pretrained" else arm))
            conf = arm_config(cfg, arm, seed, data, run_dir, user, start)
            logger.info("[4/5] training %s (seed %d)", arm, seed)
            model_dir = toolkit.train_timed(conf, f"{arm} seed {seed}", timings)
            run_dirs[arm].append(model_dir.parent)
            t = time.monotonic()
            results = out / "results" / f"{arm}-seed{seed}.json"
            for mode, acc in evaluate_modes(model_dir, hosted_modes(model_dir, cfg.focus_modes), root, results,
                                            cfg, eval_images).items():
                scores.setdefault(row_name(arm, mode), []).append(acc)
            timings[f"eval {arm} seed {seed}"] = time.monotonic() - t
            if seed == cfg.seeds[0] and not arm.endswith("none"):
                states[arm] = _state(model_dir)

    logger.info("[5/5] report")
    summary = toolkit.summarise(scores, groups)
    synthetic_only = datasets == ["synthetic"]
    chance = toolkit.chance_levels(data_dir, cfg.tasks, groups) if synthetic_only else {}
    rows = [t for tasks in groups.values() for t in tasks] + [f"{g} mean" for g in groups if len(groups[g]) > 1]
    rows.append("headline")
    tables = {"full": format_table(summary, rows, chance), "matrix": format_matrix(summary)}
    words = verdicts(summary, chance.get("headline"))
    figures = {
        "examples": toolkit.plot_examples(data["train"], out / "figures" / "examples.png"),
        "loss": toolkit.plot_losses(run_dirs, out / "figures" / "loss_curves.png"),
        "bars": plot_bars(summary, chance.get("headline"), out / "figures" / "ablation_bars.png"),
    }
    report = write_report(out, cfg, tables, words, figures, states, timings, starts)
    atomic_write_json(out / "summary.json", {"summary": summary, "chance": chance, "scores": scores,
                                             "verdicts": words, "timings": timings,
                                             "bases": {str(s): str(b) for s, b in starts.items()}})
    table = tables["matrix"] + "\n\n" + "\n".join(f"- {w}" for w in words)
    return {"table": table, "full_table": tables["full"], "report": report, "summary": summary, "verdicts": words}


def _distinct(starts: dict[int, Path]) -> dict[int, Path]:
    """Each starting model once (the first seed that uses it): one model is one row of scores."""
    out: dict[int, Path] = {}
    for seed, path in starts.items():
        if path not in out.values():
            out[seed] = path
    return out


def _state(model_dir: Path) -> str:
    from focusclip.model import load_model

    model = load_model(model_dir)
    return ", ".join(f"{k} {float(v):.3f}" for k, v in model.focus_summary().items())

"""Composing synthetic scenes and writing the synthetic world to disk.

One image is a cluttered background with distractor objects and small unannotated people, a ground
line, and one or two annotated main subjects doing the image's activity. With ``crowd=N`` the labelled
subject stands among N more full-size, unannotated people doing other activities (of any age and
expression): only the subject is in the record, so its heatmap marks one person among several. Every image is rendered
from its own generator ``numpy.random.default_rng([seed, stream, index])``, so the output does not
depend on the number of workers and the held-out eval images (stream 1) never repeat a training
image (stream 0).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from focusclip.data.records import Record, write_records
from focusclip.data.synthetic.classes import (
    ACTIVITIES,
    ACTIVITY_CATEGORIES,
    AGE_GROUPS,
    EXPRESSIONS,
    class_lists,
)
from focusclip.data.synthetic.figures import Figure, draw_figure, figure_extent, sample_looks
from focusclip.data.synthetic.pose import AGE_HEIGHTS, forward_kinematics, sample_pose, sample_proportions
from focusclip.data.synthetic.scene import (
    draw_background,
    draw_chair,
    draw_clutter,
    draw_ground_line,
    draw_object,
    draw_occluder,
    draw_shadow,
    random_color,
)
from focusclip.errors import UsageError
from focusclip.io import atomic_save, atomic_write_json, check_dir_target, check_no_overwrite
from focusclip.progress import Progress
from focusclip.skeleton import L_ANKLE, L_ELBOW, L_KNEE, L_WRIST, R_ANKLE, R_ELBOW, R_KNEE, R_WRIST

logger = logging.getLogger(__name__)

TRAIN_STREAM, EVAL_STREAM, SPLIT_STREAM = 0, 1, 2
WORLD_FILES = ("train.jsonl", "val.jsonl", "eval.jsonl", "classes.json", "world.json")
SUPERSAMPLE = 2
JPEG_QUALITY = 90
VERSION = 1

# Activities whose figures are wide: never two of them side by side (they would be too small).
_WIDE_ACTIVITIES = ("lying down", "doing push-ups")
_OCCLUDABLE = (R_ANKLE, R_KNEE, L_KNEE, L_ANKLE, R_WRIST, R_ELBOW, L_ELBOW, L_WRIST)


@dataclass
class SyntheticSample:
    """One rendered image with its annotation (coordinates in output pixels)."""

    image: Image.Image
    activity: str
    labels: dict[str, str]
    people: list[dict[str, Any]] = field(default_factory=list)


def _pick(rng: np.random.Generator, names: tuple[str, ...], given: str | None, what: str) -> str:
    drawn = names[int(rng.integers(len(names)))]  # always draw: the stream does not depend on `given`
    if given is None:
        return drawn
    if given not in names:
        raise UsageError(f"unknown {what} {given!r}; expected one of {list(names)}")
    return given


def _make_figure(
    rng: np.random.Generator,
    activity: str,
    age: str,
    expression: str,
    fade: float = 0.0,
    fade_to: tuple[int, int, int] = (128, 128, 128),
) -> Figure:
    """A figure posed at unit height, pelvis at the origin (place it with :func:`_place`)."""
    props = sample_proportions(rng, age)
    pose = sample_pose(rng, activity, props)
    colors, sleeves, pants = sample_looks(rng, fade=fade, fade_to=fade_to)
    return Figure(
        joints=forward_kinematics(pose, props),
        height=1.0,
        props=props,
        pose=pose,
        expression=expression,
        colors=colors,
        long_sleeves=sleeves,
        long_pants=pants,
    )


def _place(fig: Figure, height: float, x: float, ground: float) -> Figure:
    """Scale a unit figure to ``height`` and move it so its pelvis is at ``x`` and its lowest joint
    (plus half a limb) sits ``lift`` above ``ground``."""
    low = fig.joints[:, 1].max() + 0.5 * fig.props.limb
    y = ground - fig.pose.lift * height - low * height
    joints = fig.joints * height + np.array([x, y])
    return Figure(
        joints=joints,
        height=height,
        props=fig.props,
        pose=fig.pose,
        expression=fig.expression,
        colors=fig.colors,
        long_sleeves=fig.long_sleeves,
        long_pants=fig.long_pants,
    )


def _fit_height(fig: Figure, wanted: float, slot_w: float, ground: float, top: float) -> float:
    """The largest height <= ``wanted`` at which the unit figure fits ``slot_w`` and stays below ``top``."""
    x1, y1, x2, y2 = figure_extent(fig)
    low = fig.joints[:, 1].max() + 0.5 * fig.props.limb
    span_h = (low - y1) + fig.pose.lift
    return float(min(wanted, slot_w / max(x2 - x1, 1e-6), (ground - top) / max(span_h, 1e-6)))


def _draw_distractors(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    canvas: int,
    horizon: float,
    ground: float,
    max_height: float,
) -> None:
    """Background objects and small, faded, unannotated people doing random activities."""
    for _ in range(int(rng.integers(1, 5))):
        base = rng.uniform(horizon, ground)
        depth = 0.4 + 0.6 * (base - horizon) / max(ground - horizon, 1.0)
        draw_object(
            draw, rng, rng.uniform(-0.05, 1.05) * canvas, base, rng.uniform(0.25, 0.6) * canvas * depth
        )
    n_people = int(rng.choice([0, 1, 1, 2, 3]))
    for _ in range(n_people):
        activity = ACTIVITIES[int(rng.integers(len(ACTIVITIES)))]
        age = AGE_GROUPS[int(rng.integers(len(AGE_GROUPS)))]
        expression = EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))]
        fade_to = random_color(rng, sat=(0.0, 0.3), val=(0.4, 0.8))
        fig = _make_figure(rng, activity, age, expression, fade=rng.uniform(0.25, 0.55), fade_to=fade_to)
        height = rng.uniform(0.35, 0.65) * max_height * (0.7 if age == "kid" else 1.0)
        base = rng.uniform(horizon + 0.03 * canvas, ground - 0.02 * canvas)
        placed = _place(fig, height, rng.uniform(-0.05, 1.05) * canvas, base)
        if placed.pose.prop == "chair":
            draw_chair(draw, placed, base, random_color(rng))
        draw_figure(draw, placed)


def render_sample(
    rng: np.random.Generator,
    image_size: int = 224,
    activity: str | None = None,
    age: str | None = None,
    expression: str | None = None,
    supersample: int = SUPERSAMPLE,
    crowd: int = 0,
) -> SyntheticSample:
    """Render one scene; ``activity``/``age``/``expression`` default to random draws from ``rng``.
    ``crowd``: that many more full-size people (other activities, unannotated) beside the subject."""
    activity = _pick(rng, ACTIVITIES, activity, "activity")
    age = _pick(rng, AGE_GROUPS, age, "age group")
    expression = _pick(rng, EXPRESSIONS, expression, "expression")
    size, canvas = int(image_size), int(image_size) * supersample
    horizon = rng.uniform(0.3, 0.6) * canvas
    ground = rng.uniform(0.86, 0.96) * canvas
    margin = 0.03 * canvas

    # The annotated subjects (posed first: their size bounds the distractors').
    two = bool(rng.random() < 0.2) and activity not in _WIDE_ACTIVITIES
    figs = [_make_figure(rng, activity, age, expression)]
    ages = [age]
    if crowd > 0:
        two = False
        for _ in range(crowd):
            others = tuple(a for a in ACTIVITIES if a != activity)
            other_age = AGE_GROUPS[int(rng.integers(len(AGE_GROUPS)))]
            figs.append(_make_figure(rng, others[int(rng.integers(len(others)))], other_age,
                                     EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))]))
            ages.append(other_age)
    elif two:
        figs.append(_make_figure(rng, activity, age, expression))
        ages.append(age)
    n = len(figs)
    heights = []
    for k, fig in enumerate(figs):
        shrink = (0.8 if n > 1 else 1.0) * (0.9 if k and not crowd else 1.0)
        wanted = rng.uniform(*AGE_HEIGHTS[ages[k]]) * canvas * shrink
        slot_w = (canvas / n) - 2 * margin
        heights.append(_fit_height(fig, wanted, slot_w, ground, margin))
    main_slot = int(rng.integers(n))
    slots = [main_slot] + [s for s in range(n) if s != main_slot]
    truncate = n == 1 and rng.random() < 0.1
    placed = []
    for k, (fig, h) in enumerate(zip(figs, heights)):
        slot = slots[k]
        sx1 = slot * canvas / len(figs) + margin
        sx2 = (slot + 1) * canvas / len(figs) - margin
        x1, _, x2, _ = figure_extent(fig)
        lo, hi = sx1 - x1 * h, sx2 - x2 * h
        x = rng.uniform(lo, hi) if hi > lo else (lo + hi) / 2
        if truncate:
            x += (1 if rng.random() < 0.5 else -1) * rng.uniform(0.15, 0.35) * (x2 - x1) * h
        placed.append(_place(fig, h, x, ground))

    image = draw_background(rng, canvas, horizon)
    draw = ImageDraw.Draw(image)
    draw_clutter(draw, rng, canvas, int(rng.integers(4, 14)))
    _draw_distractors(draw, rng, canvas, horizon, ground, max_height=min(heights))
    draw_ground_line(draw, canvas, ground, random_color(rng, sat=(0.0, 0.5), val=(0.1, 0.35)))
    for fig in reversed(placed):  # the main subject last, in front
        draw_shadow(draw, fig, ground)
        if fig.pose.prop == "chair":
            draw_chair(draw, fig, ground, random_color(rng, sat=(0.2, 0.7), val=(0.3, 0.7)))
        draw_figure(draw, fig)

    hidden = [np.zeros(16, dtype=bool) for _ in placed]
    if rng.random() < 0.2:
        joint = _OCCLUDABLE[int(rng.integers(len(_OCCLUDABLE)))]
        radius = rng.uniform(0.07, 0.12) * placed[0].height
        center = placed[0].joints[joint] + rng.uniform(-0.3, 0.3, size=2) * radius
        covers = draw_occluder(draw, rng, center, radius)
        hidden = [h | covers(fig.joints) for h, fig in zip(hidden, placed)]

    if supersample > 1:
        image = image.reduce(supersample)
    image = _add_grain(image, rng, rng.uniform(2.0, 7.0))
    annotated = 1 if crowd > 0 else len(placed)  # a crowd's other people are not labelled
    people = [_person_entry(fig, hid, size, supersample) for fig, hid in zip(placed[:annotated], hidden)]
    labels = {"activity": activity, "age": age, "expression": expression}
    return SyntheticSample(image=image, activity=activity, labels=labels, people=people)


def _add_grain(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """Per-pixel Gaussian noise (camera grain) of standard deviation ``sigma`` grey levels."""
    arr = np.asarray(image, dtype=np.int16)
    arr = arr + (rng.standard_normal(arr.shape, dtype=np.float32) * sigma).astype(np.int16)
    np.clip(arr, 0, 255, out=arr)
    return Image.fromarray(arr.astype(np.uint8))


def _r(v: float, nd: int = 2) -> float:
    return float(round(float(v), nd))


def _person_entry(fig: Figure, hidden: np.ndarray, size: int, ss: int) -> dict[str, Any]:
    """The record's person: MPII joints and visibility, centre, scale, person and head boxes.

    ``scale`` is max(box width, box height) / 200 so a crop of ``scale * 200`` px holds the whole
    person also when lying down (MPII derives it from the head size, i.e. the person's length).
    """
    j = fig.joints / ss
    inside = (j[:, 0] >= 0) & (j[:, 0] < size) & (j[:, 1] >= 0) & (j[:, 1] < size)
    visible = inside & ~hidden
    joints = [[_r(x), _r(y)] if v else [-1.0, -1.0] for (x, y), v in zip(j, visible)]
    x1, y1, x2, y2 = (v / ss for v in figure_extent(fig))
    c, r = fig.head_center / ss, fig.head_radius / ss

    def clip(b: tuple[float, ...]) -> list[float]:
        return [
            _r(min(max(b[0], 0), size)),
            _r(min(max(b[1], 0), size)),
            _r(min(max(b[2], 0), size)),
            _r(min(max(b[3], 0), size)),
        ]

    return {
        "center": [_r((x1 + x2) / 2), _r((y1 + y2) / 2)],
        "scale": _r(max(x2 - x1, y2 - y1) / 200.0, 4),
        "joints": joints,
        "visible": [int(v) for v in visible],
        "head_box": clip((c[0] - r, c[1] - r, c[0] + r, c[1] + r)),
        "box": clip((x1, y1, x2, y2)),
    }


def sample_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The generator of image ``index`` in ``stream`` (0 train/val, 1 eval)."""
    return np.random.default_rng([int(seed), int(stream), int(index)])


def make_record(sample: SyntheticSample, image: str, split: str, record_id: str, size: int) -> Record:
    """A record (data.records schema) for a rendered sample; no captions (the describer adds them)."""
    act = sample.activity
    return {
        "id": record_id,
        "image": image,
        "width": size,
        "height": size,
        "split": split,
        "activity": {"id": ACTIVITIES.index(act), "name": act, "category": ACTIVITY_CATEGORIES[act]},
        "people": sample.people,
        "labels": dict(sample.labels),
    }


def _image_name(stream: int, index: int) -> str:
    return f"{'eval' if stream == EVAL_STREAM else 'synth'}_{index:06d}"


def render_item(out_dir: str | os.PathLike, seed: int, stream: int, index: int, image_size: int,
                crowd: int = 0) -> Record:
    """Render image ``index`` of ``stream``, save it as ``images/<name>.jpg`` (atomically) and return its record.

    The activity cycles with the index so every activity is equally frequent; age and expression are
    random. The split is filled in by :func:`generate_world`.
    """
    rng = sample_rng(seed, stream, index)
    sample = render_sample(rng, image_size=image_size, activity=ACTIVITIES[index % len(ACTIVITIES)], crowd=crowd)
    name = _image_name(stream, index)
    rel = f"images/{name}.jpg"
    path = Path(out_dir) / rel
    atomic_save(path, lambda f: sample.image.save(f, format="JPEG", quality=JPEG_QUALITY))
    split = "eval" if stream == EVAL_STREAM else "train"
    return make_record(sample, rel, split, name, image_size)


def _render_chunk(job: tuple[str, int, int, int, int, int, int]) -> list[Record]:
    out_dir, seed, stream, start, stop, image_size, crowd = job
    return [render_item(out_dir, seed, stream, i, image_size, crowd) for i in range(start, stop)]


def val_indices(n: int, seed: int, val_fraction: float) -> set[int]:
    """The training indices that go to the validation split (a seeded, worker-independent choice)."""
    n_val = int(round(n * val_fraction))
    if n_val <= 0:
        return set()
    rng = np.random.default_rng([int(seed), SPLIT_STREAM])
    return {int(i) for i in rng.permutation(n)[:n_val]}


def _chunks(stream: int, count: int, size: int) -> list[tuple[int, int, int]]:
    return [(stream, s, min(s + size, count)) for s in range(0, count, size)]


def generate_world(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    image_size: int = 224,
    eval_n: int | None = None,
    workers: int = 1,
    val_fraction: float = 0.1,
    show_progress: bool = True,
    overwrite: bool = False,
    crowd: int = 0,
) -> dict[str, Any]:
    """Render ``n`` training images (``val_fraction`` of them form ``val``) plus ``eval_n`` held-out ones.

    Writes ``out_dir/images/*.jpg``, ``train.jsonl``, ``val.jsonl``, ``eval.jsonl``, ``classes.json``
    and ``world.json`` (the parameters). ``eval_n`` defaults to ``max(12, n // 5)``. ``crowd``: that many
    more full-size, unannotated people in every scene (see :func:`render_sample`). The result is the
    same for any ``workers``. Files of an earlier world in ``out_dir`` are replaced only with
    ``overwrite``. Returns counts and paths.
    """
    if n < 1:
        raise UsageError(f"n must be at least 1, got {n}")
    if image_size < 32:
        raise UsageError(f"image_size must be at least 32 pixels, got {image_size}")
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction}")
    eval_n = max(len(ACTIVITIES), n // 5) if eval_n is None else int(eval_n)
    if eval_n < 0:
        raise UsageError(f"eval_n must be >= 0, got {eval_n}")
    if not 0 <= int(crowd) <= 3:
        raise UsageError(f"crowd must be 0..3 more people per scene, got {crowd}")
    out = Path(out_dir)
    check_dir_target("out_dir", out)
    check_no_overwrite([out / name for name in WORLD_FILES], overwrite)
    (out / "images").mkdir(parents=True, exist_ok=True)
    workers = max(1, int(workers))
    total = n + eval_n
    chunk = max(4, min(64, total // (workers * 8) or 1))
    plan = _chunks(TRAIN_STREAM, n, chunk) + _chunks(EVAL_STREAM, eval_n, chunk)
    jobs = [(str(out), int(seed), s, a, b, int(image_size), int(crowd)) for s, a, b in plan]
    logger.info(
        "rendering %d training and %d eval images at %dpx into %s (%d workers)",
        n,
        eval_n,
        image_size,
        out,
        workers,
    )
    train: list[Record] = []
    evals: list[Record] = []
    with Progress(total, "synth", unit="img", disable=not show_progress) as progress:
        if workers == 1:
            results = map(_render_chunk, jobs)
            for (stream, a, b), recs in zip(plan, results):
                (evals if stream == EVAL_STREAM else train).extend(recs)
                progress.update(b - a)
        else:
            ctx = multiprocessing.get_context(
                "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            )
            with ctx.Pool(workers) as pool:
                for (stream, a, b), recs in zip(plan, pool.imap(_render_chunk, jobs)):
                    (evals if stream == EVAL_STREAM else train).extend(recs)
                    progress.update(b - a)
    val_idx = val_indices(n, seed, val_fraction)
    for i, rec in enumerate(train):
        if i in val_idx:
            rec["split"] = "val"
    paths = {name: out / f"{name}.jsonl" for name in ("train", "val", "eval")}
    write_records(paths["train"], (r for r in train if r["split"] == "train"))
    write_records(paths["val"], (r for r in train if r["split"] == "val"))
    write_records(paths["eval"], evals)
    atomic_write_json(out / "classes.json", class_lists())
    atomic_write_json(
        out / "world.json",
        {
            "generator": "focusclip.data.synthetic",
            "version": VERSION,
            "seed": int(seed),
            "n": n,
            "eval_n": eval_n,
            "image_size": int(image_size),
            "val_fraction": val_fraction,
            "crowd": int(crowd),
        },
    )
    counts = {"train": n - len(val_idx), "val": len(val_idx), "eval": eval_n}
    logger.info("synthetic world: %s", counts)
    return {
        **counts,
        "out_dir": str(out),
        "classes": str(out / "classes.json"),
        **{f"{k}_jsonl": str(v) for k, v in paths.items()},
    }

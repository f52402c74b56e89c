"""Benchmark: vectorised ROI heatmaps (focusclip.heatmaps) against a straightforward numpy reference.

The reference below evaluates one full-frame Gaussian per person (person maps) or per body-part group
per person (part maps) on a meshgrid, in pure numpy, the way the paper's reference code does. Both are
run on a 1280x720 frame with 2 people (fixed seed); the script reports the median time of several
repeats, the speed-up and the largest absolute difference (must be < 1e-5).

    python benchmarks/heatmaps.py                # table
    python benchmarks/heatmaps.py --markdown     # block for benchmarks/RESULTS.md

By default BLAS/OpenMP are limited to one thread (``--threads``), so both sides run on one core.
Exit status 1 when the outputs differ by 1e-5 or more or a speed-up is below ``--min-speedup``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)

MAX_ABS_DIFF = 1e-5

# A standing person in MPII joint order, as (x, y) in units of body height, origin at the pelvis.
_TEMPLATE = [
    (-0.08, 0.50), (-0.08, 0.27), (-0.08, 0.02), (0.08, 0.02), (0.10, 0.27), (0.12, 0.50),  # legs
    (0.00, 0.00), (0.00, -0.30), (0.00, -0.36), (0.00, -0.50),  # pelvis, thorax, neck, head top
    (-0.22, 0.02), (-0.20, -0.15), (-0.12, -0.30), (0.12, -0.30), (0.22, -0.12), (0.30, -0.30),  # arms
]  # fmt: skip


def make_frame(seed: int = 0, people: int = 2, width: int = 1280, height: int = 720):
    """Joints (P, 16, 2) and visibility (P, 16) of ``people`` jittered, partly occluded people."""
    import numpy as np

    rng = np.random.default_rng(seed)
    template = np.asarray(_TEMPLATE, dtype=np.float64)
    joints, visible = [], []
    for p in range(people):
        body = rng.uniform(0.5, 0.8) * height
        centre = np.array(
            [(p + 0.5) * width / people + rng.uniform(-80, 80), height * rng.uniform(0.45, 0.6)]
        )
        j = centre + template * body + rng.normal(0, 0.02 * body, template.shape)
        v = rng.random(16) > 0.15
        joints.append(np.where(v[:, None], j, -1.0))
        visible.append(v.astype(np.float64))
    return np.stack(joints), np.stack(visible)


# ------------------------------------------------------------------ the straightforward reference
def naive_gaussian(points, height: int, width: int, min_sigma: float = 1.0):
    """One full-frame Gaussian from the box of ``points`` (K, 2), evaluated at every pixel centre."""
    import numpy as np

    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sx, sy = max((x2 - x1) / 2, min_sigma), max((y2 - y1) / 2, min_sigma)
    return np.exp(-((xs - cx) ** 2 / (2 * sx**2) + (ys - cy) ** 2 / (2 * sy**2)))


def naive_person(joints, visible, height: int, width: int):
    import numpy as np

    out = np.zeros((height, width))
    for j, v in zip(joints, visible):
        pts = j[v > 0]
        if len(pts) >= 2:
            out += naive_gaussian(pts, height, width)
    return np.clip(out, 0, 1)


def naive_parts(joints, visible, height: int, width: int, groups):
    import numpy as np

    out = np.zeros((height, width))
    for j, v in zip(joints, visible):
        for ids in groups:
            pts = np.array([j[i] for i in ids if v[i] > 0])
            if len(pts) >= 2:
                out += naive_gaussian(pts, height, width)
    return np.clip(out, 0, 1)


# ------------------------------------------------------------------------------------ timing
def median_ms(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), result


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from focusclip.heatmaps import MPII_PART_GROUPS, keypoints_heatmap

    h, w = args.height, args.width
    joints, visible = make_frame(args.seed, args.people, w, h)
    groups = list(MPII_PART_GROUPS.values())
    rows = []
    for mode in ("person", "parts"):
        if mode == "person":
            naive_ms, ref = median_ms(lambda: naive_person(joints, visible, h, w), args.repeats)
        else:
            naive_ms, ref = median_ms(lambda: naive_parts(joints, visible, h, w, groups), args.repeats)
        fast_ms, out = median_ms(
            lambda m=mode: keypoints_heatmap(joints, visible, (h, w), m), args.repeats * 5
        )
        diff = float(np.abs(out.astype(np.float64) - ref).max())
        rows.append((mode, naive_ms, fast_ms, naive_ms / fast_ms, diff))

    cmd = "python benchmarks/heatmaps.py " + " ".join(sys.argv[1:])
    if args.markdown:
        print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: `{cmd.strip()}`")
        print(
            f"- machine: {C.nproc()} CPUs (nproc), {C.cpu_model()}; BLAS/OpenMP threads: {args.threads}; "
            f"numpy {np.__version__}, Python {platform.python_version()}"
        )
        print(
            f"- frame: {w}x{h}, {args.people} people (seed {args.seed}), median of {args.repeats} "
            f"(reference) / {args.repeats * 5} (vectorised) runs after one warm-up\n"
        )
        print("| map | reference (ms) | vectorised (ms) | speed-up | max abs diff |")
        print("|---|---:|---:|---:|---:|")
        for mode, n, f, r, d in rows:
            print(f"| {mode} | {n:.2f} | {f:.3f} | {r:.0f}x | {d:.1e} |")
    else:
        print(f"{w}x{h}, {args.people} people, threads={args.threads}, CPU: {C.cpu_model()}")
        print(
            f"{'map':8s} {'reference ms':>13s} {'vectorised ms':>14s} {'speed-up':>9s} {'max abs diff':>13s}"
        )
        for mode, n, f, r, d in rows:
            print(f"{mode:8s} {n:13.2f} {f:14.3f} {r:8.0f}x {d:13.1e}")
    status = 0
    for mode, _, _, ratio, diff in rows:
        if not diff < MAX_ABS_DIFF:
            print(f"FAIL {mode}: max abs diff {diff:.2e} >= {MAX_ABS_DIFF}", file=sys.stderr)
            status = 1
        if ratio < args.min_speedup:
            print(f"FAIL {mode}: speed-up {ratio:.1f}x < {args.min_speedup}x", file=sys.stderr)
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--people", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of the reference (x5 vectorised)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before numpy loads)")
    parser.add_argument("--min-speedup", type=float, default=20.0)
    parser.add_argument("--markdown", action="store_true", help="print a block for benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

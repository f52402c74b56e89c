"""Benchmark: vectorised ROI heatmaps (focusclip.heatmaps) against a straightforward numpy reference.

The reference below evaluates one full-frame Gaussian per person (person maps) or per body-part group
per person (part maps) on a meshgrid, in plain numpy float64, the way the paper's reference code does.
Both render the same maps of two 1280x720 frames (fixed seed): ``standing`` (2 people filling the
frame's height) and ``small`` (2 people a sixth of its height: their Gaussians' far tails cross float32's
subnormal range inside the frame, the case of issue 23). Reference and ours are timed interleaved in one
run (median of several rounds), so the speed-up is a ratio of one moment's machine, not of two runs.

"No cutoff" is the library with its factor cutoff switched off (``FACTOR_CUTOFF = 0``), i.e. the maps as
rendered before issue 23's fix, timed in the same rounds. Also reported, per frame and map: how many entries of the float32 separable factors a plain cast of the
float64 Gaussians leaves subnormal ("raw"), how many the library's factors hold (must be 0), and this
CPU's subnormal penalty: the time of ``Gy.T @ Gx`` over the raw factors divided by the same product over
the library's (about 250x on CPUs that handle subnormals in microcode, about 1x on others).

    python benchmarks/heatmaps.py                # table
    python benchmarks/heatmaps.py --markdown     # block for benchmarks/RESULTS.md

By default BLAS/OpenMP are limited to one thread (``--threads``), so both sides run on one core.
Exit status 1 when the outputs differ by 1e-5 or more, a speed-up is below ``--min-speedup``, or the
library's factors or maps hold a float32 subnormal.
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


#: The frames: people's body height as a fraction of the frame's height (drawn uniformly in the range).
FRAMES = {"standing": (0.5, 0.8), "small": (0.14, 0.2)}


def make_frame(seed: int = 0, people: int = 2, width: int = 1280, height: int = 720,
               body_range: tuple[float, float] = FRAMES["standing"]):
    """Joints (P, 16, 2) and visibility (P, 16) of ``people`` jittered, partly occluded people."""
    import numpy as np

    rng = np.random.default_rng(seed)
    template = np.asarray(_TEMPLATE, dtype=np.float64)
    joints, visible = [], []
    for p in range(people):
        body = rng.uniform(*body_range) * height
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
def interleaved_ms(fns: dict, repeats: int, inner: dict | None = None) -> tuple[dict, dict]:
    """Median ms per call of each function, timed round-robin (one warm-up each, then ``repeats`` rounds,
    the order rotating each round so that no function always runs after the same one; ``inner[name]``
    calls per round for the fast ones), and each function's last result."""
    inner = inner or {}
    results = {name: fn() for name, fn in fns.items()}  # warm-up
    times: dict = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, k = fns[name], inner.get(name, 1)
            t = time.perf_counter()
            for _ in range(k):
                results[name] = fn()
            times[name].append((time.perf_counter() - t) * 1e3 / k)
    return {name: statistics.median(v) for name, v in times.items()}, results


# ------------------------------------------------------------------ factors and subnormals
def subnormals(a) -> int:
    import numpy as np

    return int(((a != 0) & (np.abs(a) < np.finfo(np.float32).tiny)).sum())


def factor_check(joints, visible, size, groups, repeats: int) -> dict:
    """Raw (plain float32 cast) vs library separable factors of one map: subnormal counts and the time of
    their ``Gy.T @ Gx`` products (the CPU's subnormal penalty)."""
    import numpy as np

    from focusclip import heatmaps as H

    h, w = size
    pts, vis = H.point_sets(joints, visible, 16, "joints")
    if groups is not None:
        pts, vis = H._grouped_sets(pts, vis, groups)
    cx, cy, sx, sy, valid = H._set_params(pts, vis)
    cx, cy = cx[valid], cy[valid]
    sx, sy = np.maximum(sx[valid], H.DEFAULT_MIN_SIGMA), np.maximum(sy[valid], H.DEFAULT_MIN_SIGMA)
    raw_x = np.exp(-((np.arange(w) - cx[:, None]) ** 2) / (2 * sx[:, None] ** 2)).astype(np.float32)
    raw_y = np.exp(-((np.arange(h) - cy[:, None]) ** 2) / (2 * sy[:, None] ** 2)).astype(np.float32)
    ours_x, ours_y = H.gaussian_factor(cx, sx, w), H.gaussian_factor(cy, sy, h)
    ms, prods = interleaved_ms({"raw": lambda: raw_y.T @ raw_x, "ours": lambda: ours_y.T @ ours_x},
                               repeats, {"raw": 5, "ours": 5})
    return {"raw_subnormals": subnormals(raw_x) + subnormals(raw_y),
            "raw_product_subnormals": subnormals(prods["raw"]),
            "ours_subnormals": subnormals(ours_x) + subnormals(ours_y),
            "raw_matmul_ms": ms["raw"], "ours_matmul_ms": ms["ours"], "penalty": ms["raw"] / ms["ours"]}


def without_cutoff(fn):
    """Call ``fn`` with the library's factor cutoff off (``FACTOR_CUTOFF = 0``): the maps as rendered
    before issue 23's fix (a plain float32 cast of the float64 factors)."""
    from focusclip import heatmaps as H

    saved, H.FACTOR_CUTOFF = H.FACTOR_CUTOFF, 0.0
    try:
        return fn()
    finally:
        H.FACTOR_CUTOFF = saved


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from focusclip.heatmaps import MPII_PART_GROUPS, keypoints_heatmap

    h, w = args.height, args.width
    groups = list(MPII_PART_GROUPS.values())
    rows = []
    for frame in args.frames:
        joints, visible = make_frame(args.seed, args.people, w, h, FRAMES[frame])
        for mode in args.maps:
            if mode == "person":
                ref_fn = lambda j=joints, v=visible: naive_person(j, v, h, w)  # noqa: E731
            else:
                ref_fn = lambda j=joints, v=visible: naive_parts(j, v, h, w, groups)  # noqa: E731
            ours_fn = lambda j=joints, v=visible, m=mode: keypoints_heatmap(j, v, (h, w), m)  # noqa: E731
            before_fn = lambda f=ours_fn: without_cutoff(f)  # noqa: E731
            ms, res = interleaved_ms({"reference": ref_fn, "ours": ours_fn, "before": before_fn}, args.repeats,
                                     {"ours": 5, "before": 5})
            diff = float(np.abs(res["ours"].astype(np.float64) - res["reference"]).max())
            fc = factor_check(joints, visible, (h, w), None if mode == "person" else MPII_PART_GROUPS,
                              args.repeats)
            rows.append({"frame": frame, "map": mode, "reference_ms": ms["reference"], "ours_ms": ms["ours"],
                         "speedup": ms["reference"] / ms["ours"], "max_abs_diff": diff,
                         "before_ms": ms["before"], "before_speedup": ms["reference"] / ms["before"],
                         "map_subnormals": subnormals(res["ours"]), **fc})

    cmd = "python benchmarks/heatmaps.py " + " ".join(sys.argv[1:] if args.argv is None else args.argv)
    header = ["frame", "map", "reference (ms)", "ours (ms)", "speed-up", "no cutoff (ms)", "speed-up",
              "max abs diff", "raw subnormals", "ours subnormals", "CPU subnormal penalty"]
    table = [[r["frame"], r["map"], f"{r['reference_ms']:.2f}", f"{r['ours_ms']:.3f}", f"{r['speedup']:.0f}x",
              f"{r['before_ms']:.3f}", f"{r['before_speedup']:.0f}x", f"{r['max_abs_diff']:.1e}",
              r["raw_subnormals"], r["ours_subnormals"] + r["map_subnormals"], f"{r['penalty']:.2f}x"]
             for r in rows]
    if args.markdown:
        print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: `{cmd.strip()}`")
        print(
            f"- machine: {C.nproc()} CPUs (nproc), {C.cpu_model()}; BLAS/OpenMP threads: {args.threads}; "
            f"numpy {np.__version__}, Python {platform.python_version()}; 1-min load {C.load_average()}"
        )
        print(
            f"- frames: {w}x{h}, {args.people} people (seed {args.seed}); reference and ours interleaved, "
            f"median of {args.repeats} rounds (ours: 5 calls a round) after one warm-up\n"
        )
        print("| " + " | ".join(header) + " |")
        print("|---|---|" + "---:|" * (len(header) - 2))
        for row in table:
            print("| " + " | ".join(str(c) for c in row) + " |")
    else:
        print(f"{w}x{h}, {args.people} people, threads={args.threads}, CPU: {C.cpu_model()}")
        print("  ".join(header))
        for row in table:
            print("  ".join(str(c) for c in row))
    failures = []
    for r in rows:
        name = f"{r['frame']} {r['map']}"
        if not r["max_abs_diff"] < MAX_ABS_DIFF:
            failures.append(f"{name}: max abs diff {r['max_abs_diff']:.2e} >= {MAX_ABS_DIFF}")
        if r["speedup"] < args.min_speedup:
            failures.append(f"{name}: speed-up {r['speedup']:.1f}x < {args.min_speedup}x")
        if r["ours_subnormals"] or r["map_subnormals"]:
            failures.append(f"{name}: {r['ours_subnormals']} subnormal factor values, "
                            f"{r['map_subnormals']} subnormal map values")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return {"rows": rows, "failures": failures, "passed": not failures, "command": cmd.strip()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--people", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", nargs="+", choices=sorted(FRAMES), default=list(FRAMES))
    parser.add_argument("--maps", nargs="+", choices=["person", "parts"], default=["person", "parts"])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (ours: 5 calls a round)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before numpy loads)")
    parser.add_argument("--min-speedup", type=float, default=20.0)
    parser.add_argument("--markdown", action="store_true", help="print a block for benchmarks/RESULTS.md")
    args = C.parse_args(parser, argv)
    if "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    return run(args)


if __name__ == "__main__":
    sys.exit(0 if main()["passed"] else 1)

"""Benchmark: photos/s of `focusclip data build` (detect + rules descriptions + shards in one pass) with the
local engine and with Ray Data, 1 and 2 workers, on the same photos in one run.

The photos are the detect benchmark's (variations of matplotlib's portrait, 640 px). Each configuration
builds into a fresh folder; the time includes everything the command does (planning, starting workers
or the local Ray instance, loading the detector in each worker, writing shards). Ray's start-up
(``ray.init`` + actors) is also reported on its own, since on a cluster it is paid once per build.

    python benchmarks/build.py --images 48 --markdown
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from detect import make_photos  # noqa: E402


def _one(photos: Path, out: Path, engine: str, workers: int, partition_size: int) -> dict[str, Any]:
    from focusclip.pipeline import BuildSpec, DescriberSpec, build_dataset

    t = time.perf_counter()
    summary = build_dataset([photos], out, BuildSpec(out="", describer=DescriberSpec("rules")), engine=engine,
                            workers=workers, partition_size=partition_size, progress_every=1e9)
    seconds = time.perf_counter() - t
    return {"engine": engine, "workers": workers, "photos": summary.photos, "samples": summary.samples,
            "seconds": round(seconds, 2), "photos_per_s": summary.photos / max(seconds, 1e-9)}


def _ray_startup(workers: int) -> float:
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.get(ray.remote(lambda: 1).remote())
    seconds = time.perf_counter() - t
    ray.shutdown()
    return seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"benchmark": "build", "date": C.now_utc(), "command": C.command_line("build.py", args.argv),
                              "machine": C.machine_description("cpu"), "images": args.images, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_photos(root / "photos", args.images)
        for engine in args.engines:
            for workers in args.workers:
                report["runs"].append(_one(root / "photos", root / f"{engine}-{workers}", engine, workers,
                                           args.partition_size))
        if "ray" in args.engines:
            report["ray_startup_s"] = round(_ray_startup(max(args.workers)), 2)
    base = next(r for r in report["runs"] if r["engine"] == "local" and r["workers"] == 1)
    for r in report["runs"]:
        r["vs_local_1"] = r["photos_per_s"] / base["photos_per_s"]
    _print(report)
    return report


def _print(report: dict[str, Any]) -> None:
    print(f"- date: {report['date']}; command: `{report['command']}`")
    print(f"- machine: {C.machine_line(report['machine'])}")
    print(f"- {report['images']} photos of 640 px; detect (mediapipe) + describe (rules) + shards, one pass")
    if "ray_startup_s" in report:
        print(f"- Ray start-up alone (ray.init + a first task): {report['ray_startup_s']} s")
    print()
    rows = [[r["engine"], r["workers"], r["samples"], r["seconds"], r["photos_per_s"], r["vs_local_1"]]
            for r in report["runs"]]
    print(C.markdown_table(["engine", "workers", "samples", "seconds (incl. start-up)", "photos/s",
                            "x local, 1 worker"], rows), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    p.add_argument("--partition-size", type=int, default=8)
    p.add_argument("--markdown", action="store_true")
    return C.parse_args(p, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    return run(args)


if __name__ == "__main__":
    main()

"""Benchmark: photos/s of `focusclip data detect` (MediaPipe BlazePose + face detection) on 640-pixel photos,
next to the other offline steps of building a dataset from photos on the same machine: rule-based
descriptions, the validator's image decoding and shard writing.

The photos are variations (crops, flips, scales) of the portrait that ships with matplotlib, re-saved as
640-pixel JPEGs (long side), so every image is a real photo of a person. The detector runs through the real
job (`focusclip.detect.run.detect_images`: decode, detect, append-and-flush one record per image).

    python benchmarks/detect.py --images 60 --markdown
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def make_photos(folder: Path, n: int, side: int = 640) -> list[Path]:
    """``n`` 640-pixel JPEG variations of matplotlib's portrait."""
    from matplotlib import cbook
    from PIL import Image, ImageOps

    base = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        w, h = base.size
        c = 0.04 * (i % 5)
        im = base.crop((int(w * c), int(h * c / 2), int(w * (1 - c / 2)), h))
        if i % 2:
            im = ImageOps.mirror(im)
        scale = side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        if i % 3 == 2:  # a wider frame with the person off-centre
            canvas = Image.new("RGB", (side, round(side * 0.75)), (90 + i, 110, 130))
            small = im.resize((im.width * canvas.height // im.height, canvas.height))
            canvas.paste(small, ((i * 37) % max(1, side - small.width), 0))
            im = canvas
        p = folder / f"photo_{i:04d}.jpg"
        im.save(p, quality=90)
        out.append(p)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from focusclip.data.records import read_records
    from focusclip.data.shards import write_shards
    from focusclip.data.validate import validate_dataset
    from focusclip.describe.rules import describe_record
    from focusclip.detect import create_detector
    from focusclip.detect.run import detect_images
    from focusclip.images import open_rgb

    report: dict[str, Any] = {"benchmark": "detect", "date": C.now_utc(), "command": C.command_line("detect.py", args.argv),
                              "machine": C.machine_description("cpu"), "images": args.images, "steps": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = make_photos(root / "photos", args.images)
        out = root / "records.jsonl"
        with create_detector("mediapipe") as det:
            det.detect(open_rgb(photos[0]))  # warm-up
            t = time.perf_counter()
            counts = detect_images([root / "photos"], out, det, progress_every=1e9)
            report["steps"]["detect (mediapipe)"] = _rate(len(photos), time.perf_counter() - t)
        factory = functools.partial(create_detector, "mediapipe")
        for workers in args.workers:
            few = photos[:workers * 2]  # start-up (spawning, importing mediapipe, loading models) + a few photos
            t = time.perf_counter()
            detect_images(few, root / f"startup-w{workers}.jsonl", det, progress_every=1e9, workers=workers,
                          factory=factory)
            startup = time.perf_counter() - t
            t = time.perf_counter()
            detect_images([root / "photos"], root / f"records-w{workers}.jsonl", det, progress_every=1e9,
                          workers=workers, factory=factory)
            total = time.perf_counter() - t
            report["steps"][f"detect (mediapipe, {workers} processes, incl. start-up)"] = _rate(len(photos), total)
            report["steps"][f"detect (mediapipe, {workers} processes, after start-up)"] = _rate(
                len(photos) - len(few), max(total - startup, 1e-9))
            report[f"startup_s_{workers}_processes"] = round(startup, 2)
        report["people_found"] = counts.done["people"]
        records = read_records(out)
        t = time.perf_counter()
        captioned = [{**r, "captions": [describe_record(r)]} for r in records]
        report["steps"]["describe (rules)"] = _rate(len(records), time.perf_counter() - t)
        from focusclip.data.records import write_records

        write_records(root / "captioned.jsonl", captioned)
        t = time.perf_counter()
        validate_dataset(root / "captioned.jsonl", workers=2)
        report["steps"]["validate (decode every image)"] = _rate(len(records), time.perf_counter() - t)
        t = time.perf_counter()
        write_shards(root / "captioned.jsonl", root / "shards", shard_size=100)
        report["steps"]["shards (write)"] = _rate(len(records), time.perf_counter() - t)
    _print(report, args.markdown)
    return report


def _rate(n: int, seconds: float) -> dict[str, float]:
    return {"items": n, "seconds": round(seconds, 3), "per_s": n / max(seconds, 1e-9),
            "hours_for_10k": 10_000 / max(n / max(seconds, 1e-9), 1e-9) / 3600}


def _print(report: dict[str, Any], markdown: bool) -> None:
    rows = [[name, r["items"], r["seconds"], r["per_s"], r["hours_for_10k"]] for name, r in report["steps"].items()]
    print(f"- date: {report['date']}; command: `{report['command']}`")
    print(f"- machine: {C.machine_line(report['machine'])}")
    print(f"- {report['images']} photos of 640 px (long side), people found: {report['people_found']}")
    for key in (k for k in report if k.startswith("startup_s_")):
        print(f"- start-up of the job with {key.split('_')[2]} processes (and {2 * int(key.split('_')[2])} photos): "
              f"{report[key]} s")
    print()
    print(C.markdown_table(["step", "images", "seconds", "images/s", "hours for 10,000 photos"], rows))
    slowest = min(report["steps"].items(), key=lambda kv: kv[1]["per_s"])
    print(f"\nslowest offline step here: {slowest[0]} ({slowest[1]['per_s']:.1f} images/s)", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="*", default=[2], help="also run the job with N processes")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    return run(args)


if __name__ == "__main__":
    main()

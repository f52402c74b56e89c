"""Benchmark: photos/s of `focusclip data detect` (MediaPipe BlazePose + face detection) on 640-pixel photos,
next to the other offline steps of building a dataset from photos on the same machine: rule-based
descriptions, the validator's image decoding and shard writing; and how many people the detector finds in
photos of several people (found / true / invented, time per photo), multi-person search against the
single-person pass.

People: the packaged portraits (scikit-image's astronaut and camera, matplotlib's grace_hopper) pasted side
by side, 2-3 per photo, at different scales, heights and backgrounds (tests/people_photos.py), each alone,
and photos without people (textures; scikit-image's cat, coffee, rocket and horse). A detected person
counts as found when its head lies in a pasted portrait not already found; any other is invented.

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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # people_photos: the composites

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
    report["people"] = people_counts(args.composites)
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


def no_people_photos() -> list[Any]:
    """Photos without people: textures, and scikit-image's cat, coffee, rocket and horse when installed."""
    from PIL import Image

    import people_photos as pp

    out = [pp.Composite(pp.texture(k, (640, 480), seed=i), [], [k])
           for i, k in enumerate(("grass", "brick", "gravel", "noise", "gradient"))]
    try:
        import skimage.data
    except ImportError:
        return out
    return out + [pp.Composite(Image.fromarray(getattr(skimage.data, k)()).convert("RGB"), [], [k])
                  for k in ("chelsea", "coffee", "rocket", "horse")]


def people_counts(composites: int | None) -> list[dict[str, Any]]:
    """Found / true / invented people, seconds and BlazePose passes per photo, per photo set and detector
    mode. The two modes run photo by photo in turn, so a change in the machine's load hits both alike."""
    import people_photos as pp
    from focusclip.detect import create_detector

    sets = {"2-3 people (composites)": pp.composites(composites), "one portrait": pp.singles(),
            "no people": no_people_photos()}
    modes = {"multi-person (default)": True, "single pass (multi=False)": False}
    dets = {mode: create_detector("mediapipe", multi=multi) for mode, multi in modes.items()}
    passes = dict.fromkeys(modes, 0)
    for mode, det in dets.items():
        det.detect(sets["one portrait"][0].image)  # warm-up
        det._pose_points = _counting(det._pose_points, passes, mode)
    rows = {(mode, name): {"detector": mode, "photos": name, "n": len(photos), "true": 0, "found": 0, "invented": 0,
                           "joints": 0, "joints_outside": 0, "seconds": 0.0, "passes": 0}
            for name, photos in sets.items() for mode in modes}
    try:
        for name, photos in sets.items():
            for photo in photos:
                for mode, det in dets.items():
                    row = rows[(mode, name)]
                    before = passes[mode]
                    t = time.perf_counter()
                    people = det.detect(photo.image).people
                    row["seconds"] += time.perf_counter() - t
                    row["passes"] += passes[mode] - before
                    for k, v in pp.score_people(people, photo.boxes).items():
                        row[k] += v
    finally:
        for det in dets.values():
            det.close()
    out = []
    for row in rows.values():
        n = max(row["n"], 1)
        out.append({**row, "s_per_photo": row["seconds"] / n, "passes_per_photo": row["passes"] / n})
    return out


def _counting(fn: Any, counts: dict[str, int], key: str) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return fn(*args, **kwargs)

    return counted


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
    people = report["people"]
    print("\npeople found in photos of several people (a head in a pasted portrait: found; any other: invented)\n")
    print(C.markdown_table(["detector", "photos", "N", "found / true", "invented", "visible joints outside "
                            "their portrait", "BlazePose passes / photo", "s / photo"],
                           [[r["detector"], r["photos"], r["n"], f"{r['found']} / {r['true']}", r["invented"],
                             f"{r['joints_outside']} / {r['joints']}", r["passes_per_photo"], r["s_per_photo"]]
                            for r in people]))
    multi = [r for r in people if r["detector"].startswith("multi")]
    single = [r for r in people if not r["detector"].startswith("multi")]
    ratio = sum(r["s_per_photo"] * r["n"] for r in multi) / max(sum(r["s_per_photo"] * r["n"] for r in single), 1e-9)
    print(f"\nmulti-person search / single pass, time over all these photos: {ratio:.1f}x")
    slowest = min(report["steps"].items(), key=lambda kv: kv[1]["per_s"])
    print(f"\nslowest offline step here: {slowest[0]} ({slowest[1]['per_s']:.1f} images/s)", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="*", default=[2], help="also run the job with N processes")
    p.add_argument("--composites", type=int, default=None, help="how many of the 2-3 person composites (default all)")
    p.add_argument("--markdown", action="store_true")
    return C.parse_args(p, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    return run(args)


if __name__ == "__main__":
    main()

"""Benchmark: per-person inference (issue 23): photos/s and people/s for 1, 3 and 8 people per photo, per
focus mode, batched across people and photos against one person per forward pass.

    python benchmarks/people.py                        # clip-tiny, 8 photos per size, all modes
    python benchmarks/people.py --markdown             # block for benchmarks/RESULTS.md
    python benchmarks/people.py --model openclip:ViT-B-16 --device cuda --photos 64 --batch 256   # a GPU

Photos are the packaged portraits (matplotlib's grace_hopper, scikit-image's astronaut and camera when
scikit-image is installed) pasted side by side, N per photo, with their boxes as the people. Every
number comes from ``ZeroShotClassifier.predict_people`` (what ``focusclip predict --boxes`` runs),
measured in one process (the fastest of ``--repeats`` runs): ``batched`` with ``--batch`` rows per forward pass (the default path),
``one by one`` with a batch of 1 (each person its own forward pass), and ``whole`` (the plain
whole-image answer only, ``predict``) as the reference. Ratios are what to read on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)

MODES = ("attention", "crop", "blur", "circle", "dim")
PEOPLE = (1, 3, 8)
LABELS = ["an astronaut", "a navy officer", "a photographer", "a runner", "a child"]


def _portraits() -> list[Any]:
    from matplotlib import cbook
    from PIL import Image

    out = [Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")]
    try:
        import skimage.data

        out += [Image.fromarray(skimage.data.astronaut()), Image.fromarray(skimage.data.camera()).convert("RGB")]
    except ImportError:
        pass
    return out


def write_photos(folder: Path, n_people: int, n_photos: int, height: int = 192) -> tuple[list[str], list[list]]:
    """``n_photos`` composites of ``n_people`` portraits each (cycled, each photo starting elsewhere), and
    each photo's boxes."""
    from PIL import Image

    tiles = _portraits()
    paths, boxes = [], []
    for k in range(n_photos):
        row = [tiles[(k + i) % len(tiles)] for i in range(n_people)]
        row = [t.resize((round(t.width * height / t.height), height), Image.BICUBIC) for t in row]
        gap = 12
        canvas = Image.new("RGB", (sum(t.width for t in row) + gap * (n_people + 1), height + 2 * gap), (40, 90, 40))
        x, b = gap, []
        for t in row:
            canvas.paste(t, (x, gap))
            b.append([x, gap, x + t.width, gap + height])
            x += t.width + gap
        path = folder / f"p{n_people}_{k}.jpg"
        canvas.save(path, quality=90)
        paths.append(str(path))
        boxes.append(b)
    return paths, boxes


def measure(clf: Any, paths: list[str], boxes: list[list], mode: str, batch: int, repeats: int,
            sync: Any) -> dict[str, float]:
    from focusclip.subjects import subjects_from_boxes

    subjects = [subjects_from_boxes(b) for b in boxes]
    people = sum(len(b) for b in boxes)
    t = C.time_fn(lambda: clf.predict_people(paths, subjects, focus=mode, batch_size=batch), 1, repeats, sync)
    out = t["result"]
    assert all(p["focused"] for r in out for p in r["people"]), "every person is focused"
    return {"photos_per_s": len(paths) / t["min_s"], "people_per_s": people / t["min_s"], "s": t["min_s"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clip-tiny", help="a registered model or CLIP name (random weights are fine)")
    ap.add_argument("--photos", type=int, default=8, help="photos per people count (default 8)")
    ap.add_argument("--people", default=",".join(map(str, PEOPLE)), help="people per photo (default 1,3,8)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--batch", type=int, default=32, help="rows per forward pass, batched (default 32)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per cell; the fastest counts (the least disturbed on a shared machine; default 3)")
    ap.add_argument("--no-one-by-one", action="store_true", help="skip the batch-1 reference (slow on big models)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    C.configure_logging(silence_truncation=True)
    import logging

    import torch

    import focusclip
    from focusclip.predict import ZeroShotClassifier

    logging.getLogger("focusclip.model.factory").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model, _, transform = focusclip.create_model_and_transforms(args.model)
    tok = focusclip.get_tokenizer(args.model)
    clf = ZeroShotClassifier(model.eval(), tok, LABELS, transform=transform, device=args.device)
    sync = C.synchronizer(args.device)
    modes = [m for m in args.modes.split(",") if m]
    counts = [int(n) for n in args.people.split(",") if n]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            paths, boxes = write_photos(Path(tmp), n, args.photos)
            whole = C.time_fn(lambda: clf.predict(paths, batch_size=args.batch), 1, args.repeats, sync)  # noqa: B023
            whole_pps = len(paths) / whole["min_s"]
            for mode in modes:
                batched = measure(clf, paths, boxes, mode, args.batch, args.repeats, sync)
                single = None if args.no_one_by_one else measure(clf, paths, boxes, mode, 1, args.repeats, sync)
                rows.append({"people": n, "mode": mode, "whole_photos_per_s": whole_pps, **batched,
                             "one_by_one_people_per_s": single and single["people_per_s"],
                             "batching_speedup": single and batched["people_per_s"] / single["people_per_s"],
                             "vs_whole": batched["photos_per_s"] / whole_pps})
    result = {"model": args.model, "image_size": model.image_size, "photos": args.photos, "batch": args.batch,
              "device": args.device, "machine": C.machine_description(args.device), "rows": rows,
              "command": C.command_line("people.py", argv), "date": C.now_utc()}
    if args.markdown:
        print(markdown(result))
    else:
        for r in rows:
            print(f"{r['people']} people  {r['mode']:9s} {r['photos_per_s']:8.2f} photos/s {r['people_per_s']:8.2f} "
                  f"people/s  batching x{C.fmt(r['batching_speedup'])}  photo time / whole-image time "
                  f"{C.fmt(1 / r['vs_whole'])}")
    return result


def markdown(result: dict[str, Any]) -> str:
    head = ["people / photo", "mode", "photos/s", "people/s", "people/s one by one", "batched / one by one",
            "time / whole-image answer"]
    rows = [[r["people"], r["mode"], r["photos_per_s"], r["people_per_s"], r["one_by_one_people_per_s"],
             r["batching_speedup"], 1 / r["vs_whole"]] for r in result["rows"]]
    return (f"`{result['command']}` ({result['date']}; {result['model']}, {result['image_size']} px, "
            f"{result['photos']} photos per row, batch {result['batch']}, {result['device']})\n\n"
            f"Machine: {C.machine_line(result['machine'])}\n\n" + C.markdown_table(head, rows, list("ll") + ["r"] * 5))


if __name__ == "__main__":
    main()

"""Benchmark: the input pipeline's images/s through a real DataLoader, next to the training step's appetite.

The pipeline is the one training uses: ``FocusDataset`` (JPEG decode, joint transform, ROI heatmap at
training resolution from the transformed joints) and ``Collator`` (tokenisation in the workers),
with 0, 1 and 2 workers. By default a small synthetic world is generated into a temporary folder, its
images re-saved as 1280x720 JPEGs (the size of an MPII frame, so decoding and resizing cost what they
cost on the real data; ``--frame native`` keeps the 224 px renders) and captioned with the rule-based
describer. ``--data`` points at an existing records JSONL (or a folder with ``train.jsonl``) instead.

For each model config the training step of our pipeline (``benchmarks/train_step.py``) is measured in the
same run, and the script says whether the loader keeps up with it. On a small machine the loader
workers and the step share the same cores, so a loader that "keeps up" in isolation can still slow the
step down; the numbers here are each measured alone.

    python benchmarks/loader.py
    python benchmarks/loader.py --data /data/mpii/records/train.jsonl --markdown
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
from train_step import DEFAULT_BATCH, DEFAULT_MODELS  # noqa: E402  (the step this loader feeds)


# ------------------------------------------------------------------------------------------ data
def synthetic_records(out_dir: Path, n: int, seed: int, frame: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Generate a synthetic world in ``out_dir``; optionally re-save its images at ``frame`` = (H, W)."""
    from focusclip.data.records import read_records
    from focusclip.data.synthetic import generate_world

    info = generate_world(out_dir, n, seed, image_size=224, eval_n=0, show_progress=False)
    records = read_records(info["train_jsonl"]) + read_records(info["val_jsonl"])
    if frame is not None:
        records = [_upscale(r, out_dir, frame) for r in records]
    return records


def _upscale(record: dict[str, Any], root: Path, frame: tuple[int, int]) -> dict[str, Any]:
    """Re-save the record's image at ``frame`` (H, W) and scale its coordinates to match."""
    from PIL import Image

    h, w = frame
    path = root / record["image"]
    with Image.open(path) as im:
        sx, sy = w / im.width, h / im.height
        im.convert("RGB").resize((w, h), Image.BICUBIC).save(path, format="JPEG", quality=90)

    def pt(p: list[float]) -> list[float]:
        return [-1.0, -1.0] if p[0] == -1 and p[1] == -1 else [p[0] * sx, p[1] * sy]

    def box(b: list[float]) -> list[float]:
        return [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]

    people = []
    for p in record.get("people") or []:
        q = dict(p)
        if p.get("joints") is not None:
            q["joints"] = [pt(j) for j in p["joints"]]
        if p.get("center") is not None:
            q["center"] = pt(p["center"])
        for key in ("box", "head_box"):
            if p.get(key) is not None:
                q[key] = box(p[key])
        people.append(q)
    return {**record, "people": people, "width": w, "height": h}


def add_captions(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Records without captions get one from the rule-based describer (others are kept as they are)."""
    from focusclip.describe.rules import describe_record

    return [r if r.get("captions") else {**r, "captions": [describe_record(r, seed=seed)]} for r in records]


def load_records(data: str) -> tuple[list[dict[str, Any]], Path]:
    """Records and their root from a JSONL file or a folder holding ``train.jsonl``."""
    from focusclip.data.records import read_records

    path = Path(data)
    if path.is_dir():
        path = path / "train.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"--data {data}: expected a records JSONL file or a folder with train.jsonl")
    return read_records(path), path.parent


# ---------------------------------------------------------------------------------------- loader
def loader_rate(records: list[dict[str, Any]], root: Path, model_name: str, batch: int, workers: int,
                samples: int, heatmap: str, seed: int) -> dict[str, Any]:
    """images/s of FocusDataset + Collator through a DataLoader (the first batch, with start-up, excluded)."""
    import torch
    from torch.utils.data import DataLoader

    from focusclip.data.dataset import Collator, FocusDataset
    from focusclip.model.factory import create_model_and_transforms, get_tokenizer

    _, train_tf, _ = create_model_and_transforms(model_name, pretrained="none")
    dataset = FocusDataset(records, root=root, transform=train_tf, heatmap=heatmap, captions="random",
                           on_error="raise", seed=seed)
    order = [i % len(dataset) for i in range(max(samples, 2 * batch))]
    loader = DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers,
                        collate_fn=Collator(get_tokenizer(model_name)), drop_last=True)
    t0 = time.perf_counter()
    first = None
    count = 0
    text_len = []
    for b in loader:
        if first is None:
            first = time.perf_counter()
            if tuple(b["heatmap"].shape[1:]) != (1, *train_tf.image_size) or not torch.isfinite(b["image"]).all():
                raise RuntimeError(f"unexpected batch from the loader: heatmap {tuple(b['heatmap'].shape)}")
            continue
        count += b["image"].shape[0]
        text_len.append(int(b["text"]["input_ids"].shape[1]))
    end = time.perf_counter()
    return {"workers": workers, "images": count, "first_batch_s": first - t0,
            "images_per_s": count / (end - first) if count else None, "image_size": train_tf.resolution,
            "text_len_median": sorted(text_len)[len(text_len) // 2] if text_len else None}


# ---------------------------------------------------------------------------------------- driver
def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import train_step

    if args.threads:
        torch.set_num_threads(args.threads)
    frame = None if args.frame == "native" else tuple(int(v) for v in args.frame.lower().split("x"))[::-1]
    report: dict[str, Any] = {"benchmark": "loader", "date": C.now_utc(),
                              "command": C.command_line("loader.py", args.argv),
                              "machine": C.machine_description("cpu"), "heatmap_mode": args.heatmap,
                              "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            records, root = load_records(args.data)
            report["data"] = f"{args.data} ({len(records)} records)"
        else:
            print(f"[loader] generating a synthetic world of {args.n} images ...", flush=True)
            root = Path(tmp)
            records = synthetic_records(root, args.n, args.seed, frame)
            size = "224x224" if frame is None else f"{frame[1]}x{frame[0]}"
            report["data"] = f"synthetic world, {len(records)} images re-saved as {size} JPEG"
        records = add_captions(records, args.seed)
        step_data = train_step.make_data(max(args.batch or DEFAULT_BATCH.get(m, 16) for m in args.models),
                                         args.seed, (720, 1280))
        for model_name in args.models:
            batch = args.batch or DEFAULT_BATCH.get(model_name, 16)
            entry: dict[str, Any] = {"batch": batch, "loader": []}
            for workers in args.workers:
                print(f"[loader] {model_name}: DataLoader with {workers} workers, batch {batch} ...", flush=True)
                res = loader_rate(records, root, model_name, batch, workers, args.samples, args.heatmap, args.seed)
                entry["loader"].append(res)
                print(f"[loader]   {res['images_per_s']:.1f} images/s (first batch {res['first_batch_s']:.2f} s)",
                      flush=True)
            print(f"[loader] {model_name}: training step, batch {batch} ...", flush=True)
            step = train_step.measure(model_name, "ours", step_data, batch, args.step_warmup, args.step_steps,
                                      "cpu", args.heatmap, args.seed)
            entry["step_samples_per_s"] = step["samples_per_s"]
            entry["step_model_samples_per_s"] = step["model_samples_per_s"]
            for res in entry["loader"]:
                res["ratio_to_step"] = res["images_per_s"] / step["model_samples_per_s"]
                res["keeps_up"] = res["ratio_to_step"] >= 1.0
            report["models"][model_name] = entry
    _print(report, args.markdown)
    return report


def _print(report: dict[str, Any], markdown: bool) -> None:
    rows = []
    for name, e in report["models"].items():
        for r in e["loader"]:
            rows.append([f"{name} ({e['batch']})", r["image_size"], r["workers"], r["images_per_s"],
                         r["first_batch_s"], e["step_model_samples_per_s"], f"{r['ratio_to_step']:.2f}x",
                         "yes" if r["keeps_up"] else "no"])
    headers = ["model (batch)", "S", "workers", "loader images/s", "first batch s", "step samples/s",
               "loader / step", "keeps up"]
    lines = [f"- date: {report['date']}; command: `{report['command']}`",
             f"- machine: {C.machine_line(report['machine'])}",
             f"- data: {report['data']}; {report['heatmap_mode']} heatmaps; pose descriptions from the "
             "rule-based describer; tokenisation in the Collator",
             "- step: our training step with inputs ready (forward + loss + backward + SGD, "
             "`train_step.py`'s model phase), measured alone in this run",
             "", C.markdown_table(headers, rows)]
    print("\n".join(lines), flush=True)
    for name, e in report["models"].items():
        best = max(e["loader"], key=lambda r: r["images_per_s"])
        verdict = "keeps up" if best["keeps_up"] else "does NOT keep up"
        print(f"{name}: the loader {verdict} with the step at its best ({best['workers']} workers: "
              f"{best['images_per_s']:.1f} images/s vs {e['step_model_samples_per_s']:.1f} samples/s)", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="records JSONL (or a folder with train.jsonl); default: a synthetic world")
    p.add_argument("--n", type=int, default=48, help="synthetic world size")
    p.add_argument("--frame", default="1280x720", help="WxH to re-save synthetic images at, or 'native'")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=0, help="batch size (default: 32 tiny, 16 lite0)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--samples", type=int, default=160, help="samples drawn per loader configuration")
    p.add_argument("--heatmap", choices=("parts", "person"), default="parts")
    p.add_argument("--step-warmup", type=int, default=2)
    p.add_argument("--step-steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads in the main process (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true")
    return C.parse_args(p, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging(silence_truncation=True)
    return run(args)


if __name__ == "__main__":
    main()

"""Benchmark: what each focus mechanism (roi.mode) costs: its parameters and the ROI branch's time.

    python benchmarks/focus.py                 # batch 32, 1 warm-up + 5 timed steps per arm
    python benchmarks/focus.py --markdown      # block for benchmarks/RESULTS.md

For each tower and mode: the mechanism's own parameters, and the forward + backward time of the ROI
branch (``encode_roi``: the image encoded with focus on a heatmap) next to the plain image branch
(``encode_image``) on the same batch, measured in one process; their ratio is the mechanism's
overhead on that branch (the text branch and the loss are the same for every mode).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)

#: (model config, image size, modes): the ablation's ViT, the open_clip ViT, the offline conv tower
ARMS = (("focusclip-vit-minilm", 96, ("highlight", "attention", "alpha")),
        ("focusclip-openclip-tiny", 96, ("highlight", "attention", "alpha")),
        ("focusclip-lite0-minilm", 128, ("highlight", "pool")))


def _step(fn, *args):
    def run():
        out = fn(*args)
        out.float().pow(2).mean().backward()
    return run


def measure(name: str, size: int, mode: str, batch: int, warmup: int, repeats: int) -> dict[str, Any]:
    import torch

    import focusclip

    torch.manual_seed(0)
    model = focusclip.create_model(name, vision={"image_size": size}, roi={"mode": mode}).train()
    x, heat = torch.randn(batch, 3, size, size), torch.rand(batch, 1, size, size)
    plain = C.time_fn(_step(model.encode_image, x), warmup, repeats)
    roi = C.time_fn(_step(model.encode_roi, x, heat), warmup, repeats)
    return {"model": name, "image_size": size, "mode": mode, "batch": batch,
            "focus_params": sum(p.numel() for p in model.focus.parameters()),
            "tower_params": sum(p.numel() for p in model.visual.parameters()),
            "plain_ms": 1000 * plain["median_s"], "roi_ms": 1000 * roi["median_s"],
            "ratio": roi["median_s"] / plain["median_s"], "at_inference": model.focus_at_inference}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default=",".join(a[0] for a in ARMS), help="comma-separated model configs")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    C.configure_logging(silence_truncation=True)
    wanted = args.models.split(",")
    machine = C.machine_description()
    rows = []
    for name, size, modes in ARMS:
        for mode in modes if name in wanted else ():
            rows.append(measure(name, size, mode, args.batch, args.warmup, args.repeats))
            print(f"# {name} {mode}: ROI branch {rows[-1]['roi_ms']:.0f} ms, plain {rows[-1]['plain_ms']:.0f} ms",
                  file=sys.stderr, flush=True)  # partial results survive an interrupted run
    result = {"machine": machine, "command": C.command_line("focus.py", argv), "date": C.now_utc(), "rows": rows}
    table = C.markdown_table(
        ["model (px)", "mode", "mechanism params", "tower params", "plain branch ms", "ROI branch ms",
         "ROI / plain", "acts at inference"],
        [[f"{r['model']} ({r['image_size']})", r["mode"], r["focus_params"], r["tower_params"], r["plain_ms"],
          r["roi_ms"], r["ratio"], "yes" if r["at_inference"] else "no"] for r in rows])
    result["markdown"] = table
    if args.markdown:
        print(f"- date: {result['date']}; command: `{result['command']}`\n- machine: {C.machine_line(machine)}\n")
    print(table)
    return result


if __name__ == "__main__":
    main()

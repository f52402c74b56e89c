"""Benchmark: which long-text strategy trains best when pose descriptions are longer than CLIP's 77 tokens.

The synthetic world with rule-based pose descriptions (the demo's data: 720 images, two phrasings per
image, about 130 BPE tokens per description) trains ``focusclip-openclip-tiny`` (a small open_clip ViT
at random initialisation, with the ROI branch) once per strategy with the same seed, data and budget:

- ``truncate``: the first 76 tokens + end-of-text;
- ``sentences``: every sentence its own row, the mean of normalised sentence embeddings per text;
- ``stretch``: positional embeddings stretched to 248 (Long-CLIP), nothing truncated.

Reported per arm: the truncation report of the training captions, the final validation loss, zero-shot
accuracy on the held-out synthetic tasks (short prompts), image -> description retrieval R@1 / R@5 on
the validation images with their full descriptions, and the training throughput.

    python benchmarks/long_text.py --out runs/bench-long-text            # ~3 arms x a few minutes on 2 CPUs
    python benchmarks/long_text.py --epochs 1 --n-train 64 --n-eval 24   # smoke size
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (puts src/ on the path)

STRATEGIES = ("truncate", "sentences", "stretch")
MODEL = "focusclip-openclip-tiny"


def train_config(strategy: str, data: dict[str, Path], run_dir: Path, args: argparse.Namespace, seed: int) -> dict:
    return {
        "name": f"long-text-{strategy}-seed{seed}", "out_dir": str(run_dir), "seed": seed, "epochs": args.epochs,
        "batch_size": args.batch_size, "precision": "fp32",
        "data": {"train": str(data["train"]), "val": str(data["val"]), "heatmap": "person", "captions": "random",
                 "num_workers": args.workers},
        "model": {"name": MODEL, "long_text": strategy},
        "loss": {"name": "clip", "weights": [1.0, 1.0, 1.0]},
        "optim": {"name": "adamw", "lr": args.lr, "weight_decay": 0.1, "betas": [0.9, 0.98], "eps": 1e-6,
                  "schedule": "cosine", "warmup_steps": 10, "grad_clip": 1.0},
        "checkpoint": {"every_epochs": 1, "keep": 1, "best_metric": "val_loss"},
        "eval": {"tasks": [], "every_epochs": 0},
        "log": {"every_steps": 5, "every_seconds": 30, "tensorboard": False},
    }


def retrieval(model_dir: Path, records_path: Path) -> dict[str, float]:
    """Image -> description recall@1/@5 over the validation images and their first descriptions."""
    import torch

    import focusclip
    from focusclip.data.records import read_records, resolve_image
    from focusclip.predict import embed_images, embed_texts

    model = focusclip.load_model(model_dir)
    tok = focusclip.get_tokenizer(str(model_dir))
    records = [r for r in read_records(records_path) if r.get("captions")]
    images = [str(resolve_image(r, records_path.parent)) for r in records]
    img = torch.from_numpy(embed_images(model, images, device="cpu"))
    txt = torch.from_numpy(embed_texts(model, tok, [r["captions"][0] for r in records], device="cpu"))
    ranks = (img @ txt.T).argsort(dim=1, descending=True)
    hits = ranks == torch.arange(len(records))[:, None]
    return {"r1": 100.0 * float(hits[:, :1].any(1).float().mean()), "r5": 100.0 * float(hits[:, :5].any(1).float().mean()),
            "n": len(records)}


def run_arm(strategy: str, seed: int, data: dict[str, Path], data_dir: Path, out: Path,
            args: argparse.Namespace) -> dict[str, Any]:
    from focusclip.experiments.demo import DemoConfig, evaluate_arm
    from focusclip.train import train

    run_dir = out / "runs" / f"{strategy}-seed{seed}"
    t0 = time.monotonic()
    result = train(train_config(strategy, data, run_dir, args, seed))
    seconds = time.monotonic() - t0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    lengths = next(r["text_lengths"] for r in rows if r["type"] == "event" and "text_lengths" in r)
    rates = [r["samples_per_s"] for r in rows if r["type"] == "train" and "samples_per_s" in r][1:]
    zs = evaluate_arm(Path(result["model_final"]), data_dir, out / f"zeroshot-{strategy}-seed{seed}.json",
                      DemoConfig(workers=args.workers))
    return {"strategy": strategy, "seed": seed, "train_seconds": round(seconds, 1),
            "samples_per_s": round(sum(rates) / len(rates), 2) if rates else None,
            "val_loss": result["val_loss"], "zeroshot": zs, "zeroshot_mean": sum(zs.values()) / len(zs),
            "retrieval": retrieval(Path(result["model_final"]), data["val"]), "text_lengths": lengths}


def markdown(arms: list[dict[str, Any]]) -> str:
    head = ("| strategy | seed | texts cut | tokens cut | val loss | synth-activity | synth-age | synth-expression "
            "| zero-shot mean | R@1 | R@5 | samples/s | train s |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for a in arms:
        tl, zs = a["text_lengths"], a["zeroshot"]
        lines.append(f"| {a['strategy']} | {a['seed']} | {tl['truncated_share']:.0%} | {tl['cut_share']:.1%} | "
                     f"{a['val_loss']:.3f} | {zs.get('synth-activity', 0):.1f} | {zs.get('synth-age', 0):.1f} | "
                     f"{zs.get('synth-expression', 0):.1f} | {a['zeroshot_mean']:.1f} | {a['retrieval']['r1']:.1f} | "
                     f"{a['retrieval']['r5']:.1f} | {a['samples_per_s']} | {a['train_seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/bench-long-text")
    p.add_argument("--n-train", type=int, default=720)
    p.add_argument("--n-eval", type=int, default=360)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seeds", default="0")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = p.parse_args(argv)

    from focusclip.experiments.demo import DemoConfig, build_data

    out = Path(args.out)
    data_dir = out / "data" / "synthetic"
    data = build_data(DemoConfig(n_train=args.n_train, n_eval=args.n_eval, workers=args.workers), data_dir)
    arms = [run_arm(s, int(seed), data, data_dir, out, args)
            for seed in args.seeds.split(",") for s in args.strategies.split(",")]
    result = {"machine": _common.machine_description(), "args": vars(args), "arms": arms, "table": markdown(arms)}
    (out / "long_text.json").write_text(json.dumps(result, indent=2))
    print(result["table"] if args.markdown else json.dumps(arms, indent=2))
    return result


if __name__ == "__main__":
    main()

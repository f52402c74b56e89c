"""Benchmark: one FocusCLIP training step, our pipeline against the reference code's approach.

Both pipelines run the same model (same seed, random init), the same images and the same pose
descriptions, and the same step: three-branch forward, FocusCLIP NT-Xent loss, backward, gradient-norm
clip 1.0 and an SGD step (lr 5e-4, momentum 0.9, the paper's recipe).

- ``ours``: texts tokenised before the step (as the DataLoader workers do, by ``Collator``), padded to
  the longest text in the batch (limit 512 like the reference, so neither side truncates); masked mean
  pooling; ROI heatmaps rendered directly at the training
  resolution S with ``focusclip.heatmaps.keypoints_heatmap(..., size=(S, S), src_size=(H0, W0))``.
- ``reference``: inside the timed step, every text tokenised and padded to 512 tokens (as the reference
  ``forward`` does); the text embedding is the mean over all 512 positions including padding; ROI
  heatmaps evaluated on the full frame (1280x720 by default) with a per-person, per-part numpy loop
  (``benchmarks/heatmaps.py``'s straightforward reference) and resized to S.

The timed step of each pipeline is split into phases (heatmaps, tokenisation, model step); the ratio is
reported end to end and for the model step alone. Each pipeline runs in a fresh subprocess, so peak
memory (RSS high-water during the steps on CPU; ``torch.cuda.max_memory_allocated`` on CUDA) does not
mix between them. Texts come from the rule-based describer (``focusclip.describe.rules``) applied to
synthetic-world poses.

    python benchmarks/train_step.py                                   # tiny (batch 32) and lite0 (batch 16)
    python benchmarks/train_step.py --models focusclip-tiny --markdown
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

DEFAULT_MODELS = ("focusclip-tiny", "focusclip-lite0-minilm")
DEFAULT_BATCH = {"focusclip-tiny": 32, "focusclip-lite0-minilm": 16}
REFERENCE_CONTEXT = 512
PIPELINES = ("ours", "reference")


# ------------------------------------------------------------------------------------------ data
def make_data(n: int, seed: int, frame: tuple[int, int]) -> dict[str, Any]:
    """``n`` samples: people (joints scaled into a ``frame`` = (H, W) image) and pose descriptions."""
    return _synthetic_data(n, seed, frame)


def _synthetic_data(n: int, seed: int, frame: tuple[int, int]) -> dict[str, Any]:
    from focusclip.data.synthetic import make_record, render_sample, sample_rng
    from focusclip.describe.rules import describe_record

    h0, w0 = frame
    size = 224
    people, texts = [], []
    for i in range(n):
        sample = render_sample(sample_rng(seed, 0, i), image_size=size)
        record = make_record(sample, f"bench_{i:04d}.jpg", "train", f"bench_{i:04d}", size)
        texts.append(describe_record(record, seed=seed))
        people.append([{"joints": [[x * w0 / size, y * h0 / size] if v else [-1.0, -1.0]
                                   for (x, y), v in zip(p["joints"], p["visible"])],
                        "visible": list(p["visible"])} for p in record["people"]])
    return {"frame": [h0, w0], "people": people, "texts": texts, "source": "synthetic world + rules describer"}


def _arrays(person_list: list[dict[str, Any]]):
    import numpy as np

    joints = np.asarray([p["joints"] for p in person_list], dtype=np.float64).reshape(-1, 16, 2)
    vis = np.asarray([p["visible"] for p in person_list], dtype=np.float64).reshape(-1, 16)
    return joints, vis


# ------------------------------------------------------------------------------------ heatmaps
def ours_heatmaps(data: dict[str, Any], size: int, mode: str):
    """(B, 1, S, S) rendered at training resolution with the vectorised library function."""
    import numpy as np
    import torch

    from focusclip.heatmaps import keypoints_heatmap

    frame = tuple(data["frame"])
    maps = [keypoints_heatmap(*_arrays(p), size=(size, size), mode=mode, src_size=frame) if p
            else np.zeros((size, size), np.float32) for p in data["people"]]
    return torch.from_numpy(np.stack(maps))[:, None]


def reference_heatmaps(data: dict[str, Any], size: int, mode: str):
    """(B, 1, S, S): full-frame maps from the per-person / per-part numpy loop, then resized to S."""
    import torch
    import torch.nn.functional as F

    import heatmaps as heatmap_bench  # benchmarks/heatmaps.py
    from focusclip.heatmaps import MPII_PART_GROUPS

    h0, w0 = data["frame"]
    groups = list(MPII_PART_GROUPS.values())
    maps = []
    for p in data["people"]:
        joints, vis = _arrays(p)
        full = (heatmap_bench.naive_parts(joints, vis, h0, w0, groups) if mode == "parts"
                else heatmap_bench.naive_person(joints, vis, h0, w0))
        maps.append(torch.from_numpy(full).float())
    full = torch.stack(maps)[:, None]
    return F.interpolate(full, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


# ---------------------------------------------------------------------------------------- model
def reference_forward(model, image, tokens, heatmap) -> dict[str, Any]:
    """``model.forward`` with the reference text pooling: mean over every position, padding included."""

    import torch.nn.functional as F

    hidden = model.text.encoder(input_ids=tokens["input_ids"],
                                attention_mask=tokens["attention_mask"]).last_hidden_state
    text = model.text_proj(hidden.mean(1))
    return {"image_features": model.encode_image(image, normalize=True),
            "text_features": F.normalize(text, dim=-1),
            "roi_features": model.encode_roi(image, heatmap, normalize=True),
            "logit_scale": model.logit_scale.clamp(max=math.log(100.0)).exp()}


class StepRunner:
    """One pipeline's training step on fixed data, timed per phase."""

    def __init__(self, model_name: str, pipeline: str, data: dict[str, Any], batch: int, device: str,
                 heatmap_mode: str, seed: int):
        import torch

        from focusclip.loss import FocusCLIPLoss
        from focusclip.model.factory import create_model, get_tokenizer

        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, got {pipeline!r}")
        if len(data["texts"]) < batch:
            raise ValueError(f"data has {len(data['texts'])} samples, batch {batch} needs more")
        self.pipeline, self.device, self.mode = pipeline, torch.device(device), heatmap_mode
        self.data = {"frame": data["frame"], "people": data["people"][:batch], "texts": data["texts"][:batch]}
        torch.manual_seed(seed)
        self.model = create_model(model_name, pretrained="none", device=self.device).train()
        if not self.model.roi_enabled:
            raise ValueError(f"{model_name} has no ROI branch; this benchmark needs a FocusCLIP config")
        self.size = self.model.image_size
        gen = torch.Generator().manual_seed(seed)
        self.images = torch.randn(batch, 3, self.size, self.size, generator=gen).to(self.device)
        self.loss_fn = FocusCLIPLoss(gather=False)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=5e-4, momentum=0.9)
        if pipeline == "ours":
            # Same 512-token limit as the reference, so no text is truncated in either pipeline and the
            # only difference is the padding (the configs' own limits are 128 for tiny, 256 for lite0).
            self.tokenizer = get_tokenizer(model_name, context_length=REFERENCE_CONTEXT)
            self.tokens = self.tokenizer(self.data["texts"])  # before the step, as loader workers do
        else:
            self.tokenizer = get_tokenizer(model_name, context_length=REFERENCE_CONTEXT, pad_to_max=True)
            self.tokens = None
        self.sync = C.synchronizer(self.device)
        self.phases: list[dict[str, float]] = []
        self.last_loss = float("nan")
        self.text_len = 0

    def heatmaps(self):
        if self.pipeline == "ours":
            return ours_heatmaps(self.data, self.size, self.mode)
        return reference_heatmaps(self.data, self.size, self.mode)

    def step(self) -> float:
        import torch

        t0 = time.perf_counter()
        hm = self.heatmaps().to(self.device)
        t1 = time.perf_counter()
        tokens = self.tokens if self.tokens is not None else self.tokenizer(self.data["texts"])
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        self.text_len = int(tokens["input_ids"].shape[1])
        t2 = time.perf_counter()
        if self.pipeline == "ours":
            out = self.model(self.images, tokens, hm)
        else:
            out = reference_forward(self.model, self.images, tokens, hm)
        loss = self.loss_fn(out)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sync()
        t3 = time.perf_counter()
        self.phases.append({"heatmap_s": t1 - t0, "tokenize_s": t2 - t1, "model_s": t3 - t2})
        self.last_loss = float(loss.detach())
        return self.last_loss


class RssSampler:
    """Track the process's resident set size in a background thread (torch ops release the GIL)."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = C.current_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, C.current_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, C.current_rss_bytes())


def measure(model_name: str, pipeline: str, data: dict[str, Any], batch: int, warmup: int, steps: int,
            device: str = "cpu", heatmap_mode: str = "parts", seed: int = 0) -> dict[str, Any]:
    """Warm-up, then ``steps`` timed steps of one pipeline; medians per phase, memory, loss."""
    import torch

    runner = StepRunner(model_name, pipeline, data, batch, device, heatmap_mode, seed)
    gc.collect()
    cuda = runner.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(runner.device)
        base = torch.cuda.memory_allocated(runner.device)
    base_rss = C.current_rss_bytes()
    with RssSampler() as sampler:
        timing = C.time_fn(runner.step, warmup, steps, runner.sync)
    timed = runner.phases[-steps:]
    med = {k: statistics.median(p[k] for p in timed) for k in timed[0]}
    result = {
        "model": model_name, "pipeline": pipeline, "batch": batch, "image_size": runner.size,
        "text_len": runner.text_len, "step_s": timing["median_s"], "samples_per_s": batch / timing["median_s"],
        **med, "model_samples_per_s": batch / med["model_s"], "loss": runner.last_loss,
        "peak_rss_mib": C.mib(sampler.peak), "step_rss_mib": C.mib(max(0, sampler.peak - base_rss)),
        "device": str(runner.device),
    }
    if cuda:
        result["peak_mem_mib"] = C.mib(torch.cuda.max_memory_allocated(runner.device) - base)
    else:
        result["peak_mem_mib"] = result["step_rss_mib"]
    return result


# --------------------------------------------------------------------------------------- driver
def heatmap_check(data: dict[str, Any], size: int, mode: str) -> dict[str, Any]:
    """Both pipelines' heatmaps for the same people agree up to resampling.

    Resizing a full-frame map averages away parts thinner than an output pixel (which ours draws at the
    minimum sigma of one output pixel), so the check is on the per-map Pearson correlation (> 0.9),
    with the mean and largest absolute differences reported alongside.
    """
    import torch

    ours = ours_heatmaps(data, size, mode).flatten(1).double()
    ref = reference_heatmaps(data, size, mode).flatten(1).double()
    diff = (ours - ref).abs()
    a, b = ours - ours.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True)
    corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    min_corr = float(torch.nan_to_num(corr, nan=1.0).min())
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "min_correlation": min_corr,
            "passed": min_corr > 0.9}


def _word_stats(texts: list[str]) -> dict[str, float]:
    return C.text_stats([len(t.split()) for t in texts])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    frame = tuple(int(v) for v in args.frame.lower().split("x"))[::-1]  # "WxH" -> (H, W)
    batches = {m: args.batch or DEFAULT_BATCH.get(m, 16) for m in args.models}
    data = make_data(max(batches.values()), args.seed, frame)
    info = C.machine_description(args.device)
    report: dict[str, Any] = {
        "benchmark": "train_step", "date": C.now_utc(), "command": C.command_line("train_step.py", args.argv),
        "machine": info, "frame": list(frame), "heatmap_mode": args.heatmap, "text_source": data["source"],
        "words": _word_stats(data["texts"]), "warmup": args.warmup, "steps": args.steps,
        "isolation": "subprocess per pipeline" if args.subprocess else "in-process (memory peaks mix)",
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "data.json"
        data_file.write_text(json.dumps(data))
        for model_name in args.models:
            entry: dict[str, Any] = {"batch": batches[model_name]}
            for pipeline in PIPELINES:
                print(f"[train_step] {model_name} {pipeline} batch {batches[model_name]} ...", flush=True)
                if args.subprocess:
                    res = C.run_worker(Path(__file__), [
                        "--worker", "--models", model_name, "--pipeline", pipeline, "--data", str(data_file),
                        "--batch", str(batches[model_name]), "--warmup", str(args.warmup),
                        "--steps", str(args.steps), "--device", args.device, "--heatmap", args.heatmap,
                        "--seed", str(args.seed), "--threads", str(args.threads or 0)])
                else:
                    res = measure(model_name, pipeline, data, batches[model_name], args.warmup, args.steps,
                                  args.device, args.heatmap, args.seed)
                entry[pipeline] = res
                print(f"[train_step]   {res['samples_per_s']:.2f} samples/s, step {res['step_s'] * 1e3:.0f} ms, "
                      f"text length {res['text_len']}, peak +{res['peak_mem_mib']:.0f} MiB", flush=True)
            entry.update(_ratios(entry["ours"], entry["reference"]))
            entry["heatmap_check"] = heatmap_check(data_slice(data, batches[model_name]),
                                                   entry["ours"]["image_size"], args.heatmap)
            entry["losses_finite"] = all(math.isfinite(entry[p]["loss"]) for p in PIPELINES)
            report["models"][model_name] = entry
    report["passed"] = all(e["heatmap_check"]["passed"] and e["losses_finite"] for e in report["models"].values())
    _print(report, args.markdown)
    return report


def data_slice(data: dict[str, Any], n: int) -> dict[str, Any]:
    return {"frame": data["frame"], "people": data["people"][:n], "texts": data["texts"][:n]}


def _ratios(ours: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    return {"speedup": ours["samples_per_s"] / ref["samples_per_s"],
            "model_speedup": ours["model_samples_per_s"] / ref["model_samples_per_s"],
            "memory_ratio": (ref["peak_mem_mib"] / ours["peak_mem_mib"]) if ours["peak_mem_mib"] else None}


def _print(report: dict[str, Any], markdown: bool) -> None:
    headers = ["model (batch)", "pipeline", "text len", "heatmaps ms", "tokenise ms", "model step ms",
               "step ms", "samples/s", "peak mem MiB"]
    rows = []
    for name, e in report["models"].items():
        for p in PIPELINES:
            r = e[p]
            rows.append([f"{name} ({e['batch']})", p, r["text_len"], r["heatmap_s"] * 1e3, r["tokenize_s"] * 1e3,
                         r["model_s"] * 1e3, r["step_s"] * 1e3, r["samples_per_s"], r["peak_mem_mib"]])
        rows.append([f"{name} ({e['batch']})", "**ours / reference**", "", "", "", f"{e['model_speedup']:.2f}x",
                     "", f"**{e['speedup']:.2f}x**",
                     f"{1 / e['memory_ratio']:.2f}x" if e["memory_ratio"] else "-"])
    w = report["words"]
    lines = [
        f"- date: {report['date']}; command: `{report['command']}`",
        f"- machine: {C.machine_line(report['machine'])}",
        f"- step: forward (3 branches) + NT-Xent FocusCLIP loss + backward + clip 1.0 + SGD; "
        f"median of {report['steps']} steps after {report['warmup']} warm-up; {report['isolation']}",
        f"- data: {report['text_source']} ({w['min']}-{w['max']} words, median {w['median']}); "
        f"{report['heatmap_mode']} heatmaps from a {report['frame'][1]}x{report['frame'][0]} frame",
        "",
        C.markdown_table(headers, rows),
        "",
    ]
    for name, e in report["models"].items():
        hc = e["heatmap_check"]
        lines.append(f"- {name}: heatmaps of the two pipelines correlate at >= {hc['min_correlation']:.3f}, differ by "
                     f"{hc['mean_abs_diff']:.4f} on average (max {hc['max_abs_diff']:.3f}, thin parts that the "
                     f"resize averages away); losses finite: {e['losses_finite']}")
    text = "\n".join(lines)
    if not markdown:
        text = text.replace("**", "")
    print(text, flush=True)


def _worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    data = json.loads(Path(args.data).read_text())
    res = measure(args.models[0], args.pipeline, data, args.batch, args.warmup, args.steps, args.device,
                  args.heatmap, args.seed)
    C.emit_result(res)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=0, help="batch size (default: 32 tiny, 16 lite0)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps (median)")
    p.add_argument("--frame", default="1280x720", help="WxH of the full frame the joints live in")
    p.add_argument("--heatmap", choices=("parts", "person"), default="parts",
                   help="heatmap kind (the reference scripts write body-part maps)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-subprocess", dest="subprocess", action="store_false",
                   help="run both pipelines in this process (faster; memory peaks then mix)")
    p.add_argument("--markdown", action="store_true", help="print a block for benchmarks/RESULTS.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pipeline", choices=PIPELINES, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    return C.parse_args(p, argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging(silence_truncation=True)
    if args.worker:
        _worker(args)
        return {}
    return run(args)


if __name__ == "__main__":
    out = main()
    sys.exit(0 if not out or out.get("passed") else 1)

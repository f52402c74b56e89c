"""Benchmark: the paper's architecture (ViT-B/16 + BERT-base, three branches) training on one GPU.

Synthetic inputs (random images and heatmaps, random token ids) are placed on the device once, so
the numbers are the model's: samples/s, step time, peak memory and model-FLOPs utilisation (MFU)
against the card's dense bf16 peak, for

- ``fp32``: eager, TF32 off, for-each SGD: the paper's way of running (batch 32 only);
- ``bf16``: autocast bf16, TF32 on for the fp32 remainder, fused SGD, channels_last where the vision
  tower is convolutional, eager, at batch 32 and larger (64, 128, 256 by default);
- ``bf16+compile``: the same under ``torch.compile`` at the best eager batch size (compile time is
  reported separately),

each with texts of realistic length (160-240 tokens, padded to the longest in the batch) and with
every text padded to 512 tokens as in the paper. A step is forward (image, ROI and text branches),
the NT-Xent FocusCLIP loss, backward, gradient-norm clip 1.0 and SGD (lr 5e-4, momentum 0.9).

Before timing, one bf16 step is checked against an fp32 step on the same weights and inputs: the
losses must agree within ``--loss-rtol`` (relative) and the gradients' cosine similarity must exceed
``--min-grad-cos`` (in eval mode, so dropout does not differ between them). A compiled step's loss is
checked against an eager forward on the same weights and inputs with the same tolerance (BERT's dropout
is active in both there, which moves the loss by about 1e-3 relative).

Model FLOPs are analytic (ViT: patch embedding + per block 2N(4d^2 + 2d*d_mlp) + 4N^2 d; BERT: per
layer 2T(4h^2 + 2h*h_ff) + 4T^2 h; training = 3x forward; the vision tower runs twice, for the image
and the ROI branch) and cross-checked with ``torch.utils.flop_counter``. MFU counts the padded tokens
the GPU computes; "useful MFU" counts only real tokens.

Then the whole-CLIP fine-tuning step (``--clip-model``, default ``focusclip-openclip-vit-b16``: open_clip's
ViT-B/16 architecture, random init, plus the ROI branch) in bf16 with fused SGD (and compiled when
compile is on) at ``--clip-batch-sizes``, MFU from ``torch.utils.flop_counter``; and the training
loader's rate (``benchmarks/loader.py``) with ``--loader-workers`` (8 and 16) next to the fastest step.

    python benchmarks/gpu_paper.py --out results.json            # the GPU run (a few minutes on an H100/H200)
    python benchmarks/gpu_paper.py --smoke --out /tmp/r.json     # every part, tiny, on the CPU (the test's run)

OOM at a batch size is recorded and the larger sizes of that setting are skipped. JSON and a markdown
block are written to ``--out`` (and ``<out>.md``) after every measurement, so an interrupted run keeps
what it finished. ``--time-budget`` skips the remaining work when it runs out.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

log = logging.getLogger("benchmarks.gpu_paper")

PAPER_IMAGES = 17_367
PAPER_EPOCHS = 64
PAPER_BATCH = 32
REALISTIC_TOKENS = (160, 240)
# Dense bf16 tensor-core peaks (no sparsity), TFLOPS; the first matching name wins.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("A10G", 70.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0),
)


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


# ---------------------------------------------------------------------------------------- FLOPs
def vit_forward_flops(trunk: Any) -> float | None:
    """Forward FLOPs of one image through a timm VisionTransformer (None for other architectures)."""
    try:
        pe = trunk.patch_embed
        n_patches = int(pe.num_patches)
        p = pe.patch_size
        in_ch = int(pe.proj.in_channels)
        d = int(trunk.embed_dim)
        blocks = list(trunk.blocks)
        d_mlp = int(blocks[0].mlp.fc1.out_features)
        n = n_patches + int(getattr(trunk, "num_prefix_tokens", 1))
    except (AttributeError, TypeError, IndexError):
        return None
    patch = 2.0 * n_patches * in_ch * p[0] * p[1] * d
    block = 2.0 * n * (4 * d * d + 2 * d * d_mlp) + 4.0 * n * n * d
    return patch + len(blocks) * block


def bert_forward_flops(config: Any, tokens: float) -> float | None:
    """Forward FLOPs of one text of ``tokens`` tokens through a BERT-like encoder (None if unknown)."""
    try:
        layers, h, ff = int(config.num_hidden_layers), int(config.hidden_size), int(config.intermediate_size)
    except (AttributeError, TypeError):
        return None
    return layers * (2.0 * tokens * (4 * h * h + 2 * h * ff) + 4.0 * tokens * tokens * h)


def train_flops_per_sample(model: Any, text_tokens: float) -> float | None:
    """3 x forward: vision twice (image + ROI branch), text once, three projections."""
    vis = vit_forward_flops(model.visual.trunk)
    txt = bert_forward_flops(model.text.encoder.config, text_tokens)
    if vis is None or txt is None:
        return None
    proj = 2.0 * (2 * model.visual_proj.in_features * model.visual_proj.out_features
                  + model.text_proj.in_features * model.text_proj.out_features)
    return 3.0 * (2 * vis + txt + proj)


def counted_train_flops(model: Any, device: Any, text_tokens: int) -> float | None:
    """Training FLOPs of one sample counted by torch.utils.flop_counter (forward + backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        image, heatmap, tokens, _ = make_inputs(model, 2, text_tokens, device, seed=1, pad="max")
        counter = FlopCounterMode(display=False)
        with counter:
            out = model(image, tokens, heatmap)
            loss = sum(v.float().sum() for k, v in out.items() if k.endswith("_features"))
            loss.backward()
        model.zero_grad(set_to_none=True)
        return counter.get_total_flops() / 2
    except Exception as e:  # a cross-check only; never fail the benchmark on it
        log.warning("flop counter failed: %s", e)
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        return None


# --------------------------------------------------------------------------------------- inputs
def make_inputs(model: Any, batch: int, text_len: int | tuple[int, int], device: Any, seed: int,
                pad: str = "longest") -> tuple[Any, Any, dict[str, Any], float]:
    """Random normalised images, heatmaps in [0, 1] and token batches; returns the mean real length too.

    ``text_len`` is a fixed real length or a (low, high) range drawn uniformly per text; ``pad`` is
    "longest" (pad to the batch's longest) or "max" (pad to the model's 512-position limit).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    image = torch.randn(batch, 3, s, s, generator=g)
    heatmap = torch.rand(batch, 1, s, s, generator=g)
    cfg = model.text.encoder.config
    max_pos = min(512, int(getattr(cfg, "max_position_embeddings", 512)))
    if isinstance(text_len, tuple):
        lengths = torch.randint(text_len[0], text_len[1] + 1, (batch,), generator=g)
    else:
        lengths = torch.full((batch,), int(text_len))
    lengths = lengths.clamp(2, max_pos)
    width = max_pos if pad == "max" else int(lengths.max())
    vocab = int(getattr(cfg, "vocab_size", 30522))
    ids = torch.randint(1000, vocab, (batch, width), generator=g)
    pos = torch.arange(width)[None]
    mask = (pos < lengths[:, None]).long()
    ids = torch.where(mask.bool(), ids, torch.zeros_like(ids))
    ids[:, 0] = 101  # [CLS]
    ids[torch.arange(batch), lengths - 1] = 102  # [SEP]
    tokens = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    return image.to(device), heatmap.to(device), tokens, float(lengths.float().mean())


def clip_inputs(model: Any, batch: int, device: Any, seed: int) -> tuple[Any, Any, dict[str, Any], float]:
    """Random inputs for a whole-CLIP model (open_clip text tower: BPE ids padded to its context length,
    each text ending in the end-of-text id, the highest in the vocabulary, which open_clip pools at)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    image = torch.randn(batch, 3, s, s, generator=g)
    heatmap = torch.rand(batch, 1, s, s, generator=g)
    n = int(model.text.context_length)
    holder = model.text.text if getattr(model.text, "custom", False) else model.text
    emb = getattr(holder, "token_embedding", None)
    vocab = int(emb.weight.shape[0]) if emb is not None else 49408
    lengths = torch.randint(max(2, n // 2), n + 1, (batch,), generator=g)
    ids = torch.randint(1, vocab - 1, (batch, n), generator=g)
    mask = (torch.arange(n)[None] < lengths[:, None]).long()
    ids = torch.where(mask.bool(), ids, torch.zeros_like(ids))
    ids[torch.arange(batch), lengths - 1] = vocab - 1
    tokens = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    return image.to(device), heatmap.to(device), tokens, float(lengths.float().mean())


def counted_step_flops(model: Any, inputs: tuple[Any, Any, dict[str, Any], float]) -> float | None:
    """Training FLOPs per sample of ``model`` on ``inputs`` (forward + backward), by the flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    image, heatmap, tokens, _ = inputs
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            out = model(image, tokens, heatmap)
            sum(v.float().sum() for k, v in out.items() if k.endswith("_features")).backward()
        model.zero_grad(set_to_none=True)
        return counter.get_total_flops() / image.shape[0]
    except Exception as e:  # noqa: BLE001 - MFU is then unknown, the timing still counts
        log.warning("flop counter failed: %s", e)
        model.zero_grad(set_to_none=True)
        return None


# ----------------------------------------------------------------------------------------- steps
class Trainer:
    """One step of the model under a precision / optimizer / compile variant."""

    def __init__(self, model: Any, device: Any, bf16: bool, fused: bool, compiled: Any = None,
                 channels_last: bool = False):
        import torch

        from focusclip.loss import FocusCLIPLoss

        self.model, self.device, self.bf16 = model, device, bf16
        self.forward = compiled if compiled is not None else model
        self.channels_last = channels_last
        self.loss_fn = FocusCLIPLoss(gather=False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.fused = False
        if fused:
            try:
                self.opt = torch.optim.SGD(params, lr=5e-4, momentum=0.9, fused=True)
                self.fused = True
            except (RuntimeError, TypeError, ValueError) as e:
                log.warning("fused SGD unavailable (%s); using for-each", e)
        if not self.fused:
            self.opt = torch.optim.SGD(params, lr=5e-4, momentum=0.9, foreach=True)
        self.params = params

    def loss(self, image: Any, heatmap: Any, tokens: dict[str, Any]) -> Any:
        import torch

        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.forward(image, tokens, heatmap)
            return self.loss_fn(out)["loss"]

    def step(self, image: Any, heatmap: Any, tokens: dict[str, Any]) -> float:
        import torch

        loss = self.loss(image, heatmap, tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    def close(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.opt.state.clear()


def set_tf32(enabled: bool) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def grads_of(model: Any) -> list[Any]:
    return [p.grad.detach().float().clone() if p.grad is not None else None for p in model.parameters()]


def grad_cosine(a: list[Any], b: list[Any]) -> float:
    """Cosine similarity of two gradient lists as one vector, accumulated in float64 per tensor."""
    dot = na = nb = 0.0
    for x, y in zip(a, b):
        if x is None or y is None:
            continue
        x, y = x.double(), y.double()
        dot += float((x * y).sum())
        na += float((x * x).sum())
        nb += float((y * y).sum())
    return dot / math.sqrt(max(na * nb, 1e-300))


def precision_check(model: Any, device: Any, batch: int, seed: int, loss_rtol: float,
                    min_cos: float) -> dict[str, Any]:
    """bf16 autocast vs fp32 (TF32 off) on the same weights and inputs: losses and gradient cosine.

    Runs in eval mode (no dropout; the paper's towers have no batch norm) so that the only difference
    between the two forward/backward passes is the arithmetic precision.
    """
    import torch

    image, heatmap, tokens, _ = make_inputs(model, batch, REALISTIC_TOKENS, device, seed)
    results = {}
    set_tf32(False)
    model.eval()  # dropout off: the two steps must see the same network, not two random masks
    for name, bf16 in (("fp32", False), ("bf16", True)):
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            from focusclip.loss import FocusCLIPLoss

            loss = FocusCLIPLoss(gather=False)(model(image, tokens, heatmap))["loss"]
        loss.backward()
        results[name] = (float(loss.detach()), grads_of(model))
    model.zero_grad(set_to_none=True)
    model.train()
    (l32, g32), (l16, g16) = results["fp32"], results["bf16"]
    cos = grad_cosine(g32, g16)
    rel = abs(l16 - l32) / max(abs(l32), 1e-12)
    del results, g32, g16
    passed = rel <= loss_rtol and cos >= min_cos and math.isfinite(l16)
    return {"batch": batch, "loss_fp32": l32, "loss_bf16": l16, "loss_rel_diff": rel, "grad_cosine": cos,
            "loss_rtol": loss_rtol, "min_grad_cos": min_cos, "passed": passed}


def _free(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _is_oom(e: BaseException) -> bool:
    import torch

    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


# ---------------------------------------------------------------------------------------- runner
class Bench:
    """Runs the measurements in order, keeps the report and writes it after each one."""

    def __init__(self, args: argparse.Namespace):
        import torch

        from focusclip.model.factory import create_model

        self.args = args
        self.t0 = time.perf_counter()
        dev = args.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(dev)
        self.cuda = self.device.type == "cuda"
        self.sync = C.synchronizer(dev)
        torch.manual_seed(args.seed)
        self.say(f"building {args.model} (random init) on {self.device}")
        self.model = create_model(args.model, pretrained="none", device=self.device).train()
        if not self.model.roi_enabled:
            raise SystemExit(f"{args.model} has no ROI branch; pick a focusclip-* config")
        n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in self.model.visual.modules())
        self.channels_last = args.channels_last == "on" or (args.channels_last == "auto" and n_conv > 1)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        want_compile = args.compile == "on" or (args.compile == "auto" and self.cuda)
        self.compile = want_compile and hasattr(torch, "compile")
        info = C.machine_description(str(self.device))
        name = info.get("gpu", "")
        self.peak = args.peak_tflops or (peak_tflops(name) if name else None)
        n_params = sum(p.numel() for p in self.model.parameters())
        self.report: dict[str, Any] = {
            "benchmark": "gpu_paper", "date": C.now_utc(), "command": C.command_line("gpu_paper.py", args.argv),
            "machine": info, "model": args.model, "params_m": round(n_params / 1e6, 1),
            "peak_bf16_tflops": self.peak, "channels_last": self.channels_last, "compile": self.compile,
            "settings": {}, "check": None, "rows": [], "notes": [],
        }
        self.settings = {"realistic": {"text_len": REALISTIC_TOKENS, "pad": "longest"},
                         "paper-512": {"text_len": REALISTIC_TOKENS, "pad": "max"}}
        if args.settings:
            self.settings = {k: v for k, v in self.settings.items() if k in args.settings}

    # ------------------------------------------------------------------ helpers
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.args.time_budget - self.elapsed()

    def say(self, msg: str) -> None:
        print(f"[gpu_paper {self.elapsed():6.1f}s] {msg}", flush=True)

    def save(self) -> None:
        if self.args.out:
            from focusclip.io import atomic_write_json, atomic_write_text

            out = Path(self.args.out)
            atomic_write_json(out, self.report)
            atomic_write_text(out.with_suffix(".md"), markdown(self.report) + "\n")

    def flops(self) -> None:
        model = self.model
        vis = vit_forward_flops(model.visual.trunk)
        self.report["flops"] = {
            "vision_forward_gflops_per_image": None if vis is None else vis / 1e9,
            "note": "analytic; 1 MAC = 2 FLOPs (ViT-B/16 at 224: ~35.1 GFLOPs = the usual '17.6 GFLOPs', "
                    "which counts MACs)",
        }
        width = min(512, int(getattr(model.text.encoder.config, "max_position_embeddings", 512)))
        analytic = train_flops_per_sample(model, width)
        counted = counted_train_flops(model, self.device, width)
        self.report["flops"].update(train_gflops_per_sample_at_512=None if analytic is None else analytic / 1e9,
                                    counted_train_gflops_per_sample_at_512=None if counted is None
                                    else counted / 1e9)
        if analytic is None:
            self.report["notes"].append("no analytic FLOPs for this architecture; MFU uses the flop counter")
        self.say(f"training FLOPs per sample at {width} tokens: analytic "
                 f"{C.fmt(analytic / 1e9 if analytic else None)} GFLOPs, counted "
                 f"{C.fmt(counted / 1e9 if counted else None)} GFLOPs")

    def sample_flops(self, text_tokens: float, width: int) -> tuple[float | None, float | None]:
        """(FLOPs per sample at the padded width, FLOPs per sample at the real token count)."""
        hw = train_flops_per_sample(self.model, width)
        useful = train_flops_per_sample(self.model, text_tokens)
        if hw is None:  # other architectures: scale the counted number
            counted = self.report["flops"].get("counted_train_gflops_per_sample_at_512")
            hw = useful = None if counted is None else counted * 1e9
        return hw, useful

    # ------------------------------------------------------------------ steps
    def check(self) -> dict[str, Any]:
        batch = min(PAPER_BATCH, min(self.args.batch_sizes))
        self.say(f"precision check: bf16 autocast vs fp32 (TF32 off), batch {batch}")
        res = precision_check(self.model, self.device, batch, self.args.seed, self.args.loss_rtol,
                              self.args.min_grad_cos)
        self.say(f"  loss fp32 {res['loss_fp32']:.5f} bf16 {res['loss_bf16']:.5f} (rel diff "
                 f"{res['loss_rel_diff']:.2e}), grad cosine {res['grad_cosine']:.5f}: "
                 f"{'PASSED' if res['passed'] else 'FAILED'}")
        self.report["check"] = res
        _free(self.device)
        self.save()
        return res

    def measure(self, variant: str, setting: str, batch: int, trainer: Any) -> dict[str, Any]:
        import torch

        spec = self.settings[setting]
        row: dict[str, Any] = {"variant": variant, "setting": setting, "batch": batch}
        oom = False
        try:
            image, heatmap, tokens, real = make_inputs(self.model, batch, spec["text_len"], self.device,
                                                       self.args.seed, spec["pad"])
            width = int(tokens["input_ids"].shape[1])
            if self.cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
            timing = C.time_fn(lambda: trainer.step(image, heatmap, tokens), self.args.warmup, self.args.steps,
                               self.sync)
            loss = float(timing["result"])
        except Exception as e:
            if not _is_oom(e):
                raise
            oom = True
        if oom:  # outside the except block, so the traceback's frames (and their activations) are gone
            row.update(status="OOM")
            trainer.opt.zero_grad(set_to_none=True)
            self.model.zero_grad(set_to_none=True)
            image = heatmap = tokens = timing = None
            _free(self.device)
            self.say(f"{variant:14s} {setting:10s} batch {batch:4d}: out of memory")
            return row
        step_s = timing["median_s"]
        hw, useful = self.sample_flops(real, width)
        row.update(status="ok", text_len=width, real_tokens=round(real, 1), step_s=step_s,
                   samples_per_s=batch / step_s, loss=loss, finite=math.isfinite(loss),
                   peak_mem_gib=(torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda
                                 else C.peak_rss_bytes() / 2**30),
                   tflops=None if hw is None else hw * batch / step_s / 1e12)
        if self.peak and hw is not None:
            row["mfu"] = hw * batch / step_s / (self.peak * 1e12)
            row["useful_mfu"] = useful * batch / step_s / (self.peak * 1e12)
        self.say(f"{variant:14s} {setting:10s} batch {batch:4d}: {row['samples_per_s']:8.1f} samples/s, "
                 f"step {step_s * 1e3:7.1f} ms, text {width} ({real:.0f} real), peak "
                 f"{row['peak_mem_gib']:.2f} GiB" + (f", MFU {row['mfu'] * 100:.1f}%" if "mfu" in row else ""))
        image = heatmap = tokens = None  # free the inputs before the next configuration
        return row

    def add(self, row: dict[str, Any]) -> None:
        self.report["rows"].append(row)
        self.save()

    def baseline(self) -> None:
        """fp32, TF32 off, for-each SGD, eager, batch 32: how the paper's code runs."""
        set_tf32(False)
        batch = min(PAPER_BATCH, min(self.args.batch_sizes))
        trainer = Trainer(self.model, self.device, bf16=False, fused=False)
        for setting in self.settings:
            if self.left() < 20:
                self.report["notes"].append(f"fp32 {setting}: skipped (time budget)")
                continue
            self.add(self.measure("fp32", setting, batch, trainer))
        trainer.close()
        _free(self.device)

    def bf16_sweep(self) -> dict[str, int]:
        """bf16 eager over the batch sizes; returns the fastest batch size per setting."""
        set_tf32(True)
        trainer = Trainer(self.model, self.device, bf16=True, fused=True, channels_last=self.channels_last)
        self.report["fused_sgd"] = trainer.fused
        best: dict[str, int] = {}
        for setting in self.settings:
            top = 0.0
            for batch in self.args.batch_sizes:
                if self.left() < 15 + (90 if self.compile else 0):
                    self.report["notes"].append(f"bf16 {setting} batch {batch}: skipped (time budget)")
                    continue
                row = self.measure("bf16", setting, batch, trainer)
                self.add(row)
                if row["status"] == "OOM":
                    break
                if row["samples_per_s"] > top:
                    top, best[setting] = row["samples_per_s"], batch
        trainer.close()
        _free(self.device)
        return best

    def compiled(self, best: dict[str, int]) -> None:
        """torch.compile at the best eager batch size of each setting (one compilation per shape)."""
        import torch

        if not self.compile:
            self.report["notes"].append("torch.compile: off" + ("" if self.cuda else " (CPU dry run)"))
            return
        set_tf32(True)
        compiled = torch.compile(self.model, dynamic=False)  # one static graph per shape
        trainer = Trainer(self.model, self.device, bf16=True, fused=True, compiled=compiled,
                          channels_last=self.channels_last)
        need = 100.0  # seconds a compilation plus its timed steps may take; updated from the first one
        for setting, batch in best.items():
            if self.left() < need:
                self.report["notes"].append(f"bf16+compile {setting}: skipped (time budget; {self.left():.0f} s "
                                            f"left, about {need:.0f} s needed)")
                continue
            row = {"variant": "bf16+compile", "setting": setting, "batch": batch}
            try:
                spec = self.settings[setting]
                image, heatmap, tokens, _ = make_inputs(self.model, batch, spec["text_len"], self.device,
                                                        self.args.seed, spec["pad"])  # = measure()'s inputs: no recompile
                eager = Trainer(self.model, self.device, bf16=True, fused=False, channels_last=self.channels_last)
                with torch.no_grad():
                    ref = float(eager.loss(image, heatmap, tokens))
                eager.close()
                self.say(f"compiling for {setting}, batch {batch} ...")
                t = time.perf_counter()
                got = float(trainer.step(image, heatmap, tokens))  # compiles (training graph) and steps
                self.sync()
                row["compile_s"] = time.perf_counter() - t
                need = max(need, 1.3 * row["compile_s"] + 30)
                rel = abs(got - ref) / max(abs(ref), 1e-12)
                row["check"] = {"loss_eager": ref, "loss_compiled": got, "rel_diff": rel,
                                "passed": rel <= self.args.loss_rtol}
                self.say(f"  compiled in {row['compile_s']:.1f} s; loss compiled {got:.5f} vs eager {ref:.5f} "
                         f"({'ok' if row['check']['passed'] else 'MISMATCH'})")
                row.update({k: v for k, v in self.measure("bf16+compile", setting, batch, trainer).items()
                            if k not in row})
            except Exception as e:  # compile failures must not lose the eager results
                row.update(status=("OOM" if _is_oom(e) else f"error: {type(e).__name__}: {str(e)[:300]}"))
                self.say(f"bf16+compile {setting}: {row['status']}")
            image = heatmap = tokens = None
            self.model.zero_grad(set_to_none=True)
            trainer.opt.zero_grad(set_to_none=True)
            _free(self.device)
            self.add(row)
        trainer.close()
        _free(self.device)

    def whole_clip(self) -> None:
        """The whole-CLIP fine-tuning step (``--clip-model``, random init: open_clip's architecture with
        the ROI branch): bf16, fused SGD (+ compile when on) at ``--clip-batch-sizes``; MFU from counted FLOPs."""
        import torch

        from focusclip.model.factory import create_model

        name = self.args.clip_model
        if not name or self.left() < 40:
            self.report["notes"].append("whole-CLIP step: skipped" + ("" if not name else " (time budget)"))
            return
        self.say(f"whole-CLIP step: building {name} (random init)")
        torch.manual_seed(self.args.seed)
        model = create_model(name, pretrained="none", device=self.device).train()
        set_tf32(True)
        probe = clip_inputs(model, 2, self.device, self.args.seed)
        per_sample = counted_step_flops(model, probe)
        rows = []
        variants = [("bf16", None)]
        if self.compile:
            variants.append(("bf16+compile", torch.compile(model, dynamic=False)))
        for variant, compiled in variants:
            trainer = Trainer(model, self.device, bf16=True, fused=True, compiled=compiled)
            for batch in self.args.clip_batch_sizes:
                if self.left() < 20 + (90 if compiled is not None else 0):
                    self.report["notes"].append(f"whole-CLIP {variant} batch {batch}: skipped (time budget)")
                    continue
                row: dict[str, Any] = {"variant": variant, "model": name, "batch": batch}
                try:
                    image, heatmap, tokens, real = clip_inputs(model, batch, self.device, self.args.seed)
                    if self.cuda:
                        torch.cuda.reset_peak_memory_stats(self.device)
                    t = time.perf_counter()
                    trainer.step(image, heatmap, tokens)  # compiles when compiled
                    self.sync()
                    row["first_step_s"] = time.perf_counter() - t
                    timing = C.time_fn(lambda tr=trainer, a=(image, heatmap, tokens): tr.step(*a),
                                       self.args.warmup, self.args.steps, self.sync)
                    step_s = timing["median_s"]
                    loss = float(timing["result"])
                    row.update(status="ok", text_len=int(tokens["input_ids"].shape[1]), real_tokens=round(real, 1),
                               step_s=step_s, samples_per_s=batch / step_s, loss=loss, finite=math.isfinite(loss),
                               peak_mem_gib=(torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda
                                             else C.peak_rss_bytes() / 2**30))
                    if per_sample is not None:
                        row["tflops"] = per_sample * batch / step_s / 1e12
                        if self.peak:
                            row["mfu"] = row["tflops"] / self.peak
                except Exception as e:  # noqa: BLE001 - an OOM or compile failure must not lose the rest
                    row["status"] = "OOM" if _is_oom(e) else f"error: {type(e).__name__}: {str(e)[:300]}"
                image = heatmap = tokens = None
                trainer.opt.zero_grad(set_to_none=True)
                _free(self.device)
                rows.append(row)
                self.say(f"whole-CLIP {variant:12s} batch {batch:4d}: " + (
                    f"{row['samples_per_s']:8.1f} samples/s, step {row['step_s'] * 1e3:7.1f} ms"
                    + (f", MFU {row['mfu'] * 100:.1f}%" if "mfu" in row else "") if row["status"] == "ok"
                    else row["status"]))
                self.report["whole_clip"] = {"model": name, "train_gflops_per_sample":
                                             None if per_sample is None else per_sample / 1e9, "rows": rows}
                self.save()
            trainer.close()
        del model
        _free(self.device)

    def loader(self) -> None:
        """The training loader's rate (``benchmarks/loader.py``: JPEG decode at 1280x720, transform, heatmap,
        tokenisation) with ``--loader-workers`` workers, against the fastest measured training step."""
        import tempfile

        import loader as loader_bench  # benchmarks/loader.py

        if not self.args.loader_workers or self.left() < 30:
            self.report["notes"].append("loader: skipped" + (" (time budget)" if self.args.loader_workers else ""))
            return
        ok = [r for r in self.report["rows"] if r.get("status") == "ok" and r["setting"] == "realistic"]
        need = max((r["samples_per_s"] for r in ok), default=None)
        out: dict[str, Any] = {"step_samples_per_s": need, "rows": []}
        with tempfile.TemporaryDirectory() as tmp:
            self.say(f"loader: a synthetic world of {self.args.loader_images} images at 1280x720 ...")
            records = loader_bench.add_captions(
                loader_bench.synthetic_records(Path(tmp), self.args.loader_images, self.args.seed, (720, 1280)),
                self.args.seed)
            for workers in self.args.loader_workers:
                if self.left() < 15:
                    self.report["notes"].append(f"loader {workers} workers: skipped (time budget)")
                    continue
                res = loader_bench.loader_rate(records, Path(tmp), self.args.model, self.args.loader_batch, workers,
                                               self.args.loader_samples, "parts", self.args.seed)
                if need:
                    res["keeps_up"] = res["images_per_s"] >= need
                out["rows"].append(res)
                self.say(f"loader {workers:2d} workers: {res['images_per_s']:.1f} images/s"
                         + (f" (step needs {need:.1f}: {'keeps up' if res['keeps_up'] else 'too slow'})"
                            if need else ""))
                self.report["loader"] = out
                self.save()

    def projection(self) -> None:
        ok = [r for r in self.report["rows"] if r.get("status") == "ok"]
        if not ok:
            return
        total = PAPER_IMAGES * PAPER_EPOCHS
        proj = {"samples": total, "images": PAPER_IMAGES, "epochs": PAPER_EPOCHS}
        for setting in self.settings:
            rows = [r for r in ok if r["setting"] == setting]
            if not rows:
                continue
            best = max(rows, key=lambda r: r["samples_per_s"])
            entry = {"variant": best["variant"], "batch": best["batch"], "samples_per_s": best["samples_per_s"],
                     "hours": total / best["samples_per_s"] / 3600}
            base = [r for r in rows if r["variant"] == "fp32"]
            if base:
                entry["fp32_batch"] = base[0]["batch"]
                entry["fp32_hours"] = total / base[0]["samples_per_s"] / 3600
                entry["speedup_vs_fp32"] = best["samples_per_s"] / base[0]["samples_per_s"]
            proj[setting] = entry
        self.report["projection"] = proj

    def run(self) -> dict[str, Any]:
        self.flops()
        check = self.check()
        if not check["passed"]:
            self.report["notes"].append("precision check FAILED: bf16 numbers are not trustworthy")
        self.baseline()
        best = self.bf16_sweep()
        self.compiled(best)
        self.projection()
        self.whole_clip()
        self.loader()
        self.report["elapsed_s"] = self.elapsed()
        compile_checks = [r["check"]["passed"] for r in self.report["rows"] if "check" in r]
        clip_rows = (self.report.get("whole_clip") or {}).get("rows", [])
        self.report["passed"] = bool(check["passed"] and all(compile_checks)
                                     and all(r.get("finite", True) for r in self.report["rows"] + clip_rows))
        self.save()
        return self.report


# -------------------------------------------------------------------------------------- markdown
def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    chk = report.get("check") or {}
    lines = [f"- date: {report['date']}; command: `{report['command']}`",
             f"- machine: {C.machine_line(m)}",
             f"- model: {report['model']} ({report['params_m']}M parameters, random init), synthetic inputs on "
             f"the device; peak dense bf16: {C.fmt(report['peak_bf16_tflops'])} TFLOPS; channels_last: "
             f"{report['channels_last']}; fused SGD: {report.get('fused_sgd', '-')}"]
    if chk:
        lines.append(f"- check (batch {chk['batch']}): loss fp32 {chk['loss_fp32']:.5f} vs bf16 "
                     f"{chk['loss_bf16']:.5f} (rel {chk['loss_rel_diff']:.1e} <= {chk['loss_rtol']}), gradient "
                     f"cosine {chk['grad_cosine']:.4f} (>= {chk['min_grad_cos']}): "
                     f"{'passed' if chk['passed'] else 'FAILED'}")
    fl = report.get("flops") or {}
    if fl:
        lines.append(f"- training FLOPs per sample at 512 tokens: {C.fmt(fl.get('train_gflops_per_sample_at_512'))} "
                     f"GFLOPs analytic, {C.fmt(fl.get('counted_train_gflops_per_sample_at_512'))} counted "
                     "(torch.utils.flop_counter)")
    rows = []
    for r in report["rows"]:
        if r.get("status") != "ok":
            rows.append([r["variant"], r["setting"], r["batch"], "-", "-", "-", "-", "-", "-", "-",
                         r.get("status"), ""])
            continue
        rows.append([r["variant"], r["setting"], r["batch"], f"{r['text_len']} ({r['real_tokens']:.0f})",
                     r["step_s"] * 1e3, r["samples_per_s"], r["peak_mem_gib"], r.get("tflops"),
                     None if r.get("mfu") is None else r["mfu"] * 100,
                     None if r.get("useful_mfu") is None else r["useful_mfu"] * 100, "ok",
                     C.fmt(r.get("compile_s")) if "compile_s" in r else ""])
    headers = ["variant", "text", "batch", "tokens (real)", "step ms", "samples/s", "peak GiB", "TFLOPS",
               "MFU %", "useful MFU %", "status", "compile s"]
    align = ["l", "l"] + ["r"] * 8 + ["l", "r"]
    lines += ["", C.markdown_table(headers, rows, align), ""]
    proj = report.get("projection") or {}
    for setting in ("realistic", "paper-512"):
        p = proj.get(setting)
        if p:
            extra = (f"; fp32 eager at batch {p['fp32_batch']}: {p['fp32_hours']:.2f} h (the best is "
                     f"{p['speedup_vs_fp32']:.1f}x faster)" if "fp32_hours" in p else "")
            lines.append(f"- paper pretraining ({proj['images']:,} images x {proj['epochs']} epochs), {setting} "
                         f"text: {p['hours']:.2f} h at the best configuration ({p['variant']}, batch {p['batch']}, "
                         f"{p['samples_per_s']:.1f} samples/s){extra}")
    wc = report.get("whole_clip")
    if wc:
        lines.append(f"- whole-CLIP fine-tuning step, {wc['model']} (random init), "
                     f"{C.fmt(wc['train_gflops_per_sample'])} training GFLOPs per sample (counted):")
        for r in wc["rows"]:
            lines.append(f"  - {r['variant']}, batch {r['batch']}: " + (
                f"{r['samples_per_s']:.1f} samples/s, step {r['step_s'] * 1e3:.1f} ms, peak {r['peak_mem_gib']:.2f} "
                f"GiB" + (f", MFU {r['mfu'] * 100:.1f}%" if r.get("mfu") is not None else "")
                if r["status"] == "ok" else r["status"]))
    ld = report.get("loader")
    if ld:
        for r in ld["rows"]:
            lines.append(f"- loader, {r['workers']} workers: {r['images_per_s']:.1f} images/s at {r['image_size']} px"
                         + (f" vs the step's {ld['step_samples_per_s']:.1f} samples/s: "
                            f"{'keeps up' if r.get('keeps_up') else 'too slow'}" if ld["step_samples_per_s"] else ""))
    for note in report.get("notes", []):
        lines.append(f"- note: {note}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="focusclip-vit-b16-bert")
    p.add_argument("--batch-sizes", type=_ints, default=[32, 256], help="comma-separated, ascending (default 32,256)")
    p.add_argument("--clip-model", default="focusclip-openclip-vit-b16",
                   help="whole-CLIP model for the fine-tuning step ('' skips it)")
    p.add_argument("--clip-batch-sizes", type=_ints, default=[32, 256])
    p.add_argument("--loader-workers", type=_ints, default=[8, 16], help="loader worker counts ('' skips)")
    p.add_argument("--loader-batch", type=int, default=256)
    p.add_argument("--loader-images", type=int, default=64, help="synthetic images (re-saved at 1280x720)")
    p.add_argument("--loader-samples", type=int, default=3072, help="samples drawn per loader configuration")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny CPU run of every part (tiny models, batch 4, one step): checks the script works")
    p.add_argument("--settings", nargs="+", choices=("realistic", "paper-512"),
                   help="text settings to run (default: both)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="timed steps per configuration (median)")
    p.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="auto: on with CUDA")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="auto: only for convolutional vision towers")
    p.add_argument("--peak-tflops", type=float, default=None, help="override the card's dense bf16 peak")
    p.add_argument("--loss-rtol", type=float, default=2e-2)
    p.add_argument("--min-grad-cos", type=float, default=0.99)
    p.add_argument("--time-budget", type=float, default=300.0,
                   help="seconds from start; work that would not fit is skipped (default fits ~6 min in all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON result path (a markdown block goes next to it, .md)")
    p.add_argument("--markdown", action="store_true", help="print the markdown block at the end")
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.clip_model, args.device, args.compile = "focusclip-tiny", "focusclip-openclip-tiny", "cpu", "off"
        args.batch_sizes, args.clip_batch_sizes, args.steps, args.warmup = [4], [4], 1, 0
        args.loader_workers, args.loader_batch, args.loader_images, args.loader_samples = [0, 2], 4, 6, 16
        args.time_budget = max(args.time_budget, 600.0)
    args.batch_sizes = sorted(args.batch_sizes)
    args.argv = argv
    return args


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    C.configure_logging()
    report = Bench(args).run()
    print(markdown(report) if args.markdown else _plain(report), flush=True)
    return report


def _plain(report: dict[str, Any]) -> str:
    return markdown(report).replace("`", "")


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result.get("passed") else 1)

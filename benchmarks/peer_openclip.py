"""Peer benchmark: our CLIP training step against open_clip's on the same towers, data and recipe.

Both sides train the CLIP baseline's towers - EfficientNet-Lite0 (timm) + all-MiniLM-L6-v2 (Hugging Face,
mean pooling), linear projections to 256-d - at 128 px, batch 32, CLIP loss, SGD (lr 5e-4, momentum 0.9),
gradient-norm clip 1.0, in the same precision, on the same batches (synthetic-world images and their
rule-based pose descriptions). Each side tokenises as its own pipeline does (``--open-clip-tokens own``,
the default): ours pads each batch to its longest caption, open_clip's ``HFTokenizer`` pads every caption
to the context length (256, the same as ours truncates at); ``--open-clip-tokens ours`` feeds open_clip
our token ids instead, so that only the model steps differ.

- **ours**: ``focusclip.train.Trainer.train_step`` of a real ``Trainer`` (model ``clip-lite0-minilm``):
  whatever the training loop does (channels-last convolutions, the frozen-tower cache, ...).
- **open_clip**: ``open_clip.CustomTextCLIP`` built from its own config classes (``TimmModel`` vision
  tower with a linear head, ``HFTextEncoder`` with mean pooling and a linear projection) holding a copy
  of our initial weights, ``open_clip.ClipLoss``, and the step of open_clip's ``train_one_epoch``
  (autocast forward, loss, backward, clip, optimizer step, ``logit_scale`` clamp).

Two recipes: ``full`` (everything trains) and ``frozen-text`` (the demo's: text tower frozen, its
projection trains; open_clip's ``lock_text_tower``). With a frozen text tower our step serves the text
features of captions seen before from memory; a pool of ``--pool`` batches is cycled, so after the
first pass every caption has been seen (what epochs after the first look like), and a third pipeline
``ours (no cache)`` shows what the first epoch costs.

First the models are checked to be the same: with dropout switched off on both sides, the losses of
the first ``--check-steps`` steps (fp32) must agree to 1e-4. Then the pipelines alternate step by step
(interleaved, order rotating each round) and the median step time of each gives samples/s and the
ratios.

    PYTHONPATH=src python benchmarks/peer_openclip.py [--recipes full,frozen-text] [--steps 12]
        [--precision fp32|bf16] [--threads N] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

RECIPES = ("full", "frozen-text")
IMAGE_SIZE, BATCH, EMBED = 128, 32, 256
LR, MOMENTUM, CLIP_NORM = 5e-4, 0.9, 1.0


# ------------------------------------------------------------------------------------------ data
def make_batches(tokenizer: Any, pool: int, seed: int = 0, open_clip_tokenizer: Any = None) -> list[dict[str, Any]]:
    """``pool`` batches of synthetic-world images (normalised, 128 px) and their pose descriptions, with
    open_clip's token ids (``open_clip_tokenizer``; None: ours) for the open_clip side."""
    import numpy as np
    import torch

    from focusclip.data.synthetic import make_record, render_sample, sample_rng
    from focusclip.describe.rules import describe_record

    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    batches = []
    for b in range(pool):
        images, texts = [], []
        for i in range(b * BATCH, (b + 1) * BATCH):
            sample = render_sample(sample_rng(seed, 0, i), image_size=IMAGE_SIZE)
            record = make_record(sample, f"peer_{i:04d}.jpg", "train", f"peer_{i:04d}", IMAGE_SIZE)
            texts.append(describe_record(record, seed=seed))
            arr = np.asarray(sample["image"] if isinstance(sample, dict) else sample.image, dtype=np.float32)
            images.append((torch.from_numpy(arr).permute(2, 0, 1) / 255.0 - mean) / std)
        tokens = tokenizer(texts)
        peer_ids = open_clip_tokenizer(texts) if open_clip_tokenizer is not None else tokens["input_ids"]
        batches.append({"image": torch.stack(images).contiguous(), "text": dict(tokens), "heatmap": None,
                        "open_clip_ids": peer_ids})
    return batches


# ---------------------------------------------------------------------------------------- models
def build_ours(recipe: str, precision: str, cache: bool, out_dir: Path) -> Any:
    from focusclip.train.config import load_config
    from focusclip.train.distributed import init_distributed
    from focusclip.train.loop import Trainer

    cfg = load_config(None, base={
        "name": "peer", "out_dir": str(out_dir), "seed": 0, "batch_size": BATCH, "max_steps": 10_000,
        "precision": precision, "device": "cpu",
        "data": {"format": "fake", "fake_size": BATCH, "heatmap": "none"},
        "model": {"name": "clip-lite0-minilm", "overrides": {"vision": {"image_size": IMAGE_SIZE}},
                  "lock_text": recipe == "frozen-text", "cache_frozen": cache},
        "loss": {"name": "clip"},
        "optim": {"name": "sgd", "lr": LR, "momentum": MOMENTUM, "grad_clip": CLIP_NORM},
        "checkpoint": {"every_epochs": 0}, "eval": {"val_every_epochs": 0, "every_epochs": 0},
        "log": {"tensorboard": False, "plot": False}})
    trainer = Trainer(cfg, init_distributed("cpu"))
    from focusclip.train.frozen import set_train_mode

    set_train_mode(trainer.model)
    return trainer


class OpenClipPipeline:
    """open_clip's model, loss and training step, with our initial weights copied in."""

    def __init__(self, ours: Any, recipe: str, precision: str):
        import open_clip
        import torch

        from focusclip.model.towers.weights import package_path

        self.model = open_clip.CustomTextCLIP(
            embed_dim=EMBED,
            vision_cfg={"timm_model_name": "efficientnet_lite0", "timm_model_pretrained": False,
                        "timm_pool": "avg", "timm_proj": "linear", "image_size": IMAGE_SIZE},
            text_cfg={"hf_model_name": str(package_path("package:all-minilm-l6-v2")), "hf_model_pretrained": True,
                      "hf_pooler_type": "mean_pooler", "hf_proj_type": "linear"},
            output_dict=True)
        m = self.model
        m.visual.trunk.load_state_dict(ours.visual.trunk.state_dict())
        m.text.transformer.load_state_dict(ours.text.encoder.state_dict())
        with torch.no_grad():
            m.visual.head.proj.weight.copy_(ours.visual_proj.weight)
            m.text.proj.weight.copy_(ours.text_proj.weight)
            m.logit_scale.copy_(ours.logit_scale)
        if recipe == "frozen-text":
            m.lock_text_tower(0, freeze_layer_norm=True)
        m.train()
        self.loss = open_clip.ClipLoss()
        self.params = [p for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(self.params, lr=LR, momentum=MOMENTUM)
        self.precision = precision

    def step(self, batch: dict[str, Any]) -> float:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(batch["image"], batch["open_clip_ids"])
            loss = self.loss(**out)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
        self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(100))
        return float(loss.detach())


def _ours_step(trainer: Any) -> Any:
    def step(batch: dict[str, Any]) -> float:
        own = {k: v for k, v in batch.items() if k != "open_clip_ids"}
        losses, _, _ = trainer.train_step({**own, "text": dict(batch["text"])})
        trainer.state.step += 1
        return float(losses["loss"])
    return step


def _dropout_off(*modules: Any) -> None:
    import torch

    for module in modules:
        for m in module.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            for attr in ("dropout_prob", "attention_dropout"):
                if isinstance(getattr(m, attr, None), float):
                    setattr(m, attr, 0.0)


# ------------------------------------------------------------------------------------------ runs
def check_losses(recipe: str, batches: list[dict[str, Any]], steps: int, tmp: Path) -> dict[str, Any]:
    """The first ``steps`` losses of both sides (fp32, dropout off): the models must be the same."""
    ours = build_ours(recipe, "fp32", True, tmp / f"check-{recipe}")
    peer = OpenClipPipeline(ours.model, recipe, "fp32")
    _dropout_off(ours.model, peer.model)
    a = [_ours_step(ours)(batches[i % len(batches)]) for i in range(steps)]
    b = [peer.step(batches[i % len(batches)]) for i in range(steps)]
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
    return {"ours": [round(x, 6) for x in a], "open_clip": [round(x, 6) for x in b], "max_abs_diff": diff,
            "match_1e-4": diff <= 1e-4}


def time_recipe(recipe: str, batches: list[dict[str, Any]], steps: int, precision: str, tmp: Path,
                one_piece: bool = False) -> dict[str, Any]:
    ours = build_ours(recipe, precision, True, tmp / f"time-{recipe}")
    pipelines = {"ours": _ours_step(ours)}
    if recipe == "frozen-text":
        pipelines["ours (no cache)"] = _ours_step(build_ours(recipe, precision, False, tmp / f"nocache-{recipe}"))
    if one_piece and recipe == "full":
        whole = build_ours(recipe, precision, True, tmp / f"one-piece-{recipe}")
        whole.model.text.length_groups = 1  # the text batch in one piece, as before issue 23
        pipelines["ours (text in one piece)"] = _ours_step(whole)
    pipelines["open_clip"] = OpenClipPipeline(ours.model, recipe, precision).step
    names = list(pipelines)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(len(batches) + steps):  # the first pass over the pool is the warm-up (fills our cache)
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            pipelines[name](batches[r % len(batches)])
            if r >= len(batches):
                times[name].append(time.perf_counter() - t)
    rate = {n: BATCH / statistics.median(v) for n, v in times.items()}
    out: dict[str, Any] = {"samples_per_s": {n: round(v, 2) for n, v in rate.items()},
                           "ratio_ours_vs_open_clip": round(rate["ours"] / rate["open_clip"], 2)}
    if "ours (no cache)" in rate:
        out["ratio_first_epoch_vs_open_clip"] = round(rate["ours (no cache)"] / rate["open_clip"], 2)
    if "ours (text in one piece)" in rate:
        out["ratio_one_piece_vs_open_clip"] = round(rate["ours (text in one piece)"] / rate["open_clip"], 2)
    # the spread of the per-round ratio (each round times every pipeline once, back to back)
    per_round = [o / s for s, o in zip(times["ours"], times["open_clip"], strict=True)]
    out["ratio_per_round"] = {"min": round(min(per_round), 2), "median": round(statistics.median(per_round), 2),
                              "max": round(max(per_round), 2), "rounds": len(per_round)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--steps", type=int, default=12, help="timed steps per pipeline (after the warm-up pass)")
    ap.add_argument("--pool", type=int, default=3, help="distinct batches, cycled")
    ap.add_argument("--check-steps", type=int, default=3, help="steps whose losses must match (fp32)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--open-clip-tokens", choices=("own", "ours"), default="own",
                    help="own: open_clip's HFTokenizer (pads to the context length, as its pipeline does); "
                         "ours: our token ids (padded to the batch's longest caption) on both sides")
    ap.add_argument("--one-piece", action="store_true",
                    help="full recipe: also time ours with the text batch encoded in one piece (no length groups)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    C.configure_logging(silence_truncation=True)
    import logging

    logging.getLogger("focusclip").setLevel(logging.WARNING)
    import torch

    import focusclip

    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = [r for r in args.recipes.split(",") if r]
    tokenizer = focusclip.get_tokenizer("clip-lite0-minilm")
    peer_tokenizer = None
    if args.open_clip_tokens == "own":
        from open_clip.tokenizer import HFTokenizer

        from focusclip.model.towers.weights import package_path

        peer_tokenizer = HFTokenizer(str(package_path("package:all-minilm-l6-v2")),
                                     context_length=int(focusclip.get_model_config("clip-lite0-minilm")["text"]
                                                        .get("context_length") or 256))
    batches = make_batches(tokenizer, args.pool, open_clip_tokenizer=peer_tokenizer)
    result: dict[str, Any] = {"date": C.now_utc(), "command": C.command_line("peer_openclip.py", argv),
                              "machine": C.machine_line(C.machine_description("cpu")),
                              "precision": args.precision, "batch": BATCH, "image_size": IMAGE_SIZE,
                              "tokens_per_text_mean": float(batches[0]["text"]["attention_mask"].sum(1).float().mean()),
                              "open_clip_tokens": args.open_clip_tokens,
                              "positions_per_text": {"ours": int(batches[0]["text"]["input_ids"].shape[1]),
                                                     "open_clip": int(batches[0]["open_clip_ids"].shape[1])},
                              "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            entry = {"loss_check": check_losses(recipe, batches, args.check_steps, Path(tmp))}
            entry.update(time_recipe(recipe, batches, args.steps, args.precision, Path(tmp), args.one_piece))
            result["recipes"][recipe] = entry
            print(f"{recipe}: " + ", ".join(f"{k} {v} samples/s" for k, v in entry["samples_per_s"].items())
                  + f" | ours / open_clip {entry['ratio_ours_vs_open_clip']}x | first losses match to 1e-4: "
                  f"{entry['loss_check']['match_1e-4']} (max diff {entry['loss_check']['max_abs_diff']:.2e})",
                  flush=True)
    result["load_after"] = C.load_average()
    print(json.dumps(result, indent=2))
    if args.markdown:
        rows = [[r, e["samples_per_s"]["open_clip"], e["samples_per_s"]["ours"],
                 e["samples_per_s"].get("ours (no cache)", "-"), e["samples_per_s"].get("ours (text in one piece)", "-"),
                 f"{e['ratio_ours_vs_open_clip']}x",
                 "{min}-{max}x".format(**e["ratio_per_round"]),
                 f"{e['loss_check']['max_abs_diff']:.1e}"] for r, e in result["recipes"].items()]
        print(C.markdown_table(["recipe", "open_clip (samples/s)", "ours", "ours, first epoch (no cache)",
                                "ours, text in one piece", "ours / open_clip", "per-round ratio",
                                "first-steps loss diff"], rows))
    return result


if __name__ == "__main__":
    main()

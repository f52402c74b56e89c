"""The training loop: one process on CPU or a GPU, or many through ``torchrun`` (DistributedDataParallel).

Read top to bottom: :func:`train` builds a :class:`Trainer` (model, data, optimizer, optional resume) and
runs :meth:`Trainer.fit`, which for every batch calls :meth:`Trainer.train_step` and, at epoch ends,
validates, runs zero-shot tasks, exports the best model and checkpoints.

Global batch, ranks and accumulation: ``batch_size`` is the global batch. Each of the N ranks loads
``batch_size / N`` samples; the loss gathers the features of all ranks with gradients, so every rank
computes the loss of the whole global batch, and DDP's gradient averaging makes the update equal to one
process on the global batch. With ``accum_steps = M`` each rank splits its batch into M micro-batches
and uses gradient caching (GradCache, Gao et al. 2021): (1) encode every micro-batch without autograd
and keep only the features; (2) compute the contrastive loss on the full batch of cached features and
backpropagate it to the features only; (3) re-encode one micro-batch at a time with autograd (same RNG
state as in step 1, so dropout masks match) and backpropagate the cached feature gradients into the
weights. The update is that of the full batch - every sample keeps all its negatives - while activation
memory is that of one micro-batch, for the price of a second forward pass.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from focusclip.errors import OutputError, RunError, UsageError
from focusclip.io import atomic_write_text
from focusclip.mappings import deep_merge
from focusclip.model.long_text import slice_texts
from focusclip.model.tokenizer import truncation_summary
from focusclip.runtime import autocast, rng_state, seed_everything, set_rng_state, to_device
from focusclip.train import checkpoint as ckpt_io
from focusclip.train.config import (
    ConfigError,
    TrainConfig,
    config_changes,
    dump_config,
    from_dict,
    load_config,
)
from focusclip.train.data import build_dataset, build_loader, start_epoch
from focusclip.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    broadcast_object,
    gather_objects,
    init_distributed,
    teardown_distributed,
)
from focusclip.train.frozen import install_tower_caches, set_train_mode
from focusclip.train.metrics import MetricsLogger, plot_run_losses, truncate_metrics
from focusclip.train.optim import apply_freezing, build_optimizer, lr_at, set_lr
from focusclip.train.precision import bf16_agrees, resolve_precision

logger = logging.getLogger(__name__)

FEATURE_KEYS = ("image_features", "text_features", "roi_features")


class NonFiniteLossError(RunError):
    """The loss (or gradient norm) became NaN or infinite; the run stopped without checkpointing."""


@dataclass
class TrainState:
    epoch: int = 0                 #: the epoch in progress (or the next one to start)
    step: int = 0                  #: optimizer steps done
    batch_in_epoch: int = 0        #: batches of ``epoch`` already consumed
    best_value: float | None = None
    best_step: int | None = None


# ------------------------------------------------------------------------------ entry point
def train(config: TrainConfig | Mapping[str, Any] | str | Path, overrides: Sequence[str] = (),
          allow_config_change: bool = False) -> dict[str, Any]:
    """Train a model (one process, one GPU, or every rank under ``torchrun``).

    Args:
        config: a :class:`TrainConfig`, a dict of its sections or a YAML file (docs/training.md).
        overrides: dotted ``key=value`` settings over the config, e.g. ``["optim.lr=1e-3", "epochs=2"]``.
        allow_config_change: resume although the config differs from the checkpoint's (refused otherwise).

    Returns:
        ``{"run_dir", "step", "epoch", "loss", "val_loss", "zeroshot", "best", "model_final", "model_best",
        "checkpoint", "stopped"}``; ``model_final`` / ``model_best`` are saved model directories
        (:func:`focusclip.load_model`).

    Example::

        from focusclip.train import train

        result = train("configs/synth-focusclip.yaml", ["out_dir=runs/try", "epochs=1"])
        model = focusclip.load_model(result["model_final"])
    """
    cfg = as_config(config, overrides)
    import torch.distributed as dist

    owned = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(cfg.device)
    try:
        return Trainer(cfg, info, allow_config_change=allow_config_change).fit()
    finally:
        if owned and info.distributed:
            teardown_distributed()


def as_config(config: TrainConfig | Mapping[str, Any] | str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    if isinstance(config, TrainConfig):
        cfg = from_dict(config.to_dict())
        return load_config(None, overrides, base=cfg.to_dict())
    if isinstance(config, Mapping):
        return load_config(None, overrides, base=dict(config))
    return load_config(config, overrides)


# ------------------------------------------------------------------------------ the trainer
class Trainer:
    def __init__(self, cfg: TrainConfig, info: DistInfo, allow_config_change: bool = False):
        import focusclip
        from focusclip.loss import FocusCLIPLoss

        self.cfg, self.info = cfg, info
        self.allow_config_change = allow_config_change
        self.run_dir = Path(cfg.out_dir)
        self.device = info.device
        resume = self._find_resume()

        seed_everything(cfg.seed)  # identical initial weights on every rank
        overrides = dict(cfg.model.overrides)
        if cfg.model.long_text:
            overrides = deep_merge(overrides, {"text": {"long_text": cfg.model.long_text}})
        self.model, self.train_tf, self.eval_tf = focusclip.create_model_and_transforms(
            cfg.model.name, pretrained=cfg.model.pretrained, augment=cfg.data.augment, **overrides)
        self.tokenizer = focusclip.get_tokenizer(
            cfg.model.name, context_length=cfg.data.context_length or self.model.config["text"].get("context_length"),
            pad_to_max=cfg.data.pad_to_max, long_text=self.model.config["text"].get("long_text"))
        apply_freezing(self.model, cfg.model, cfg.loss)
        self.model.to(self.device)
        self.channels_last = cfg.channels_last and _has_conv(self.model.visual)
        if self.channels_last:  # oneDNN / cuDNN convolutions run faster on NHWC; the numbers are the same
            self.model.to(memory_format=torch.channels_last)
        self.ddp = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None) \
            if info.distributed else None
        self.loss_fn = FocusCLIPLoss(name=cfg.loss.name, weights=tuple(cfg.loss.weights),
                                     temperature=cfg.loss.temperature)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.precision = resolve_precision(cfg.precision, self.device)
        self._setup_data()
        self.precision_check = self._check_bf16() if cfg.precision == "auto" and self.precision == "bf16" else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.tower_caches = install_tower_caches(self.model, bool(cfg.data.augment), cfg.model.cache_dir,
                                                 extra=self.precision) if cfg.model.cache_frozen else []
        self.state = TrainState()
        if resume is not None:
            self._resume(*resume)
        else:
            seed_everything(cfg.seed + info.rank)  # per-rank randomness (dropout) from here on
        if info.is_main:
            self._write_config(resume)
        self.metrics = MetricsLogger(self.run_dir, enabled=info.is_main, tensorboard=cfg.log.tensorboard)
        if info.is_main and resume is None:
            self._report_text_lengths()
        if info.is_main and self.precision_check is not None:
            self.metrics.log("event", self.state.step, self.state.epoch, precision_check=self.precision_check)
        self.last_ckpt: Path | None = resume[0] if resume is not None else None
        self.results: dict[str, Any] = {"loss": None, "val_loss": None, "zeroshot": None}
        self.eval_images = None  # the zero-shot images, decoded at the first evaluation (EvalImageCache)

    # -------------------------------------------------------------- setup helpers
    def _find_resume(self) -> tuple[Path, dict[str, Any]] | None:
        cfg = self.cfg
        if cfg.resume:
            found = ckpt_io.resolve_resume(cfg.resume, self.run_dir)
            if found is None:
                logger.warning("resume=latest: no checkpoint in %s yet, starting from scratch", self.run_dir)
            return found
        existing = ckpt_io.list_checkpoints(self.run_dir)
        if existing:
            raise OutputError(f"{self.run_dir} already holds checkpoints (newest {existing[-1].name}): continue "
                              "it with --resume latest, or choose another out_dir")
        return None

    def _write_config(self, resume: tuple[Path, dict[str, Any]] | None) -> None:
        """RUN/config.yaml: a resumed run must train what its checkpoint trained; a changed config is refused
        (listing the changes) unless allowed, and then the earlier config.yaml is kept beside the new one."""
        path = self.run_dir / "config.yaml"
        if resume is not None:
            changes = config_changes(resume[1]["config"], self.cfg.to_dict())
            if changes and not self.allow_config_change:
                raise ConfigError(f"resuming {resume[0]} with a different configuration: {'; '.join(changes)}. "
                                  "Resume with the run's own config (RUN/config.yaml), or pass "
                                  "--allow-config-change to continue with the new one")
            if changes:
                logger.warning("resuming with a changed configuration: %s", "; ".join(changes))
                if path.exists():
                    path.replace(self.run_dir / f"config-before-step-{int(resume[1]['step']):08d}.yaml")
        text = dump_config(self.cfg)
        if not (path.exists() and path.read_text(encoding="utf-8") == text):
            atomic_write_text(path, text)

    def _setup_data(self) -> None:
        cfg, info = self.cfg, self.info
        if cfg.batch_size % (info.world_size * cfg.accum_steps):
            raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by world size ({info.world_size}) "
                              f"x accum_steps ({cfg.accum_steps})")
        self.per_rank_batch = cfg.batch_size // info.world_size
        from focusclip.data.dataset import Collator

        collate = Collator(self.tokenizer)
        size = self.model.image_size
        train_ds = build_dataset(cfg.data, "train", self.train_tf, size, cfg.seed)
        self._first_sample = train_ds[0]  # here, before any worker starts: no loadable sample fails clearly
        self._collate = collate
        self.loader, self.sampler = build_loader(train_ds, self.per_rank_batch, info, cfg.seed, True, collate,
                                                 cfg.data.num_workers, drop_last=True)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        if self.steps_per_epoch == 0:
            raise ConfigError(f"the training set ({len(train_ds)} samples) is smaller than one global batch "
                              f"({cfg.batch_size}); lower batch_size")
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        val_ds = build_dataset(cfg.data, "val", self.eval_tf, size, cfg.seed)
        self.val_loader = self.val_sampler = None
        if val_ds is not None:
            eval_batch = max(cfg.eval.batch_size // info.world_size, 1)
            self.val_loader, self.val_sampler = build_loader(
                val_ds, eval_batch, info, cfg.seed, False, collate, cfg.data.num_workers,
                drop_last=len(val_ds) >= eval_batch * info.world_size)
        logger.info("%d steps (%d per epoch), global batch %d = %d rank(s) x %d%s, %s", self.total_steps,
                 self.steps_per_epoch, cfg.batch_size, info.world_size, self.per_rank_batch,
                 f" in {cfg.accum_steps} micro-batches (GradCache)" if cfg.accum_steps > 1 else "",
                 self.precision)

    def _check_bf16(self, n: int = 8) -> dict[str, Any]:
        """``precision=auto`` chose bf16: compare one bf16 and one fp32 step on ``n`` training samples
        (:func:`focusclip.train.precision.bf16_agrees`) and train in fp32 when they disagree."""
        ds = self.loader.dataset
        samples = [self._first_sample]
        if not isinstance(ds, torch.utils.data.IterableDataset):
            samples += [ds[i] for i in range(1, min(n, len(ds)))]
        batch = to_device(self._collate(samples), self.device)
        set_train_mode(self.model)
        ok, report = bf16_agrees(self.model, self.loss_fn, batch, self.device)
        report["kept"] = "bf16" if ok else "fp32"
        detail = ", ".join(f"{k} {v:.4g}" for k, v in report.items() if isinstance(v, float))
        if ok:
            logger.info("precision=auto: bf16 autocast (a bf16 and an fp32 step agree: %s)", detail)
        else:
            logger.warning("precision=auto: a bf16 and an fp32 step disagree beyond the tolerance (%s); "
                           "training in fp32", detail)
            self.precision = "fp32"
        return report

    def _report_text_lengths(self, max_texts: int = 4000) -> None:
        """Log (and write as a metrics event) how much of the training captions the text tower cuts."""
        from focusclip.model.tokenizer import format_length_report

        records = getattr(self.loader.dataset, "records", None)
        if not records:
            return
        texts = [c for r in records for c in (r.get("captions") or []) if isinstance(c, str)][:max_texts]
        if not texts:
            return
        report = self.tokenizer.length_report(texts)
        logger.info("training captions: %s", format_length_report(report))
        self.metrics.log("event", 0, 0, text_lengths=report)

    def _resume(self, path: Path, ckpt: dict[str, Any]) -> None:
        ckpt_io.check_compatible(ckpt, self.model.config, path)
        ckpt_io.load_model_state(self.model, ckpt["model"], path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as e:
            raise ckpt_io.CheckpointError(f"{path}: optimizer state does not fit this run's optimizer "
                                          f"(trainable parameters or optim.name changed?): {e}") from None
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        s = ckpt
        self.state = TrainState(epoch=int(s["epoch"]), step=int(s["step"]), batch_in_epoch=int(s["batch_in_epoch"]),
                                best_value=s.get("best", {}).get("value"), best_step=s.get("best", {}).get("step"))
        rngs = ckpt.get("rng") or []
        if len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank])
        else:
            logger.warning("%s was written by %d rank(s), this run has %d: RNG states not restored", path,
                        len(rngs), self.info.world_size)
            seed_everything(self.cfg.seed + self.info.rank + 7919 * self.state.step)
        if self.info.is_main:
            truncate_metrics(self.run_dir, self.state.step)
        logger.info("resumed from %s: epoch %d, step %d (batch %d of the epoch)", path, self.state.epoch,
                 self.state.step, self.state.batch_in_epoch)

    # -------------------------------------------------------------- the loop
    def fit(self) -> dict[str, Any]:
        from focusclip.progress import Progress

        cfg, st = self.cfg, self.state
        progress = Progress(self.total_steps, cfg.name, unit="step", every=cfg.log.every_seconds,
                            disable=not self.info.is_main, initial=st.step)
        steps_this_run, stopped = 0, "finished"
        window_t, window_steps = time.monotonic(), 0
        texts, truncated = 0, 0
        try:
            while st.step < self.total_steps:
                start_epoch(self.loader, self.sampler, st.epoch, cfg.seed, skip_batches=st.batch_in_epoch)
                set_train_mode(self.model)
                for batch in self.loader:
                    texts += len(batch["id"])
                    truncated += int(batch.get("truncated", 0))
                    losses, grad_norm, lr = self.train_step(batch)
                    st.step += 1
                    st.batch_in_epoch += 1
                    steps_this_run += 1
                    window_steps += 1
                    row = {k: float(v) for k, v in losses.items()}
                    row.update(lr=lr, grad_norm=grad_norm)
                    row.update({k: float(v) for k, v in self.model.focus_summary().items()})
                    self.results["loss"] = row["loss"]
                    if st.step % cfg.log.every_steps == 0 or st.step == 1 or st.step == self.total_steps:
                        now = time.monotonic()
                        row["samples_per_s"] = round(window_steps * cfg.batch_size / max(now - window_t, 1e-9), 2)
                        window_t, window_steps = now, 0
                        self.metrics.log("train", st.step, st.epoch, **row)
                    progress.update(1, **{k: row[k] for k in row if k not in ("grad_norm",)})
                    epoch_done = st.batch_in_epoch >= self.steps_per_epoch
                    if cfg.checkpoint.every_steps and st.step % cfg.checkpoint.every_steps == 0 and not epoch_done:
                        self.save()
                    if st.step >= self.total_steps or epoch_done:
                        break
                    if cfg.stop_after_steps and steps_this_run >= cfg.stop_after_steps:
                        break
                if st.batch_in_epoch >= self.steps_per_epoch:
                    self.end_of_epoch()
                if cfg.stop_after_steps and steps_this_run >= cfg.stop_after_steps and st.step < self.total_steps:
                    stopped = "stop_after_steps"
                    break
            if st.step >= self.total_steps and st.batch_in_epoch:  # ended mid-epoch (max_steps)
                self.evaluate(force=True)
            if self.last_ckpt is None or _ckpt_step(self.last_ckpt) != st.step:
                self.save()
            if stopped == "finished":
                self.export("model-final")
        finally:
            progress.close()
            self.metrics.close()
            self._close_caches()
            self._report_truncation(texts, truncated)
            if self.info.is_main and cfg.log.plot:
                try:
                    plot_run_losses(self.run_dir)
                except Exception as e:  # noqa: BLE001 - a plot must never hide the run's outcome
                    logger.warning("loss-curve plot failed: %s", e)
        return self.summary(stopped)

    def _close_caches(self) -> None:
        for cache in self.tower_caches:
            if self.info.is_main:
                cache.save()
            logger.info("frozen %s tower: %d inputs served from the cache, %d computed", cache.kind, cache.hits,
                        cache.misses)

    def _report_truncation(self, texts: int, truncated: int) -> None:
        """One warning for the whole run: how many training texts were cut at the context length."""
        if self.info.distributed:
            texts = round(all_reduce_mean(float(texts), self.info) * self.info.world_size)
            truncated = round(all_reduce_mean(float(truncated), self.info) * self.info.world_size)
        note = truncation_summary(truncated, texts, self.tokenizer.context_length, "training texts")
        if note and self.info.is_main:
            logger.warning("%s (raise data.context_length or shorten the captions)", note)

    def train_step(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], float, float]:
        """One optimizer step on one (per-rank) batch; returns the loss terms, the grad norm and the lr."""
        cfg, st = self.cfg, self.state
        lr = lr_at(st.step, self.total_steps, cfg.optim)
        set_lr(self.optimizer, lr)
        batch = to_device(batch, self.device)
        if self.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        if cfg.accum_steps == 1:
            with self._autocast():
                out = (self.ddp or self.model)(batch["image"], batch["text"], batch["heatmap"])
            losses = self.loss_fn(out)
            self._check_finite(losses)
            self.scaler.scale(losses["loss"]).backward()
        else:
            losses = self._gradcache_backward(_split(batch, cfg.accum_steps))
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.requires_grad]
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        if not math.isfinite(grad_norm) and self.precision != "fp16":
            raise NonFiniteLossError(f"non-finite gradient norm ({grad_norm}) at step {st.step + 1} "
                                     f"(loss {float(losses['loss']):.4g}); the run stopped, the last checkpoint "
                                     f"({self.last_ckpt}) is untouched. Lower optim.lr or use precision=fp32.")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return {k: v.detach() for k, v in losses.items()}, grad_norm, lr

    def _gradcache_backward(self, micro: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Full-batch contrastive gradients with one micro-batch in autograd at a time (module docstring)."""
        # (1) features of every micro-batch without autograd; remember the RNG state for the replay
        cached, rng = [], []
        with torch.no_grad():
            for mb in micro:
                rng.append(rng_state())
                with self._autocast():
                    out = self.model(mb["image"], mb["text"], mb["heatmap"])
                cached.append(out)
        keys = [k for k in FEATURE_KEYS if k in cached[0]]
        full = {k: torch.cat([c[k] for c in cached]).detach().requires_grad_() for k in keys}
        scale_trains = self.model.logit_scale.requires_grad
        full["logit_scale"] = cached[0]["logit_scale"].detach().requires_grad_(scale_trains)
        # (2) the loss of the full batch, backpropagated to the cached features
        losses = self.loss_fn(full)
        self._check_finite(losses)
        self.scaler.scale(losses["loss"]).backward()
        # (3) replay each micro-batch with autograd and push the cached gradients into the weights
        model = self.ddp or self.model
        start = 0
        for i, mb in enumerate(micro):
            n = mb["image"].shape[0]
            last = i == len(micro) - 1
            sync = contextlib.nullcontext() if (last or self.ddp is None) else self.ddp.no_sync()
            with sync:
                set_rng_state(rng[i])
                with self._autocast():
                    out = model(mb["image"], mb["text"], mb["heatmap"])
                tensors = [out[k] for k in keys]
                grads = [full[k].grad[start:start + n] for k in keys]
                if scale_trains:
                    tensors.append(out["logit_scale"])
                    g = full["logit_scale"].grad
                    grads.append(g if i == 0 else torch.zeros_like(g))
                torch.autograd.backward(tensors, grads)
            start += n
        return losses

    def _check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in losses.items() if not bool(torch.isfinite(v.detach()).all())]
        if bad:
            values = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {self.state.step + 1} (epoch {self.state.epoch}): bad terms "
                f"{', '.join(bad)} ({values}). The run stopped; the last checkpoint "
                f"({self.last_ckpt or 'none written'}) is untouched. Lower optim.lr, check the data, or use "
                "precision=fp32.")

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.precision)

    # -------------------------------------------------------------- epoch ends, evaluation
    def end_of_epoch(self) -> None:
        st, cfg = self.state, self.cfg
        finished_epoch = st.epoch
        st.epoch += 1
        st.batch_in_epoch = 0
        self.evaluate(epoch=finished_epoch)
        last = st.step >= self.total_steps
        due_epoch = cfg.checkpoint.every_epochs and (st.epoch % cfg.checkpoint.every_epochs == 0 or last)
        due_step = cfg.checkpoint.every_steps and st.step % cfg.checkpoint.every_steps == 0  # left to us
        if due_epoch or due_step:
            self.save()

    def evaluate(self, epoch: int | None = None, force: bool = False) -> None:
        """Validation loss and zero-shot tasks when due (``force``: now), then the best-model export."""
        cfg, st = self.cfg, self.state
        n_epoch = (epoch if epoch is not None else st.epoch) + 1

        def due(every: int) -> bool:
            return force or (every > 0 and (n_epoch % every == 0 or st.step >= self.total_steps))

        saved = rng_state()  # evaluation never changes the training randomness
        if self.val_loader is not None and due(cfg.eval.val_every_epochs):
            val = self.validate()
            self.results["val_loss"] = val["loss"]
            self.metrics.log("val", st.step, st.epoch, **val)
            logger.info("step %d: val loss %.4f", st.step, val["loss"])
            if cfg.checkpoint.best_metric == "val_loss":
                self._maybe_best(-val["loss"], val["loss"])
        if cfg.eval.tasks and due(cfg.eval.every_epochs):
            scores = self.zeroshot()
            if scores is not None:
                self.results["zeroshot"] = scores
                if cfg.checkpoint.best_metric == "zeroshot" and scores.get("mean") is not None:
                    self._maybe_best(scores["mean"], scores["mean"])
        set_rng_state(saved)
        set_train_mode(self.model)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        batches = 0
        self.val_sampler.set_epoch(0)
        for batch in self.val_loader:
            batch = to_device(batch, self.device)
            with self._autocast():
                out = self.model(batch["image"], batch["text"], batch["heatmap"])
            for k, v in self.loss_fn(out).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            batches += 1
        return {k: all_reduce_mean(v / max(batches, 1), self.info) * 1.0 for k, v in sums.items()}

    def zeroshot(self) -> dict[str, float] | None:
        """Zero-shot accuracy of the configured tasks (main rank), broadcast to every rank."""
        st = self.state
        scores = None
        if self.info.is_main:
            scores = self._zeroshot_main()
            if scores is not None:
                self.metrics.log("zeroshot", st.step, st.epoch, **scores)
        scores = broadcast_object(scores, self.info)
        barrier(self.info)
        return scores  # type: ignore[return-value]

    def _zeroshot_main(self) -> dict[str, float] | None:
        cfg, st = self.cfg, self.state
        try:
            from focusclip.zeroshot import evaluate, resolve_tasks
            from focusclip.zeroshot.image_cache import EvalImageCache
        except ImportError as e:
            logger.warning("zero-shot evaluation unavailable (%s); skipped", e)
            return None
        if not cfg.eval.data_root:
            raise UsageError("config eval.tasks is set but eval.data_root is not")
        model_id = f"step-{st.step}"
        self.eval_images = self.eval_images or EvalImageCache()
        tasks = resolve_tasks(list(cfg.eval.tasks))
        res = evaluate(self.model, self.tokenizer, self.eval_tf, tasks, cfg.eval.data_root,
                       batch_size=cfg.eval.batch_size, workers=0, device=self.device,
                       out=self.run_dir / "zeroshot.json", model_id=model_id, model_name=cfg.name,
                       confusion=False, image_cache=self.eval_images)
        scores = {key.rsplit("@", 1)[0]: float(e["metrics"]["acc"])
                  for key, e in res["results"].items() if key.endswith("@" + model_id)}
        if scores:
            scores["mean"] = sum(scores.values()) / len(scores)
            logger.info("step %d: zero-shot %s", st.step, ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        return scores or None

    def _maybe_best(self, score: float, value: float) -> None:
        st = self.state
        if st.best_value is None or score > (-st.best_value if self.cfg.checkpoint.best_metric == "val_loss"
                                             else st.best_value):
            st.best_value, st.best_step = value, st.step
            self.export("model-best")
            self.metrics.log("event", st.step, st.epoch, best=self.cfg.checkpoint.best_metric, value=value)

    # -------------------------------------------------------------- checkpoints and exports
    def save(self) -> Path | None:
        st = self.state
        rngs = gather_objects(rng_state(), self.info)
        path = None
        if self.info.is_main:
            state = {
                "config": self.cfg.to_dict(), "model_config": self.model.config,
                "epoch": st.epoch, "step": st.step, "batch_in_epoch": st.batch_in_epoch,
                "best": {"metric": self.cfg.checkpoint.best_metric, "value": st.best_value, "step": st.best_step},
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "schedule": {"name": self.cfg.optim.schedule, "step": st.step, "total_steps": self.total_steps},
                "world_size": self.info.world_size, "rng": rngs,
            }
            path = ckpt_io.save_checkpoint(self.run_dir, state, self.cfg.checkpoint.keep)
        path = broadcast_object(path, self.info)
        self.last_ckpt = path  # type: ignore[assignment]
        return path  # type: ignore[return-value]

    def export(self, name: str) -> None:
        if self.info.is_main:
            from focusclip import save_model

            save_model(self.model, self.run_dir / name, self.tokenizer,
                       extra={"training": {"run": self.cfg.name, "step": self.state.step, "epoch": self.state.epoch}})
            logger.info("exported %s at step %d", self.run_dir / name, self.state.step)
        barrier(self.info)

    def summary(self, stopped: str) -> dict[str, Any]:
        st = self.state
        best_dir = self.run_dir / "model-best"
        final_dir = self.run_dir / "model-final"
        return {"run_dir": str(self.run_dir), "step": st.step, "epoch": st.epoch, **self.results,
                "best": {"metric": self.cfg.checkpoint.best_metric, "value": st.best_value, "step": st.best_step},
                "model_final": str(final_dir) if final_dir.is_dir() else None,
                "model_best": str(best_dir) if best_dir.is_dir() else None,
                "checkpoint": str(self.last_ckpt) if self.last_ckpt else None, "stopped": stopped}


# ------------------------------------------------------------------------------ helpers
def _has_conv(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1) and m.groups == 1
               for m in module.modules()) and not any("Attention" in type(m).__name__ for m in module.modules())


def _split(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """Split a batch into ``parts`` micro-batches along the sample dimension."""
    n = batch["image"].shape[0]
    if n % parts:
        raise UsageError(f"per-rank batch {n} is not divisible by accum_steps {parts}")
    size = n // parts
    out = []
    for i in range(parts):
        sl = slice(i * size, (i + 1) * size)
        out.append({"image": batch["image"][sl], "heatmap": batch["heatmap"][sl],
                    "text": slice_texts(batch["text"], sl.start, sl.stop)})
    return out


def _ckpt_step(path: Path) -> int:
    try:
        return int(Path(path).stem.split("-")[1])
    except (IndexError, ValueError):
        return -1

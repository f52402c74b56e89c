"""The training loop on small generated data: loss falls, GradCache accumulation equals the full batch,
kill-and-resume is exact, NaN stops the run, bad checkpoints are refused, exports load, zero-shot runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import focusclip
from focus_arms import MODE_OVERRIDES, with_mode
from focusclip.errors import OutputError
from focusclip.train import NonFiniteLossError, train
from focusclip.train import checkpoint as ckpt_io
from focusclip.train.checkpoint import CheckpointError
from focusclip.train.metrics import read_metrics

NO_DROPOUT = {"text": {"hf_config": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}}
COLOURS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 210, 40)]
WORDS = ["running with both arms swinging", "sitting on the ground", "waving the right hand high",
         "jumping with legs bent"]


def _write_records(root: Path, n: int = 16, size: int = 48) -> Path:
    """Records JSONL + JPEGs in the records layout: one person, 16 joints, two captions per image."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        c = i % len(COLOURS)
        arr = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        x0 = 8 + 4 * (i % 3)
        arr[8:40, x0:x0 + 20] = COLOURS[c]
        Image.fromarray(arr).save(root / "images" / f"{i:03d}.jpg", quality=95)
        joints = [[float(x0 + 2 + (j % 4) * 5), float(10 + j * 1.8)] for j in range(16)]
        lines.append({"image": f"images/{i:03d}.jpg", "width": size, "height": size, "split": "train",
                      "people": [{"joints": joints, "visible": [1] * 16}],
                      "captions": [f"a person {WORDS[c]}", f"someone is {WORDS[c]}"], "id": f"r{i}"})
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _fake_cfg(out: Path, **over) -> dict:
    cfg = {"out_dir": str(out), "seed": 3, "batch_size": 8, "data": {"format": "fake", "fake_size": 24},
           "log": {"every_steps": 1, "plot": False, "tensorboard": False},
           "optim": {"name": "sgd", "lr": 0.05}}
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run, "train")}


def _set_loss(model, tokenizer, tf, records_path: Path) -> float:
    from focusclip.data.dataset import Collator, FocusDataset
    from focusclip.loss import FocusCLIPLoss

    ds = FocusDataset(records_path, transform=tf, captions="first")
    batch = Collator(tokenizer)([ds[i] for i in range(len(ds))])
    model.eval()
    with torch.no_grad():
        return float(FocusCLIPLoss()(model(batch["image"], batch["text"], batch["heatmap"]))["loss"])


def test_loss_falls_and_exports_load(tmp_path):
    records = _write_records(tmp_path / "data")
    val = records.with_name("val.jsonl")  # the same images, as validation rows
    val.write_text(records.read_text().replace('"split": "train"', '"split": "val"'))
    run = tmp_path / "run"
    result = train({"out_dir": str(run), "seed": 1, "epochs": 8, "batch_size": 8,
                    "data": {"train": str(records), "val": str(val), "heatmap": "parts"},
                    "model": {"name": "focusclip-tiny"},
                    "optim": {"name": "adamw", "lr": 2e-3, "schedule": "cosine", "warmup_steps": 2},
                    "eval": {"val_every_epochs": 4}, "log": {"every_steps": 1, "tensorboard": False}})
    assert result["stopped"] == "finished" and result["step"] == 16 and result["epoch"] == 8
    # the model before training (same seed -> same init) vs the exported final model, on a fixed set
    torch.manual_seed(1)
    init, _, tf = focusclip.create_model_and_transforms("focusclip-tiny")
    tok = focusclip.get_tokenizer("focusclip-tiny")
    final = focusclip.load_model(result["model_final"])
    before, after = _set_loss(init, tok, tf, records), _set_loss(final, tok, tf, records)
    assert after < before - 1.0, (before, after)
    # the export equals the last checkpoint's weights
    ck = ckpt_io.load_checkpoint(result["checkpoint"])
    for k, v in final.state_dict().items():
        torch.testing.assert_close(v, ck["model"][k])
    assert focusclip.load_model(result["model_best"]) is not None
    # observability: every term, lr, alpha, throughput; val per epoch; loss-curve PNG; resolved config
    rows = read_metrics(run, "train")
    assert {"loss", "img_txt", "roi_img", "roi_txt", "lr", "alpha", "samples_per_s", "grad_norm"} <= set(rows[0])
    assert rows[0]["lr"] == pytest.approx(1e-3)  # warm-up step 1 of 2
    assert [r["epoch"] for r in read_metrics(run, "val")] == [4, 8]
    assert (run / "loss_curves.png").stat().st_size > 1000
    assert "heatmap: parts" in (run / "config.yaml").read_text()
    assert len(ckpt_io.list_checkpoints(run)) == 3  # checkpoint.keep default
    with pytest.raises(OutputError, match="already holds checkpoints"):
        train({"out_dir": str(run), "data": {"train": str(records)}})


@pytest.mark.parametrize("mode", list(MODE_OVERRIDES))
def test_gradcache_accumulation_equals_full_batch(tmp_path, mode):
    overrides = with_mode(mode, NO_DROPOUT)
    common = {"max_steps": 1, "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.0, "grad_clip": 0.0},
              "model": {"name": "focusclip-tiny", "overrides": overrides}}
    full = train(_fake_cfg(tmp_path / "full", **common))
    acc = train(_fake_cfg(tmp_path / "acc", accum_steps=4, **common))
    torch.manual_seed(3)
    init = focusclip.create_model("focusclip-tiny", **overrides).state_dict()
    a = focusclip.load_model(full["model_final"]).state_dict()
    b = focusclip.load_model(acc["model_final"]).state_dict()
    moved = max(float((a[k] - init[k]).abs().max()) for k in a)
    assert moved > 1e-3  # the step did something
    focus_keys = [k for k in a if k.startswith("focus.")]
    assert focus_keys and all(float((a[k] - init[k]).abs().max()) > 0 for k in focus_keys)  # the mechanism learns
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=k)
    assert _losses(tmp_path / "acc")[1] == pytest.approx(_losses(tmp_path / "full")[1], abs=1e-5)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("mode", list(MODE_OVERRIDES))
def test_kill_and_resume_is_exact(tmp_path, monkeypatch, mode):
    # 24 samples / batch 8 = 3 steps per epoch; 7 steps end mid-epoch; dropout stays on (RNG restore)
    over = {"max_steps": 7, "checkpoint": {"every_steps": 2, "keep": 2},
            "model": {"name": "focusclip-tiny", "overrides": MODE_OVERRIDES[mode]}}
    train(_fake_cfg(tmp_path / "a", **over))
    ref = _losses(tmp_path / "a")

    real_save = ckpt_io.save_checkpoint

    def save_then_die(run_dir, state, keep):
        path = real_save(run_dir, state, keep)
        if state["step"] == 4:  # mid-epoch (epoch 1, batch 1)
            raise _Killed
        return path

    monkeypatch.setattr(ckpt_io, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        train(_fake_cfg(tmp_path / "b", **over))
    monkeypatch.setattr(ckpt_io, "save_checkpoint", real_save)
    ck = ckpt_io.load_checkpoint(ckpt_io.list_checkpoints(tmp_path / "b")[-1])
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (4, 1, 1)

    result = train(_fake_cfg(tmp_path / "b", resume="latest", **over))
    assert result["step"] == 7
    got = _losses(tmp_path / "b")
    assert sorted(got) == list(range(1, 8))  # nothing logged twice, nothing missing
    for step in range(1, 8):
        assert got[step] == pytest.approx(ref[step], abs=1e-6), step
    assert len(ckpt_io.list_checkpoints(tmp_path / "b")) == 2


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from focusclip.loss import FocusCLIPLoss

    calls = {"n": 0}
    real_forward = FocusCLIPLoss.forward

    def nan_on_third(self, outputs):
        out = real_forward(self, outputs)
        calls["n"] += 1
        if calls["n"] == 3:
            out["roi_txt"] = out["roi_txt"] * float("nan")
            out["loss"] = out["loss"] + out["roi_txt"]
        return out

    monkeypatch.setattr(FocusCLIPLoss, "forward", nan_on_third)
    run = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 3 .*bad terms loss, roi_txt"):
        train(_fake_cfg(run, data={"fake_size": 32}, checkpoint={"every_steps": 2}))
    ckpts = ckpt_io.list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step-00000002.pt"]
    assert ckpt_io.load_checkpoint(ckpts[0])["step"] == 2
    assert max(_losses(run)) == 2  # the bad step was not logged as a train step


def test_damaged_and_incompatible_checkpoints_are_refused(tmp_path):
    run = tmp_path / "r"
    train(_fake_cfg(run, max_steps=4, checkpoint={"every_steps": 2, "every_epochs": 0}))
    good = ckpt_io.list_checkpoints(run)
    assert [p.name for p in good] == ["step-00000002.pt", "step-00000004.pt"]
    # an incompatible model
    with pytest.raises(CheckpointError, match=r"different model.*roi.enabled"):
        train(_fake_cfg(run, max_steps=6, resume="latest", model={"name": "clip-tiny"}))
    # a damaged file given explicitly is refused; "latest" falls back to the newest readable one
    data = good[-1].read_bytes()
    good[-1].write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="damaged or unreadable"):
        train(_fake_cfg(run, max_steps=6, resume=str(good[-1])))
    assert ckpt_io.resolve_resume("latest", run)[0] == good[0]
    # not a checkpoint at all
    other = tmp_path / "other.pt"
    torch.save({"hello": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not a focusclip training checkpoint"):
        ckpt_io.load_checkpoint(other)


def test_freezing_and_zero_shot_during_training(tmp_path):
    from focusclip.data.synthetic import generate_world

    generate_world(tmp_path / "synthetic", n=4, seed=0, image_size=64, eval_n=12, show_progress=False)
    run = tmp_path / "zs"
    result = train(_fake_cfg(run, max_steps=2, model={"lock_image": True, "lock_image_unlocked_groups": 1},
                             eval={"tasks": ["synth-activity"], "data_root": str(tmp_path)},
                             checkpoint={"best_metric": "zeroshot"}))
    assert "synth-activity" in result["zeroshot"] and result["best"]["metric"] == "zeroshot"
    assert result["model_best"] is not None
    rows = read_metrics(run, "zeroshot")
    assert rows and rows[-1]["step"] == 2
    # the logged score is the step-2 model's zero-shot accuracy: evaluate the exported model independently
    from focusclip.zeroshot import evaluate, resolve_tasks

    final_model = focusclip.load_model(result["model_final"])
    again = evaluate(final_model, focusclip.get_tokenizer(result["model_final"]),
                     focusclip.eval_transform(final_model), resolve_tasks(["synth-activity"]), tmp_path,
                     workers=0, device="cpu")
    acc = next(e["metrics"]["acc"] for e in again["results"].values())
    assert rows[-1]["synth-activity"] == pytest.approx(acc) and rows[-1]["mean"] == pytest.approx(acc)
    # the locked part of the vision tower did not move, the unlocked last group did
    torch.manual_seed(3)
    init = focusclip.create_model("focusclip-tiny").state_dict()
    final = focusclip.load_model(result["model_final"]).state_dict()
    assert torch.equal(init["visual.trunk.patch_embed.proj.weight"], final["visual.trunk.patch_embed.proj.weight"])
    assert not torch.equal(init["visual_proj.weight"], final["visual_proj.weight"])
    trunk = focusclip.create_model("focusclip-tiny").visual.trunk
    from focusclip.model.towers.base import layer_groups

    groups = layer_groups(trunk)
    names = {id(p): n for n, p in trunk.named_parameters()}
    last = [names[id(p)] for p in groups[-1].parameters()]
    before_last = [names[id(p)] for p in groups[-2].parameters()]
    assert last and before_last
    assert any(not torch.equal(init[f"visual.trunk.{n}"], final[f"visual.trunk.{n}"]) for n in last)
    assert all(torch.equal(init[f"visual.trunk.{n}"], final[f"visual.trunk.{n}"]) for n in before_last)


def test_step_checkpoint_on_an_epoch_boundary_is_written(tmp_path):
    """every_steps=3 with 3 steps per epoch: step 3 ends an epoch where no epoch checkpoint is due."""
    from focusclip.train.checkpoint import list_checkpoints

    run = tmp_path / "ck"
    train(_fake_cfg(run, max_steps=5, checkpoint={"every_steps": 3, "every_epochs": 2}))
    assert [p.name for p in list_checkpoints(run)] == ["step-00000003.pt", "step-00000005.pt"]


@pytest.mark.parametrize("lock_image", [False, True], ids=["text-frozen", "both-frozen"])
def test_frozen_tower_cache_gives_the_uncached_losses(tmp_path, caplog, lock_image):
    records = _write_records(tmp_path / "data")
    common = {"epochs": 3, "batch_size": 8, "seed": 5, "data": {"train": str(records), "heatmap": "parts"},
              "optim": {"name": "adamw", "lr": 2e-3}, "log": {"every_steps": 1, "plot": False,
                                                              "tensorboard": False}}
    model = {"name": "focusclip-tiny", "lock_text": True, "lock_image": lock_image}
    train({**common, "out_dir": str(tmp_path / "plain"), "model": {**model, "cache_frozen": False}})
    cache_dir = tmp_path / "cache"
    with caplog.at_level("INFO", logger="focusclip.train"):
        train({**common, "out_dir": str(tmp_path / "cached"), "model": {**model, "cache_dir": str(cache_dir)}})
    plain, cached = _losses(tmp_path / "plain"), _losses(tmp_path / "cached")
    assert len(plain) == 6
    for step in plain:
        assert cached[step] == pytest.approx(plain[step], abs=1e-6), step
    served = [r.getMessage() for r in caplog.records if "served from the cache" in r.getMessage()]
    assert len(served) == 1 + lock_image
    assert all(int(m.split(": ")[1].split()[0]) > 0 for m in served)  # later epochs never ran the tower
    files = sorted(p.name.split("-")[0] for p in cache_dir.glob("*.pt"))
    assert files == (["text", "visual"] if lock_image else ["text"])
    # a second run reads the disk cache: the same losses, the tower never runs
    caplog.clear()
    with caplog.at_level("INFO", logger="focusclip.train"):
        train({**common, "out_dir": str(tmp_path / "again"), "model": {**model, "cache_dir": str(cache_dir)}})
    again = _losses(tmp_path / "again")
    assert all(again[s] == pytest.approx(plain[s], abs=1e-6) for s in plain)
    assert any(" 0 computed" in r.getMessage() for r in caplog.records if "text tower" in r.getMessage())


def test_precision_auto_checks_bf16_and_falls_back(tmp_path, monkeypatch, caplog):
    from focusclip.train import precision as prec

    flags = tmp_path / "cpuinfo"
    flags.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert not prec.cpu_has_bf16(flags)
    flags.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512_bf16 amx_bf16\n")
    assert prec.cpu_has_bf16(flags)
    cpu = torch.device("cpu")
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: False)
    assert prec.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: True)
    assert prec.resolve_precision("auto", cpu) == "bf16" and prec.resolve_precision("fp16", cpu) == "fp32"
    # a run with auto: the check agrees -> bf16, logged as an event; the weights before training untouched
    over = {"max_steps": 2, "precision": "auto"}
    with caplog.at_level("INFO", logger="focusclip.train"):
        train(_fake_cfg(tmp_path / "auto", **over))
    (event,) = [r for r in read_metrics(tmp_path / "auto", "event") if "precision_check" in r]
    check = event["precision_check"]
    assert check["kept"] == "bf16" and check["loss_rel_diff"] <= prec.LOSS_RTOL
    assert check["grad_cosine"] >= prec.GRAD_MIN_COSINE
    assert any("precision=auto: bf16" in r.getMessage() for r in caplog.records)
    # the check leaves no trace: the same run in fp32 and with a check that always passes start equally
    monkeypatch.setattr(prec, "LOSS_RTOL", -1.0)  # nothing agrees now: fall back to fp32
    with caplog.at_level("WARNING", logger="focusclip.train"):
        train(_fake_cfg(tmp_path / "fallback", **over))
    train(_fake_cfg(tmp_path / "fp32", max_steps=2))
    assert any("training in fp32" in r.getMessage() for r in caplog.records)
    assert _losses(tmp_path / "fallback") == _losses(tmp_path / "fp32")

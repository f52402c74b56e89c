"""Two CPU processes (torchrun, gloo) follow the same loss trajectory as one process on the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from focus_arms import MODE_OVERRIDES, with_mode
from focusclip.train import train
from focusclip.train.metrics import read_metrics

SRC = Path(__file__).resolve().parents[1] / "src"
NO_DROPOUT = {"text": {"hf_config": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}}


def _cfg(out: Path, accum: int, mode: str = "highlight") -> dict:
    return {"out_dir": str(out), "seed": 5, "batch_size": 8, "max_steps": 3, "accum_steps": accum,
            "data": {"format": "fake", "fake_size": 16},
            "model": {"name": "focusclip-tiny", "overrides": with_mode(mode, NO_DROPOUT)},
            "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            "eval": {"val_every_epochs": 0},
            "log": {"every_steps": 1, "plot": False, "tensorboard": False}}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODE_OVERRIDES))
def test_two_process_gloo_matches_one_process(tmp_path, mode):
    # one process, global batch 8 in one piece
    train(_cfg(tmp_path / "one", accum=1, mode=mode))
    ref = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "one", "train")}
    # two processes x 4 samples, each rank in 2 micro-batches of 2 (GradCache + DDP no_sync)
    cfg_file = tmp_path / "two.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(tmp_path / "two", accum=2, mode=mode)))
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "focusclip.cli", "-q", "train", "--config", str(cfg_file)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "two", "train")}
    assert sorted(got) == sorted(ref) == [1, 2, 3]
    for step in ref:
        assert got[step] == pytest.approx(ref[step], abs=1e-5), (step, got, ref)
    assert ref[3] != pytest.approx(ref[1], abs=1e-4)  # the weights moved between steps

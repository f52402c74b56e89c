"""Shared fixtures. Tests build all their data themselves, in tmp_path."""

from __future__ import annotations

import copy
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def _tiny_focus_once():
    import focusclip

    torch.manual_seed(0)
    model, train_tf, eval_tf = focusclip.create_model_and_transforms("focusclip-tiny")
    return model, train_tf, eval_tf, focusclip.get_tokenizer("focusclip-tiny")


@pytest.fixture
def tiny_focus(_tiny_focus_once):
    """A random-init tiny FocusCLIP (its own copy per test: tests may change its mode or weights) with its
    transforms and tokenizer."""
    model, train_tf, eval_tf, tokenizer = _tiny_focus_once
    return copy.deepcopy(model), train_tf, eval_tf, tokenizer


@pytest.fixture(scope="session")
def open_clip_dir(tmp_path_factory):
    """A tiny open_clip checkpoint in open_clip's local-dir layout (what hf-hub: downloads)."""
    from clip_checkpoints import write_open_clip_dir

    return write_open_clip_dir(tmp_path_factory.mktemp("open_clip") / "tiny")


@pytest.fixture(scope="session")
def hf_clip_dir(tmp_path_factory):
    """A tiny transformers CLIPModel folder (save_pretrained) with its tokenizer and image processor."""
    from clip_checkpoints import write_hf_clip_dir

    return write_hf_clip_dir(tmp_path_factory.mktemp("hf_clip") / "tiny")

"""Sites for the `focusclip serve` tests: a models root laid out as `make demo` leaves it (tiny random
models), photos, and a server on 127.0.0.1 with an HTTP client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import numpy as np
import torch
from PIL import Image

import focusclip
from focusclip.serve.app import BackgroundServer, ServeConfig, create_app

FOCUS_ID = "demo/runs/focusclip-seed0/model-final"
CLIP_ID = "demo/runs/clip-seed0/model-final"
ATTENTION_ID = "ablate/runs/attention-seed0/model-final"  #: a model whose focus works at inference


def make_models_root(root):
    """A models root as `make demo` leaves it, with tiny random models instead of the trained ones."""
    for arch, rel, seed in (("focusclip-tiny", FOCUS_ID, 3), ("clip-tiny", CLIP_ID, 4)):
        torch.manual_seed(seed)
        focusclip.save_model(focusclip.create_model(arch), root / rel, focusclip.get_tokenizer(arch))
    (root / "demo/runs/focusclip-seed0/checkpoints").mkdir()
    return root


def add_attention_model(root):
    """An ``roi.mode: attention`` tiny model under ``root`` as `focusclip ablate` leaves it."""
    torch.manual_seed(5)
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "strength_init": 2.0})
    focusclip.save_model(model, root / ATTENTION_ID, focusclip.get_tokenizer("focusclip-tiny"))
    return root


def write_photos(folder, n: int = 2, seed: int = 0) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"photo{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (90 + 10 * i, 80, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


@contextlib.contextmanager
def serving(**config) -> Iterator[tuple[BackgroundServer, httpx.Client]]:
    """The app of ``ServeConfig(**config)`` on 127.0.0.1 (a free port) and an HTTP client for it."""
    server = BackgroundServer(create_app(ServeConfig(device="cpu", **config)))
    with server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield server, client

"""Tiny CLIP checkpoints written the way the libraries write them, for tests (no network): an open_clip
``local-dir`` folder, an open_clip architecture registered with ``open_clip.add_model_config`` plus a
checkpoint file, and a Hugging Face ``save_pretrained`` folder with a CLIP tokenizer built from the BPE
vocabulary that ships inside open_clip."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_OPEN_CLIP = {
    "embed_dim": 32, "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_PREPROCESS = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "interpolation": "bicubic",
                   "resize_mode": "shortest"}


def write_open_clip_dir(folder: Path, seed: int = 0, model_cfg: dict | None = None) -> Path:
    """open_clip's own folder layout (what ``hf-hub:`` downloads): open_clip_config.json + weights."""
    import open_clip
    from safetensors.torch import save_file

    cfg = model_cfg or TINY_OPEN_CLIP
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": TINY_PREPROCESS}))
    return folder


def register_open_clip_arch(folder: Path, name: str, model_cfg: dict | None = None, seed: int = 0) -> Path:
    """Register ``name`` with open_clip (as a built-in architecture) and write a checkpoint file of it."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(model_cfg or TINY_OPEN_CLIP))
    open_clip.add_model_config(folder / f"{name}.json")
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    path = folder / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return path


def write_clip_tokenizer(folder: Path) -> Path:
    """A Hugging Face CLIP tokenizer with OpenAI's BPE vocabulary (taken from open_clip's package)."""
    import open_clip
    from transformers import CLIPTokenizer

    st = open_clip.SimpleTokenizer()
    vocab = dict(st.encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    raw = folder / "raw-tokenizer"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(st.bpe_ranks, key=st.bpe_ranks.get)
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    CLIPTokenizer.from_pretrained(str(raw)).save_pretrained(str(folder))
    return folder


def write_hf_clip_dir(folder: Path, seed: int = 0, projection_dim: int = 16) -> Path:
    """``CLIPModel.save_pretrained`` + the tokenizer + an image processor, as a hub repo holds them."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=77, vocab_size=49408, eos_token_id=49407, bos_token_id=49406,
                         pad_token_id=49407),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=projection_dim)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(str(folder))
    write_clip_tokenizer(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                       image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.25, 0.3]).save_pretrained(str(folder))
    return folder

"""Using a trained model: zero-shot predictions for your own images and embeddings of images and texts.

```python
clf = ZeroShotClassifier.from_pretrained("runs/demo/runs/focusclip-seed0/model-final",
                                         labels=["running", "sitting"], template="a photo of a person {c}")
clf.predict(["me.jpg"], topk=2)   # [{"image": "me.jpg", "predictions": [{"label", "score", "prob"}, ...]}]
```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from focusclip.io import open_rgb
from focusclip.model import create_model_from_pretrained
from focusclip.model.transforms import SampleTransform, eval_transform
from focusclip.runtime import resolve_device, to_device
from focusclip.zeroshot.classifier import build_zero_shot_classifier
from focusclip.zeroshot.tasks import fill_template

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "a photo of a person {c}"
ImageInput = str | os.PathLike | Image.Image


def _open(image: ImageInput) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else open_rgb(image)


def _name(image: ImageInput, i: int) -> str:
    return str(image) if not isinstance(image, Image.Image) else f"<image {i}>"


@torch.inference_mode()
def embed_images(model: Any, images: Sequence[ImageInput], transform: SampleTransform | None = None,
                 batch_size: int = 32, device: str | torch.device = "auto") -> np.ndarray:
    """(N, D) L2-normalised image embeddings."""
    dev = resolve_device(device)
    model.to(dev).eval()
    transform = transform or eval_transform(model)
    out = []
    for i in range(0, len(images), batch_size):
        batch = torch.stack([transform(_open(im)) for im in images[i:i + batch_size]]).to(dev)
        out.append(model.encode_image(batch, normalize=True).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.embed_dim), np.float32)


@torch.inference_mode()
def embed_texts(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 256,
                device: str | torch.device = "auto") -> np.ndarray:
    """(N, D) L2-normalised text embeddings."""
    dev = resolve_device(device)
    model.to(dev).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        tokens = to_device(tokenizer(list(texts[i:i + batch_size])), dev)
        out.append(model.encode_text(tokens, normalize=True).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.embed_dim), np.float32)


class ZeroShotClassifier:
    """Scores images against class names put into prompt templates (several templates are averaged).

    ``score`` is the cosine similarity; ``prob`` a softmax over the classes of ``scale * score`` (100, as
    for CLIP, unless given).
    """

    def __init__(self, model: Any, tokenizer: Any, labels: Sequence[str],
                 templates: Sequence[str] = (DEFAULT_TEMPLATE,), transform: SampleTransform | None = None,
                 device: str | torch.device = "auto", scale: float = 100.0):
        labels = [str(lab).strip() for lab in labels if str(lab).strip()]
        if len(labels) < 2:
            raise ValueError(f"zero-shot classification needs at least two labels, got {labels}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {labels}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.transform = transform or eval_transform(model)
        self.labels = labels
        self.templates = list(templates)
        self.scale = scale
        prompts = [[fill_template(t, lab) for t in self.templates] for lab in labels]
        self.class_embeddings = build_zero_shot_classifier(self.model, tokenizer, prompts, self.device)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, labels: Sequence[str],
                        template: str | Sequence[str] = DEFAULT_TEMPLATE, device: str | torch.device = "auto",
                        **kwargs: Any) -> ZeroShotClassifier:
        """One call: load a saved model directory (with its tokenizer) or an untouched CLIP by name
        (``openclip:ViT-B-16/openai``, ``hfclip:...``, a registered name) and build the classifier."""
        loaded, tokenizer, transform = create_model_from_pretrained(str(model))
        templates = [template] if isinstance(template, str) else list(template)
        kwargs.setdefault("transform", transform)
        return cls(loaded, tokenizer, labels, templates, device=device, **kwargs)

    @torch.inference_mode()
    def scores(self, images: Sequence[ImageInput], batch_size: int = 32) -> np.ndarray:
        """(N, C) cosine similarities."""
        feats = torch.from_numpy(embed_images(self.model, images, self.transform, batch_size, self.device))
        return (feats @ self.class_embeddings.float().cpu().T).numpy()

    def predict(self, images: Sequence[ImageInput], topk: int = 3, batch_size: int = 32) -> list[dict[str, Any]]:
        sims = self.scores(images, batch_size)
        probs = torch.from_numpy(sims * self.scale).softmax(dim=-1).numpy()
        k = min(topk, len(self.labels))
        results = []
        for i, image in enumerate(images):
            order = np.argsort(-sims[i], kind="stable")[:k]
            results.append({"image": _name(image, i),
                            "predictions": [{"label": self.labels[j], "score": float(sims[i, j]),
                                             "prob": float(probs[i, j])} for j in order]})
        return results


def format_predictions(results: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one block per image, one line per label."""
    lines = []
    for r in results:
        lines.append(r["image"])
        for rank, p in enumerate(r["predictions"], 1):
            lines.append(f"  {rank}. {p['label']:<30s} prob {p['prob']:6.1%}   cosine {p['score']:+.3f}")
    return "\n".join(lines)


def save_embeddings(path: str | os.PathLike, embeddings: np.ndarray, names: Sequence[str]) -> tuple[Path, Path]:
    """Write ``path`` (.npy) and a ``.txt`` beside it listing the input of each row, atomically."""
    from focusclip.io import atomic_save, atomic_write_text

    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_suffix(".npy")
    atomic_save(path, lambda f: np.save(f, embeddings.astype(np.float32)))
    index = path.with_suffix(".txt")
    atomic_write_text(index, "".join(f"{n}\n" for n in names))
    return path, index

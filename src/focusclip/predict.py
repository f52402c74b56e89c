"""Using a trained model: zero-shot predictions for your own images and embeddings of images and texts.

```python
clf = ZeroShotClassifier.from_pretrained("runs/demo/runs/focusclip-seed0/model-final",
                                         labels=["running", "sitting"], template="a photo of a person {c}")
clf.predict(["me.jpg"], topk=2)   # [{"image": "me.jpg", "predictions": [{"label", "score", "prob"}, ...]}]
clf.predict_people(["group.jpg"], [subjects_from_boxes(boxes)], focus="auto")   # one answer per person
```

Per person (:meth:`ZeroShotClassifier.predict_people`, :func:`embed_people`): each person of a photo
(:mod:`focusclip.subjects`) is focused on by a mode of :mod:`focusclip.model.focus.inference` (attention,
crop, blur, circle, dim, ...), batched across people and photos by :mod:`focusclip.people`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from focusclip.errors import UsageError
from focusclip.images import decode, open_rgb
from focusclip.labels import parse_labels
from focusclip.model.factory import load_model_spec
from focusclip.model.transforms import SampleTransform, eval_transform
from focusclip.runtime import resolve_device, to_device
from focusclip.zeroshot.classifier import build_zero_shot_classifier, encode_images
from focusclip.zeroshot.tasks import fill_template

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "a photo of a person {c}"
ImageInput = str | os.PathLike | Image.Image


def _open(image: ImageInput) -> Image.Image:
    return decode(image, "RGB") if isinstance(image, Image.Image) else open_rgb(image)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")


def _name(image: ImageInput, i: int) -> str:
    return str(image) if not isinstance(image, Image.Image) else f"<image {i}>"


@torch.inference_mode()
def embed_images(model: Any, images: Sequence[ImageInput], transform: SampleTransform | None = None,
                 batch_size: int = 32, device: str | torch.device = "auto",
                 heatmaps: Sequence[Any] | None = None, focus: str | None = None) -> np.ndarray:
    """(N, D) L2-normalised image embeddings. ``heatmaps``: one per image (an (H, W) array in [0, 1], any
    size: it is resized with the image; None for none): a model that focuses at inference
    (``model.focus_at_inference``) encodes each image focused on its heatmap; other models ignore them.
    With ``focus`` (a mode of :data:`~focusclip.model.focus.FOCUS_AT_INFERENCE`) every model focuses on
    the heatmaps that way (``encode_image(..., focus=)``); images without one (or whose heatmap marks
    nothing) stay plain."""
    _check_batch_size(batch_size)
    if heatmaps is not None and len(heatmaps) != len(images):
        raise UsageError(f"{len(heatmaps)} heatmaps for {len(images)} images; give one per image (None: none)")
    dev = resolve_device(device)
    model.to(dev).eval()
    transform = transform or eval_transform(model)
    if focus is not None:
        from focusclip.model.focus.inference import resolve_focus

        resolve_focus(model, focus)  # an unusable mode fails before any image is read
    focus_any = heatmaps is not None and focus is not None
    focus_own = heatmaps is not None and focus is None and bool(getattr(model, "focus_at_inference", False))
    out = []
    for i in range(0, len(images), batch_size):
        if focus_any:
            items = [_transformed(transform, _open(im), hm) for im, hm in zip(images[i:i + batch_size],
                                                                              heatmaps[i:i + batch_size])]
            batch = torch.stack([x for x, _, _ in items]).to(dev)
            heat = torch.stack([h for _, h, _ in items]).to(dev)
            out.append(model.encode_image(batch, heatmap=heat, normalize=True, focus=focus).float().cpu())
            continue
        if not focus_own:
            batch = torch.stack([transform(_open(im)) for im in images[i:i + batch_size]]).to(dev)
            out.append(model.encode_image(batch, normalize=True).float().cpu())
            continue
        items = [_transformed(transform, _open(im), hm) for im, hm in zip(images[i:i + batch_size],
                                                                          heatmaps[i:i + batch_size])]
        batch = torch.stack([x for x, _, _ in items]).to(dev)
        heat = torch.stack([h for _, h, _ in items]).to(dev)
        has = torch.tensor([given for _, _, given in items])
        out.append(encode_images(model, batch, heat, has).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.embed_dim), np.float32)


def _transformed(transform: SampleTransform, image: Image.Image, heatmap: Any
                 ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(image tensor, its heatmap (1, S, S) moved with it, whether there was one)."""
    if heatmap is None:
        x = transform(image)
        return x, torch.zeros(1, *x.shape[-2:]), False
    out = transform.apply(image, heatmap=heatmap)
    return out["image"], out["heatmap"], True


@torch.inference_mode()
def embed_texts(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 256,
                device: str | torch.device = "auto") -> np.ndarray:
    """(N, D) L2-normalised text embeddings."""
    _check_batch_size(batch_size)
    dev = resolve_device(device)
    model.to(dev).eval()
    out = []
    for i in range(0, len(texts), batch_size):
        tokens = to_device(tokenizer(list(texts[i:i + batch_size])), dev)
        out.append(model.encode_text(tokens, normalize=True).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.embed_dim), np.float32)


def softmax_scale(model: Any, training: dict[str, Any] | None = None) -> float:
    """The scale turning cosine similarities into a softmax over classes, as the model was trained:
    ``1 / temperature`` for NT-Xent-trained models (the paper: t = 0.5, so 2), else the model's own logit
    scale (``exp(logit_scale)``, clamped at 100 as in training; 1/0.07 for an untrained CLIP-style model)."""
    loss = (training or {}).get("loss") or {}
    if loss.get("name") == "ntxent" and loss.get("temperature"):
        return 1.0 / float(loss["temperature"])
    return float(model.logit_scale.detach().clamp(max=math.log(100.0)).exp())


class ZeroShotClassifier:
    """Scores images against class names put into prompt templates (several templates are averaged).

    ``score`` is the cosine similarity; ``prob`` a softmax over the classes of ``scale * score``, with the
    model's own scale (:func:`softmax_scale`) unless ``scale`` is given.

    Args:
        model, tokenizer: a FocusCLIP model and its tokenizer (or use :meth:`from_pretrained`).
        labels: the class names: a list, or a text with commas / new lines (:func:`focusclip.labels.parse_labels`:
            at least two, no repeats).
        templates: prompt templates with ``{c}`` for the label.
        transform: the evaluation transform (default: the model's own, :func:`eval_transform`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        scale: the softmax scale (default: the model's own).
        training: the saved model's training info (sets the default scale).

    Returns (:meth:`predict`):
        One dict per image: ``{"image": name, "predictions": [{"label", "score", "prob"}, ...]}``, best first.

    Example::

        clf = ZeroShotClassifier.from_pretrained("runs/demo/model-final", "running, sitting, jumping")
        print(format_predictions(clf.predict(["photo.jpg"], topk=2)))
    """

    def __init__(self, model: Any, tokenizer: Any, labels: str | Sequence[str],
                 templates: Sequence[str] = (DEFAULT_TEMPLATE,), transform: SampleTransform | None = None,
                 device: str | torch.device = "auto", scale: float | None = None,
                 training: dict[str, Any] | None = None):
        self.labels = parse_labels(labels)
        if scale is not None and not scale > 0:
            raise UsageError(f"scale must be positive, got {scale}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.transform = transform or eval_transform(model)
        self.templates = list(templates)
        self.scale = float(scale) if scale is not None else softmax_scale(self.model, training)
        prompts = [[fill_template(t, lab) for t in self.templates] for lab in self.labels]
        self.class_embeddings = build_zero_shot_classifier(self.model, tokenizer, prompts, self.device)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, labels: str | Sequence[str],
                        template: str | Sequence[str] = DEFAULT_TEMPLATE, device: str | torch.device = "auto",
                        **kwargs: Any) -> ZeroShotClassifier:
        """One call: load a saved model directory, an untouched CLIP by name (``openclip:ViT-B-16/openai``,
        ``hfclip:...``) or a registered model name with its tokenizer and build the classifier; the softmax
        scale follows the saved model's training loss (a CLIP's own logit scale otherwise)."""
        loaded = load_model_spec(model)
        templates = [template] if isinstance(template, str) else list(template)
        kwargs.setdefault("training", loaded.training)
        return cls(loaded.model, loaded.tokenizer, labels, templates, transform=loaded.transform, device=device,
                   **kwargs)

    @property
    def focus_at_inference(self) -> bool:
        """Whether ``heatmaps`` change the predictions (the model's :attr:`focus_at_inference`)."""
        return bool(getattr(self.model, "focus_at_inference", False))

    @torch.inference_mode()
    def scores(self, images: Sequence[ImageInput], batch_size: int = 32,
               heatmaps: Sequence[Any] | None = None, focus: str | None = None) -> np.ndarray:
        """(N, C) cosine similarities (``heatmaps`` and ``focus`` as in :func:`embed_images`)."""
        feats = torch.from_numpy(embed_images(self.model, images, self.transform, batch_size, self.device,
                                              heatmaps=heatmaps, focus=focus))
        return (feats @ self.class_embeddings.float().cpu().T).numpy()

    def predict(self, images: Sequence[ImageInput], topk: int = 3, batch_size: int = 32, *,
                heatmaps: Sequence[Any] | None = None, focus: str | None = None) -> list[dict[str, Any]]:
        """Top-``topk`` labels per image. ``heatmaps`` (one (H, W) array in [0, 1] or None per image): a
        model that focuses at inference asks about the subject each marks (one person among several);
        for other models they change nothing (every model without heatmaps behaves as CLIP does).
        ``focus`` (``auto``, ``attention``, ``crop``, ``blur``, ``circle``, ``dim``, ``alpha``, ``pool``)
        focuses any model on the heatmaps that way (docs/focus.md); per person: :meth:`predict_people`."""
        if topk < 1:
            raise UsageError(f"topk must be at least 1, got {topk}")
        sims = self.scores(images, batch_size, heatmaps=heatmaps, focus=focus)
        _check_finite(sims, "predict")
        k = min(topk, len(self.labels))
        return [{"image": _name(image, i), "predictions": self._ranked(sims[i], k)} for i, image in enumerate(images)]

    def _ranked(self, sims: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The top ``k`` labels of one row of cosine similarities, with their probabilities."""
        probs = torch.from_numpy(np.asarray(sims, dtype=np.float64) * self.scale).softmax(dim=-1).numpy()
        order = np.argsort(-sims, kind="stable")[:k]
        return [{"label": self.labels[j], "score": float(sims[j]), "prob": float(probs[j])} for j in order]

    @torch.inference_mode()
    def predict_people(self, images: Sequence[ImageInput], subjects: Sequence[Sequence[Any] | None] | None = None,
                       focus: str = "auto", topk: int = 3, person: int | None = None, detector: Any = None,
                       batch_size: int = 32) -> list[dict[str, Any]]:
        """One answer per person, plus the whole image's, for every image.

        ``subjects``: one list of :class:`focusclip.subjects.Subject` per image (None, or a None entry:
        the ``detector``'s people when one is given, else nobody). ``focus``: how each person is focused
        (:data:`~focusclip.model.focus.FOCUS_AT_INFERENCE`; ``auto``: the model's own mechanism, else
        ``attention`` on a ViT and ``blur`` on another tower). ``person``: only that person (1-based). Returns per image::

            {"image": name, "size": [W, H], "whole": [predictions],
             "people": [{"person": k, "box": [x1, y1, x2, y2], "source": ..., "focus": mode_used,
                         "focused": bool, "note": str | None, "predictions": [...]}]}

        A person whose ROI marks nothing (a box outside the image, empty, NaN) gets the whole-image
        predictions with ``"focused": False`` and a note; nothing non-finite is ever returned."""
        from focusclip.people import as_subject_lists, encode_people

        if topk < 1:
            raise UsageError(f"topk must be at least 1, got {topk}")
        photos = encode_people(self.model, self.transform, images, as_subject_lists(subjects, len(images)), focus,
                               batch_size, self.device, detector, person)
        classes = self.class_embeddings.float().cpu()
        k = min(topk, len(self.labels))
        results = []
        for photo in photos:
            whole = (photo.whole @ classes.T).numpy()
            _check_finite(whole[None], photo.image)
            people = []
            for p in photo.people:
                sims = (p.feature @ classes.T).numpy()
                focused, note = p.focused, p.note
                if not np.isfinite(sims).all():
                    sims, focused, note = whole, False, f"person {p.subject.person}: the focused scores were not finite"
                people.append({**p.subject.describe(), "focus": photo.mode, "focused": bool(focused), "note": note,
                               "predictions": self._ranked(sims, k)})
            results.append({"image": photo.image, "size": list(photo.size), "whole": self._ranked(whole, k),
                            "people": people})
        return results


def _check_finite(sims: np.ndarray, where: str) -> None:
    from focusclip.errors import RunError

    if not np.isfinite(sims).all():
        raise RunError(f"{where}: the model gave non-finite scores (NaN or inf in its weights or input)")


def format_people(results: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :meth:`ZeroShotClassifier.predict_people` results: per image the whole-image
    answer, then one block per person with its id, box and focus mode."""
    lines = []
    for r in results:
        lines.append(f"{r['image']}  ({r['size'][0]}x{r['size'][1]}, {len(r['people'])} people)")
        blocks = [("whole image", r["whole"])]
        for p in r["people"]:
            box = ", ".join("?" if v is None else f"{v:g}" for v in p["box"])
            how = f"focus {p['focus']}" if p["focused"] else f"not focused: {p['note']}"
            blocks.append((f"person {p['person']} [{box}] {p['source']}, {how}", p["predictions"]))
        for title, preds in blocks:
            lines.append(f"  {title}")
            for rank, q in enumerate(preds, 1):
                lines.append(f"    {rank}. {q['label']:<28s} prob {q['prob']:6.1%}   cosine {q['score']:+.3f}")
    return "\n".join(lines)


PEOPLE_COLUMNS = ("image", "person", "x1", "y1", "x2", "y2", "source", "focus", "focused", "rank", "label", "prob",
                  "score", "note")


def people_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows (:data:`PEOPLE_COLUMNS`) of :meth:`ZeroShotClassifier.predict_people` results, one per
    person and rank; the whole image is person 0."""
    rows = []
    for r in results:
        whole = {"person": 0, "box": [0, 0, r["size"][0], r["size"][1]], "source": "whole", "focus": "",
                 "focused": False, "note": None, "predictions": r["whole"]}
        for p in [whole, *r["people"]]:
            for rank, q in enumerate(p["predictions"], 1):
                x1, y1, x2, y2 = p["box"]
                rows.append({"image": r["image"], "person": p["person"], "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                             "source": p["source"], "focus": p["focus"], "focused": p["focused"], "rank": rank,
                             "label": q["label"], "prob": q["prob"], "score": q["score"], "note": p["note"] or ""})
    return rows


def write_people_csv(path: str | os.PathLike, results: Sequence[dict[str, Any]]) -> None:
    """:func:`people_rows` of ``results`` as a CSV file (header :data:`PEOPLE_COLUMNS`), written atomically."""
    import csv
    import io

    from focusclip.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(PEOPLE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(people_rows(results))
    atomic_write_text(path, buf.getvalue())


EMBED_ROW_COLUMNS = ("row", "image", "person", "x1", "y1", "x2", "y2", "source", "focus", "focused", "note")


def save_people_embeddings(path: str | os.PathLike, embeddings: np.ndarray, rows: Sequence[dict[str, Any]],
                           overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``path`` (.npy) and its rows file, a ``.csv`` beside it naming each row's photo and person
    (:data:`EMBED_ROW_COLUMNS`; person 0 is a whole image), each atomically; existing files only with
    ``overwrite``."""
    import csv
    import io

    from focusclip.io import atomic_save, atomic_write_text, check_no_overwrite

    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_suffix(".npy")
    table = path.with_suffix(".csv")
    check_no_overwrite([path, table], overwrite)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(EMBED_ROW_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for i, r in enumerate(rows):
        x1, y1, x2, y2 = r["box"]
        writer.writerow({"row": i, "image": r["image"], "person": r["person"], "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                         "source": r["source"], "focus": r["focus"], "focused": r["focused"], "note": r["note"] or ""})
    atomic_save(path, lambda f: np.save(f, embeddings.astype(np.float32)))
    atomic_write_text(table, buf.getvalue())
    return path, table


def embed_people(model: Any, images: Sequence[ImageInput], subjects: Sequence[Sequence[Any] | None] | None = None,
                 focus: str = "auto", transform: SampleTransform | None = None, batch_size: int = 32,
                 device: str | torch.device = "auto", detector: Any = None,
                 person: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(N, D) L2-normalised embeddings, one per person (``subjects`` / ``detector`` / ``person`` as in
    :meth:`ZeroShotClassifier.predict_people`), and a row per embedding: ``{"image", "person", "box",
    "source", "focus", "focused", "note"}``. An image without people gets one whole-image row (person 0)."""
    from focusclip.people import as_subject_lists, encode_people

    _check_batch_size(batch_size)
    dev = resolve_device(device)
    model.to(dev).eval()
    photos = encode_people(model, transform or eval_transform(model), images, as_subject_lists(subjects, len(images)),
                           focus, batch_size, dev, detector, person)
    feats, rows = [], []
    for photo in photos:
        if not photo.people:
            feats.append(photo.whole)
            rows.append({"image": photo.image, "person": 0, "box": [0, 0, *photo.size], "source": "whole",
                         "focus": "", "focused": False, "note": "no people: the whole image"})
        for p in photo.people:
            feats.append(p.feature)
            rows.append({"image": photo.image, **p.subject.describe(), "focus": photo.mode, "focused": p.focused,
                         "note": p.note})
    emb = torch.stack(feats).numpy() if feats else np.zeros((0, model.embed_dim), np.float32)
    _check_finite(emb, "embed")
    return emb.astype(np.float32), rows


def format_predictions(results: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one block per image, one line per label."""
    lines = []
    for r in results:
        lines.append(r["image"])
        for rank, p in enumerate(r["predictions"], 1):
            lines.append(f"  {rank}. {p['label']:<30s} prob {p['prob']:6.1%}   cosine {p['score']:+.3f}")
    return "\n".join(lines)


def save_embeddings(path: str | os.PathLike, embeddings: np.ndarray, names: Sequence[str],
                    overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``path`` (.npy) and a ``.txt`` beside it listing the input of each row, each atomically.
    Existing files are replaced only with ``overwrite`` (the index beside a .npy may be someone's file)."""
    from focusclip.io import atomic_save, atomic_write_text, check_no_overwrite

    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_suffix(".npy")
    index = path.with_suffix(".txt")
    check_no_overwrite([path, index], overwrite)
    atomic_save(path, lambda f: np.save(f, embeddings.astype(np.float32)))
    atomic_write_text(index, "".join(f"{n}\n" for n in names))
    return path, index

"""What the page and the JSON API both call: classify, embed and search, on the cached model.

The service knows nothing of HTTP or Gradio: it takes decoded :class:`~focusclip.serve.uploads.UploadedImage`
objects (or :class:`~focusclip.serve.roi.PreparedImage` ones) and returns plain dicts and arrays.
Scores come from :class:`focusclip.predict.ZeroShotClassifier` (never recomputed here), so the page
shows exactly what ``focusclip predict`` prints.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focusclip.serve.models import CachedModel, ModelCache, ModelCatalog, ModelEntry
from focusclip.serve.presets import Preset, list_presets
from focusclip.serve.roi import PeopleFinder, PreparedImage, prepare_images
from focusclip.serve.uploads import UploadedImage, UploadLimits, check_count

logger = logging.getLogger(__name__)


@dataclass
class Classification:
    """One classify call: the model and prompts used, and per image its top-k predictions."""

    model: ModelEntry
    labels: list[str]
    templates: list[str]
    #: [{"image", "roi", "predictions": [{"label", "prob", "score"}, ...]}]; with focus, photos that have an
    #: ROI also get "focus_predictions" (classified focused on it), the others a "roi_note"
    results: list[dict[str, Any]]
    seconds: float = 0.0
    focus: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.id, "architecture": self.model.architecture, "labels": self.labels,
                "templates": self.templates, "focus": self.focus, "results": self.results,
                "seconds": round(self.seconds, 4)}


@dataclass
class Service:
    """Models, presets and limits of one server."""

    catalog: ModelCatalog
    limits: UploadLimits = field(default_factory=UploadLimits)
    device: str = "auto"
    default_model: str | None = None
    presets: list[Preset] = field(default_factory=list_presets)
    people_finder: PeopleFinder | None = None  #: the pose detector for photos without an ROI file

    def __post_init__(self) -> None:
        self.cache = ModelCache(self.catalog)
        #: one forward pass at a time: focus mechanisms hook the shared model for the length of a call
        #: (a concurrent plain call must not see another request's heatmap), and on a CPU server two
        #: passes at once are no faster than one after the other
        self.inference = threading.Lock()
        if self.default_model is not None:
            self.catalog.resolve(self.default_model)  # fail at start-up, not on the first request

    # --------------------------------------------------------------------------- models
    def models(self) -> list[ModelEntry]:
        return self.catalog.entries()

    def default_model_id(self) -> str | None:
        return self.default_model or self.catalog.default_id()

    def model(self, model_id: str | None) -> CachedModel:
        model_id = model_id or self.default_model_id()
        if model_id is None:
            raise ValueError("no model to load: the models root holds no saved model and no config is registered")
        return self.cache.get(model_id)

    # ------------------------------------------------------------------------- classify
    def classifier(self, loaded: CachedModel, labels: Sequence[str], templates: Sequence[str]) -> Any:
        from focusclip.predict import ZeroShotClassifier

        key = (tuple(labels), tuple(templates))
        return self.cache.classifier(loaded, key, lambda: ZeroShotClassifier(
            loaded.model, loaded.tokenizer, list(labels), list(templates), transform=loaded.transform,
            device=self.device, training=loaded.training))

    def classify(self, model_id: str | None, images: Sequence[UploadedImage | PreparedImage],
                 labels: Sequence[str], templates: Sequence[str], topk: int = 3,
                 focus: bool = False) -> Classification:
        """Top-``topk`` labels per image (``prob``: softmax over the labels; ``score``: cosine).

        ``focus``: also classify each photo that has an ROI focused on it (side by side with the plain
        answer); the model's focus mechanism must work at inference, else a ValueError says so.
        """
        check_count(len(images), self.limits)
        if len(labels) > self.limits.max_labels:
            raise ValueError(f"{len(labels)} labels; at most {self.limits.max_labels} are allowed")
        if topk < 1:
            raise ValueError(f"top-k must be >= 1, got {topk}")
        t0 = time.perf_counter()
        loaded = self.model(model_id)
        if focus:
            check_focus(loaded)  # before the class prompts are encoded: a refused request costs nothing
        clf = self.classifier(loaded, labels, templates)
        prepared = [im if isinstance(im, PreparedImage) else PreparedImage(im) for im in images]
        with self.inference:
            results = clf.predict([p.upload.image for p in prepared], topk=topk)
            if focus:
                self._classify_focused(clf, prepared, results, topk)
        for r, p in zip(results, prepared):
            r["image"] = p.name
            r["roi"] = p.roi.to_dict() if p.roi is not None else None
            if p.note:
                r.setdefault("roi_note", p.note)
        took = time.perf_counter() - t0
        logger.info("classified %d image(s) with %s in %.0f ms", len(prepared), loaded.entry.id, 1000 * took)
        return Classification(loaded.entry, list(clf.labels), list(clf.templates), results, took, focus)

    @staticmethod
    def _classify_focused(clf: Any, prepared: Sequence[PreparedImage], results: list[dict[str, Any]],
                          topk: int) -> None:
        """Add ``focus_predictions`` to the results of the photos that have an ROI."""
        with_roi = [i for i, p in enumerate(prepared) if p.roi is not None]
        for i, p in enumerate(prepared):
            if p.roi is None:
                results[i]["roi_note"] = p.note or "no ROI: upload a keypoints / boxes file or use the detector"
        if not with_roi:
            return
        focused = clf.predict([prepared[i].upload.image for i in with_roi], topk=topk,
                              heatmaps=[prepared[i].roi.heatmap for i in with_roi])
        for i, f in zip(with_roi, focused):
            results[i]["focus_predictions"] = f["predictions"]

    # ------------------------------------------------------------------------------ ROI
    def prepare(self, uploads: Sequence[UploadedImage], roi_files: Sequence[tuple[str, Any]] = (),
                detect: bool = False) -> list[PreparedImage]:
        """Each photo with its ROI: from its keypoints / boxes file (``(name, path)`` pairs), else, with
        ``detect``, from the server's pose detector (a ValueError when the server has none)."""
        if detect and self.people_finder is None:
            raise ValueError("this server has no pose detector (start it with --detect mediapipe, which needs "
                             "pip install 'focusclip[detect]'); upload a keypoints or boxes file instead")
        return prepare_images(uploads, roi_files, self.people_finder if detect else None)

    @property
    def detector_name(self) -> str | None:
        return self.people_finder.name if self.people_finder is not None else None

    # ---------------------------------------------------------------------------- embed
    def embed_images(self, model_id: str | None, images: Sequence[UploadedImage]) -> tuple[ModelEntry, np.ndarray]:
        """(entry, (N, D) L2-normalised image embeddings)."""
        from focusclip.predict import embed_images

        check_count(len(images), self.limits)
        loaded = self.model(model_id)
        with self.inference:
            emb = embed_images(loaded.model, [u.image for u in images], loaded.transform, device=self.device)
        return loaded.entry, emb

    def embed_texts(self, model_id: str | None, texts: Sequence[str]) -> tuple[ModelEntry, np.ndarray]:
        """(entry, (N, D) L2-normalised text embeddings)."""
        from focusclip.predict import embed_texts

        if not texts:
            raise ValueError("no text to embed; give at least one text")
        empty = [i for i, t in enumerate(texts) if not str(t).strip()]
        if empty:
            raise ValueError(f"text {empty[0] + 1} of {len(texts)} is empty")
        if len(texts) > self.limits.max_labels:
            raise ValueError(f"{len(texts)} texts; at most {self.limits.max_labels} per request")
        loaded = self.model(model_id)
        with self.inference:
            emb = embed_texts(loaded.model, loaded.tokenizer, [str(t) for t in texts], device=self.device)
        return loaded.entry, emb

    def search(self, model_id: str | None, image_embeddings: np.ndarray, query: str) -> list[tuple[int, float]]:
        """Image indices ranked by cosine similarity to ``query``: ``[(index, cosine), ...]``, best first."""
        check_query(query)
        _, q = self.embed_texts(model_id, [query])
        sims = image_embeddings @ q[0]
        order = np.argsort(-sims, kind="stable")
        return [(int(i), float(sims[i])) for i in order]


def check_focus(loaded: CachedModel) -> None:
    """A ValueError unless the loaded model can classify focused on an ROI."""
    entry = loaded.entry
    if getattr(loaded.model, "focus_at_inference", False):
        return
    if not entry.roi:
        why = "it has no focus mechanism (a CLIP baseline)"
    else:
        why = f"its focus mechanism ({entry.focus or 'highlight'}) only trains a branch (roi.mode attention, " \
              "alpha and pool focus at inference)"
    raise ValueError(f"{entry.id} cannot classify with focus: {why}; classify without focus")


def check_query(query: str | None) -> None:
    if not query or not query.strip():
        raise ValueError("type what to search for, e.g. 'a person jumping'")

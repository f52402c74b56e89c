"""What the page and the JSON API both call: classify, embed and search, on the cached model.

The service knows nothing of HTTP or Gradio: it takes decoded :class:`~focusclip.serve.uploads.UploadedImage`
objects (or :class:`~focusclip.serve.roi.PreparedImage` ones) and returns plain dicts and arrays.
Scores come from :class:`focusclip.predict.ZeroShotClassifier` (never recomputed here), so the page
shows exactly what ``focusclip predict`` prints.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    #: [{"image", "size", "roi", "predictions": [{"label", "prob", "score"}, ...]}]; with a focus mode also
    #: "whole" (the same as "predictions") and "people" (one answer per person, as
    #: ZeroShotClassifier.predict_people gives them); photos without people get a "roi_note"
    results: list[dict[str, Any]]
    seconds: float = 0.0
    focus: str | None = None  #: the focus mode asked for (None: the whole image only)
    person: int | None = None  #: only this person was asked about

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.id, "architecture": self.model.architecture, "labels": self.labels,
                "templates": self.templates, "focus": self.focus or False, "person": self.person,
                "results": self.results, "seconds": round(self.seconds, 4)}


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

    def private_roots(self) -> list[str]:
        """The server's folders that answers must not show (the models roots, resolved)."""
        return [str(Path(s.root).resolve()) for s in self.catalog.sources if getattr(s, "root", None) is not None]

    def public(self, error: BaseException | str) -> str:
        """An error's message as the page and the API show it: one line, no path of this server."""
        return public_message(str(error), self.private_roots())

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
                 focus: str | None = None, person: int | None = None) -> Classification:
        """Top-``topk`` labels per image (``prob``: softmax over the labels; ``score``: cosine).

        ``focus``: a mode of :data:`focusclip.model.focus.FOCUS_AT_INFERENCE` to also answer about each
        person of each photo (its ROI file's, the detector's or the request's boxes), side by side with
        the whole image (:meth:`focusclip.predict.ZeroShotClassifier.predict_people`); a mode the model
        cannot use is a ValueError before any work. ``person``: only that person (1-based).
        """
        check_count(len(images), self.limits)
        if len(labels) > self.limits.max_labels:
            raise ValueError(f"{len(labels)} labels; at most {self.limits.max_labels} are allowed")
        if topk < 1:
            raise ValueError(f"top-k must be >= 1, got {topk}")
        if person is not None and focus is None:
            raise ValueError("asking about one person needs a focus mode (focus=auto)")
        t0 = time.perf_counter()
        loaded = self.model(model_id)
        prepared = [im if isinstance(im, PreparedImage) else PreparedImage(im) for im in images]
        if focus is not None:
            check_focus(loaded, focus)  # before the class prompts are encoded: a refused request costs nothing
            if person is not None:
                check_person(prepared, person)
        clf = self.classifier(loaded, labels, templates)
        with self.inference:
            if focus is None:
                results = clf.predict([p.upload.image for p in prepared], topk=topk)
            else:
                results = self._classify_people(clf, prepared, focus, topk, person)
        for r, p in zip(results, prepared):
            r["image"] = p.name
            r["roi"] = p.roi.to_dict() if p.roi is not None else None
            r.setdefault("size", list(p.upload.original_size or p.upload.size))
            if p.note:
                r.setdefault("roi_note", p.note)
        took = time.perf_counter() - t0
        logger.info("classified %d image(s) with %s in %.0f ms", len(prepared), loaded.entry.id, 1000 * took)
        return Classification(loaded.entry, list(clf.labels), list(clf.templates), results, took, focus, person)

    @staticmethod
    def _classify_people(clf: Any, prepared: Sequence[PreparedImage], focus: str, topk: int,
                         person: int | None) -> list[dict[str, Any]]:
        """The whole image's answer and one per person, boxes and size in the pixels of each photo's file."""
        out = clf.predict_people([p.upload.image for p in prepared], subjects=[list(p.people) for p in prepared],
                                 focus=focus, topk=topk, person=person)
        results = []
        for r, p in zip(out, prepared):
            kept, original = p.upload.size, p.upload.original_size or p.upload.size
            sx, sy = original[0] / kept[0], original[1] / kept[1]
            people = [{**q, "box": _scaled_box(q["box"], sx, sy)} for q in r["people"]]
            entry = {"image": p.name, "size": list(original), "predictions": r["whole"], "whole": r["whole"],
                     "people": people}
            if not p.people:
                entry["roi_note"] = p.note or "no people: upload a keypoints / boxes file, send boxes, or use the detector"
            results.append(entry)
        return results

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


def _scaled_box(box: Sequence[float | None], sx: float, sy: float) -> list[float | None]:
    return [None if v is None else round(v * k, 2) for v, k in zip(box, (sx, sy, sx, sy))]


def focus_choices(loaded: CachedModel) -> tuple[str, ...]:
    """The focus modes the loaded model can use (``auto`` first), see :func:`focusclip.model.focus.focus_modes`."""
    from focusclip.model.focus import focus_modes

    return tuple(focus_modes(loaded.model))


def check_focus(loaded: CachedModel, focus: str) -> str:
    """The concrete mode ``focus`` means for the loaded model; a ValueError naming the modes it can use."""
    from focusclip.model.focus import FOCUS_AT_INFERENCE, resolve_focus

    if focus not in FOCUS_AT_INFERENCE:
        raise ValueError(f"unknown focus mode {focus!r}; known: {', '.join(FOCUS_AT_INFERENCE)}")
    try:
        return resolve_focus(loaded.model, focus)
    except ValueError as e:
        raise ValueError(f"{loaded.entry.id}: {e}") from None


def check_person(prepared: Sequence[PreparedImage], person: int) -> None:
    """A ValueError unless every photo has person ``person``."""
    if person < 1:
        raise ValueError(f"person ids start at 1, got {person}")
    for p in prepared:
        ids = [s.person for s in p.people]
        if person not in ids:
            have = f"people {', '.join(map(str, ids))}" if ids else "no people"
            raise ValueError(f"{p.name} has {have}; person {person} is not one of them")


#: an absolute POSIX path (not a URL's path: no ':' or another '/' just before it)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"/:,;()\[\]{}]+/)*([^\s'\"/:,;()\[\]{}]*)")


def public_message(text: str, roots: Sequence[str | os.PathLike] = ()) -> str:
    """``text`` on one line without the server's paths: a path below one of ``roots`` (the models roots)
    becomes its part relative to the root (a model id; the root itself ``<models-root>``), any other
    absolute path into a folder of this machine its last component (``/api/predict``, which is no folder
    here, stays)."""
    for root in sorted({os.fspath(r).rstrip("/") for r in roots if os.fspath(r).rstrip("/")}, key=len, reverse=True):
        text = text.replace(root + "/", "").replace(root, "<models-root>")

    def local(m: re.Match) -> str:
        folder = os.path.dirname(m.group(0).rstrip("/"))
        return (m.group(1) or os.path.basename(m.group(0).rstrip("/"))) if folder != "/" and os.path.isdir(folder) \
            else m.group(0)

    return " ".join(_ABSOLUTE_PATH.sub(local, text).split())


def check_query(query: str | None) -> None:
    if not query or not query.strip():
        raise ValueError("type what to search for, e.g. 'a person jumping'")

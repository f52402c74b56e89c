"""Which models the page offers, and loading them: a catalog of model *sources* and a one-model cache.

A source lists :class:`ModelEntry` objects and loads one of them. Two sources exist today:

* :class:`SavedModels`: every saved model directory (``config.json`` + ``model.safetensors``, as written
  by ``focusclip.save_model``) found below a models root, recursively;
* :class:`RegisteredModels`: the registered configs (``focusclip.list_models()``), whose towers are as
  configured (random or ImageNet / sentence weights), not FocusCLIP-trained.

* :class:`ClipModels`: CLIP checkpoints named by whoever starts the server (``focusclip serve --clip
  openclip:ViT-B-16/openai``; hub names download once, so they need a network the first time).
* :class:`HubModels`: saved FocusCLIP models on the Hugging Face Hub named when the server starts
  (``focusclip serve --model hf-hub:ORG/NAME``).

A request names an entry by its ``id``; :meth:`ModelCatalog.resolve` only answers ids from the list it
built itself, so no user-typed path or name is ever opened and nothing outside the models root can be
loaded.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from focusclip.save_format import CONFIG_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

MAX_SCAN_DEPTH = 8


class UnknownModelError(KeyError):
    """A model id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else "unknown model"


@dataclass(frozen=True)
class ModelEntry:
    """One model the page can load; ``id`` is what requests send."""

    id: str
    kind: str                      #: "saved" | "registered" (later: "hf-hub", "open_clip")
    title: str                     #: what the picker shows
    architecture: str = ""         #: the model config's name, e.g. focusclip-lite0-minilm
    image_size: int | None = None
    roi: bool = False              #: has the subject-focused (ROI) branch
    focus: str = ""                #: its focus mechanism (roi.mode) when it has one
    focus_at_inference: bool = False  #: the mechanism can classify focused on a given ROI
    warning: str = ""              #: shown on the page when the entry is picked
    location: Path | None = field(default=None, compare=False, repr=False)  #: saved: the directory

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "architecture": self.architecture,
                "image_size": self.image_size, "roi": self.roi, "focus": self.focus,
                "focus_at_inference": self.focus_at_inference, "warning": self.warning}


@dataclass
class CachedModel:
    """The model the server holds: which catalog entry (and version of its files) it is, the loaded model
    (a :class:`focusclip.model.factory.LoadedModel`: model, tokenizer, transform, training info) and the
    classifiers built for it, cached per (labels, templates)."""

    entry: ModelEntry
    version: int
    loaded: Any  #: focusclip.model.factory.LoadedModel
    classifiers: OrderedDict = field(default_factory=OrderedDict)  #: (labels, templates) -> classifier

    def __getattr__(self, name: str) -> Any:
        """``model``, ``tokenizer``, ``transform`` and ``training`` (the saved model's training info, which
        sets the softmax scale) are the loaded model's."""
        if name in _LOADED_FIELDS:
            return getattr(self.loaded, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_LOADED_FIELDS = ("model", "tokenizer", "transform", "training")


class ModelSource(Protocol):
    kind: str

    def entries(self) -> list[ModelEntry]: ...

    def load(self, entry: ModelEntry) -> Any:
        """One of this source's entries as a :class:`focusclip.model.factory.LoadedModel`."""
        ...

    def version(self, entry: ModelEntry) -> int:
        """Changes when the entry's files do (a cached model of another version is reloaded)."""
        ...


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def focus_info(model_config: dict[str, Any]) -> dict[str, Any]:
    """``roi``, ``focus`` (the mechanism) and ``focus_at_inference`` of a model config."""
    from focusclip.model.focus import FOCUS_MODES

    roi = model_config.get("roi") or {}
    if not roi.get("enabled"):
        return {"roi": False, "focus": "", "focus_at_inference": False}
    mode = str(roi.get("mode", "highlight"))
    return {"roi": True, "focus": mode,
            "focus_at_inference": bool(mode in FOCUS_MODES and FOCUS_MODES[mode].at_inference)}


def _describe_saved(directory: Path) -> dict[str, Any]:
    """Architecture name, image size and focus of a saved ``config.json`` (empty if unreadable)."""
    try:
        saved = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        cfg = saved["model"]
        return {"architecture": str(cfg.get("name", "")), "image_size": int(cfg["vision"]["image_size"]),
                **focus_info(cfg)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class SavedModels:
    """Saved model directories below ``root`` (symlinks are not followed out of it)."""

    kind = "saved"

    def __init__(self, root: str | os.PathLike, max_depth: int = MAX_SCAN_DEPTH):
        self.root = Path(root)
        self.max_depth = max_depth

    def _model_dirs(self) -> list[Path]:
        root = self.root.resolve()
        if not root.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: linked folders are skipped
            here = Path(dirpath)
            depth = len(here.relative_to(root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < self.max_depth else []
            if CONFIG_FILE in filenames and WEIGHTS_FILE in filenames:
                if all(_inside(here / f, root) for f in (CONFIG_FILE, WEIGHTS_FILE)):
                    found.append(here)
                else:
                    logger.warning("skipping %s: its files link outside the models root %s", here, root)
                dirnames[:] = []  # a model's own sub-folders (tokenizer/) hold no other model
        return found

    def entries(self) -> list[ModelEntry]:
        root = self.root.resolve()
        out = []
        for d in self._model_dirs():
            rel = d.relative_to(root).as_posix()
            ident = rel if rel != "." else d.name
            info = _describe_saved(d)
            size = f", {info['image_size']} px" if info.get("image_size") else ""
            title = f"{ident} ({info.get('architecture') or 'unknown architecture'}{size})"
            out.append(ModelEntry(id=ident, kind=self.kind, title=title, location=d, **info))
        return out

    def version(self, entry: ModelEntry) -> int:
        try:
            return (entry.location / WEIGHTS_FILE).stat().st_mtime_ns
        except OSError:
            return -1  # removed since the scan: loading it fails with a clear error

    def load(self, entry: ModelEntry) -> Any:
        from focusclip.model.factory import load_model_spec

        return load_model_spec(entry.location)


class RegisteredModels:
    """The registered model configs: architectures with their configured tower weights, not trained."""

    kind = "registered"
    WARNING = ("a registered architecture, not a trained FocusCLIP model: its towers are as configured "
               "(random or ImageNet / sentence-embedding weights), so its zero-shot answers are not "
               "meaningful. Train one (`make demo`) and pick it from the saved models.")
    CLIP_WARNING = ("a pretrained CLIP checkpoint, not a trained FocusCLIP model: it answers as that CLIP does "
                    "zero-shot (its weights download once, so it needs a network the first time).")

    def entries(self) -> list[ModelEntry]:
        import focusclip

        out = []
        for name in focusclip.list_models():
            cfg = focusclip.get_model_config(name)
            clip = cfg.get("clip") or {}
            size = cfg.get("vision", {}).get("image_size") or \
                (clip.get("model_cfg") or {}).get("vision_cfg", {}).get("image_size")  # a whole CLIP's: its own
            pretrained_clip = bool(clip.get("pretrained"))
            what = "registered, pretrained CLIP" if pretrained_clip else "registered, untrained"
            title = f"{name} ({what}" + (f", {int(size)} px)" if size else ")")
            out.append(ModelEntry(id=name, kind=self.kind, title=title, architecture=name,
                                  image_size=int(size) if size else None,
                                  warning=self.CLIP_WARNING if pretrained_clip else self.WARNING,
                                  **focus_info(cfg)))
        return out

    def load(self, entry: ModelEntry) -> Any:
        from focusclip.model.factory import load_model_spec

        return load_model_spec(entry.id)

    def version(self, entry: ModelEntry) -> int:
        return 0


@dataclass
class ClipModels:
    """CLIP checkpoints given by name when the server starts (open_clip or Hugging Face CLIP names, see
    ``focusclip models`` and docs/pretrained-clip.md); checked when the server starts, loaded on first use."""

    names: Sequence[str]
    kind = "clip"
    WARNING = ("an off-the-shelf CLIP checkpoint, not a FocusCLIP-trained model: it answers as that CLIP "
               "does zero-shot.")

    def __post_init__(self) -> None:
        from focusclip.errors import UsageError
        from focusclip.model.names import clip_config, is_clip_name

        bad = [n for n in self.names if not is_clip_name(n)]
        if bad:
            raise UsageError(f"--clip {bad[0]!r}: not a CLIP model name (openclip:ARCH/TAG, openclip:ARCH@FILE, "
                             "hfclip:ID_OR_FOLDER)")
        for name in self.names:  # an unknown architecture or tag stops the start, not every request
            try:
                clip_config(name)
            except (UsageError, FileNotFoundError) as e:
                raise type(e)(f"--clip {name!r}: {str(e).removeprefix(f'model {name!r}: ')}") from None

    def entries(self) -> list[ModelEntry]:
        return [ModelEntry(id=n, kind=self.kind, title=f"{n} (off-the-shelf CLIP)", architecture=n,
                           warning=self.WARNING) for n in self.names]

    def load(self, entry: ModelEntry) -> Any:
        from focusclip.model.factory import load_model_spec

        return load_model_spec(entry.id)

    def version(self, entry: ModelEntry) -> int:
        return 0


@dataclass
class HubModels:
    """Saved FocusCLIP models on the Hugging Face Hub named when the server starts (``focusclip serve --model
    hf-hub:ORG/NAME[@REVISION]``): downloaded once into the Hub's cache (read from it with HF_HUB_OFFLINE=1)."""

    names: Sequence[str]
    kind = "hub"
    #: name -> its folder in the Hub cache, resolved once (a rescan does not ask the Hub again; restart to update)
    folders: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        from focusclip.model.names import parse_hub_name

        for name in self.names:
            parse_hub_name(name)

    def entries(self) -> list[ModelEntry]:
        from focusclip.hub import download_model

        out = []
        for name in self.names:
            if name not in self.folders:
                self.folders[name] = download_model(name)
            folder = self.folders[name]
            info = _describe_saved(folder)
            size = f", {info['image_size']} px" if info.get("image_size") else ""
            out.append(ModelEntry(id=name, kind=self.kind, location=folder, **info,
                                  title=f"{name} (Hugging Face Hub, {info.get('architecture') or '?'}{size})"))
        return out

    def load(self, entry: ModelEntry) -> Any:
        from focusclip.model.factory import load_model_spec

        return replace(load_model_spec(entry.location), name=entry.id)

    def version(self, entry: ModelEntry) -> int:
        try:
            return (entry.location / WEIGHTS_FILE).stat().st_mtime_ns
        except OSError:
            return -1


class ModelCatalog:
    """The entries of several sources, by id; ids repeated across sources get a ``kind:`` prefix."""

    def __init__(self, sources: Sequence[ModelSource]):
        self.sources = list(sources)
        self._entries: dict[str, tuple[ModelEntry, ModelSource]] = {}
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> list[ModelEntry]:
        """Scan the sources again (a model trained after the server started shows up)."""
        found: dict[str, tuple[ModelEntry, ModelSource]] = {}
        for source in self.sources:
            try:
                entries = source.entries()
            except Exception as e:  # one broken source must not hide the others
                logger.warning("model source %s failed: %s", source.kind, e)
                continue
            for entry in entries:
                if entry.id in found:
                    entry = replace(entry, id=f"{entry.kind}:{entry.id}")
                found[entry.id] = (entry, source)
        with self._lock:
            self._entries = found
        return self.entries()

    def entries(self) -> list[ModelEntry]:
        with self._lock:
            return [e for e, _ in self._entries.values()]

    def default_id(self) -> str | None:
        """A trained FocusCLIP model if there is one (final over best), else the first entry."""
        entries = self.entries()
        if not entries:
            return None
        saved = [e for e in entries if e.kind == "saved"]
        if saved:
            return min(saved, key=lambda e: (not e.roi, Path(e.id).name != "model-final", e.id)).id
        # pretrained CLIP configs download their weights: never the default of an offline start; among the
        # rest, the offline default towers (the demo's architecture)
        from focusclip.model.factory import OFFLINE_DEFAULT_MODEL

        return min(entries, key=lambda e: (not e.roi, e.warning == RegisteredModels.CLIP_WARNING,
                                           e.id != OFFLINE_DEFAULT_MODEL, e.id)).id

    def resolve(self, model_id: str) -> tuple[ModelEntry, ModelSource]:
        """The entry called ``model_id`` (rescanning once if it is unknown); never a path lookup."""
        for attempt in range(2):
            with self._lock:
                hit = self._entries.get(model_id)
            if hit is not None:
                return hit
            if attempt == 0:
                self.refresh()
        known = ", ".join(e.id for e in self.entries()) or "none (no models root, no registered configs)"
        raise UnknownModelError(f"unknown model {model_id!r}; available: {known}")


class ModelCache:
    """Holds one loaded model at a time: asking for another unloads the current one first.

    Classifiers (class embeddings of a label list and templates) are cached per model, a few at a time.
    """

    def __init__(self, catalog: ModelCatalog, max_classifiers: int = 8):
        self.catalog = catalog
        self.max_classifiers = max_classifiers
        self._lock = threading.Lock()
        self._current: CachedModel | None = None

    @property
    def current(self) -> CachedModel | None:
        return self._current

    def get(self, model_id: str) -> CachedModel:
        entry, source = self.catalog.resolve(model_id)
        with self._lock:
            version = source.version(entry)
            cur = self._current
            if cur is not None and cur.entry.id == entry.id and cur.version == version:
                return cur
            self._current = None
            del cur
            gc.collect()  # release the old weights before reading the new ones
            logger.info("loading model %s", entry.title)
            self._current = CachedModel(entry, version, source.load(entry))
            return self._current

    def classifier(self, loaded: CachedModel, key: tuple, build: Callable[[], Any]) -> Any:
        """The cached classifier for ``key`` on ``loaded``, built with ``build()`` when missing."""
        with self._lock:
            clf = loaded.classifiers.get(key)
            if clf is not None:
                loaded.classifiers.move_to_end(key)
                return clf
        clf = build()
        with self._lock:
            loaded.classifiers[key] = clf
            while len(loaded.classifiers) > self.max_classifiers:
                loaded.classifiers.popitem(last=False)
        return clf

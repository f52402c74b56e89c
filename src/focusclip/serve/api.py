"""The JSON API beside the page (documented in docs/serve.md):

* ``GET /api/models``: the model picker's entries and the default;
* ``GET /api/presets``: label presets from the task registry;
* ``POST /api/predict`` (multipart): ``images`` (one or more files), ``labels`` (comma / line separated)
  or ``preset``, ``template`` (repeatable), ``topk``, ``model``; optional ROI: ``rois`` (keypoints or boxes
  JSON files named after their photos), ``detect`` (the server's pose detector for photos without a
  file) and ``focus`` (also classify focused on each ROI) -> top-k labels per image;
* ``POST /api/embed`` (multipart): ``images`` and / or ``texts`` (repeatable), ``model`` -> L2-normalised
  embeddings.

Errors are ``{"error": "one line"}`` with 400 (bad input), 404 (unknown model), 413 (too large) or 415
(not an image); an unexpected failure is a 500 whose details stay in the server log.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from focusclip.labels import parse_labels
from focusclip.predict import DEFAULT_TEMPLATE
from focusclip.serve.models import UnknownModelError
from focusclip.serve.presets import find_preset, parse_templates
from focusclip.serve.service import Service
from focusclip.serve.uploads import UploadedImage, UploadError, check_count, format_mb, read_image

logger = logging.getLogger(__name__)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _answer(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a worker thread; map the library's errors to JSON error responses."""
    try:
        return await run_in_threadpool(fn, *args)
    except UploadError as e:
        return error_response(e.status, str(e))
    except UnknownModelError as e:
        return error_response(404, str(e))
    except (ValueError, FileNotFoundError) as e:
        return error_response(400, str(e))
    except Exception:
        logger.exception("API request failed")
        return error_response(500, "internal error; the server log has the details")


async def _read_uploads(service: Service, files: list[UploadFile]) -> list[UploadedImage]:
    check_count(len(files), service.limits)
    cap = service.limits.max_file_bytes
    out = []
    for i, f in enumerate(files):
        data = await f.read(cap + 1)  # one byte over the cap is enough to reject
        out.append(read_image(data, f.filename or f"image {i}", service.limits, f.content_type))
    return out


async def _read_roi_files(service: Service, files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """``(name, content)`` of uploaded ROI files, each within the photo size cap."""
    check_count(len(files), service.limits)
    cap = service.limits.max_file_bytes
    out = []
    for i, f in enumerate(files):
        name = f.filename or f"roi {i}"
        data = await f.read(cap + 1)
        if len(data) > cap:
            raise UploadError(f"{name}: ROI file over the limit of {format_mb(cap)}", status=413)
        out.append((name, data))
    return out


def _classify(service: Service, model: str | None, uploads: list[UploadedImage], rois: Sequence[tuple[str, bytes]],
              detect: bool, labels: list[str], templates: list[str], topk: int, focus: bool) -> Any:
    """Prepare the ROIs (the files are read from a private temporary folder under neutral names) and classify."""
    with tempfile.TemporaryDirectory(prefix="focusclip-roi-") as tmp:
        files = []
        for i, (name, data) in enumerate(rois):
            path = os.path.join(tmp, f"{i}.json")
            with open(path, "wb") as f:
                f.write(data)
            files.append((name, path))
        prepared = service.prepare(uploads, files, detect)
    return service.classify(model, prepared, labels, templates, topk, focus)


def build_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/models")
    def models() -> dict[str, Any]:
        return {"models": [e.to_dict() for e in service.catalog.refresh()], "default": service.default_model_id(),
                "detector": service.detector_name}

    @router.get("/presets")
    def presets() -> dict[str, Any]:
        return {"presets": [p.to_dict() for p in service.presets]}

    @router.post("/predict")
    async def predict(
        images: Annotated[list[UploadFile], File(description="one or more photos")],
        labels: Annotated[str | None, Form(description="comma or line separated labels")] = None,
        preset: Annotated[str | None, Form(description="a preset id from /api/presets")] = None,
        template: Annotated[list[str] | None, Form(description="prompt template(s) with {c}")] = None,
        topk: Annotated[int, Form(ge=1, le=1000)] = 3,
        model: Annotated[str | None, Form(description="a model id from /api/models")] = None,
        rois: Annotated[list[UploadFile] | None, File(description="keypoints / boxes JSON, named after its photo")]
        = None,
        detect: Annotated[bool, Form(description="find people with the server's pose detector")] = False,
        focus: Annotated[bool, Form(description="also classify focused on each photo's ROI")] = False,
    ) -> Any:
        try:
            if labels and labels.strip():
                label_list, preset_templates = parse_labels(labels, service.limits.max_labels), [DEFAULT_TEMPLATE]
            elif preset:
                chosen = find_preset(service.presets, preset)
                label_list, preset_templates = list(chosen.labels), list(chosen.templates)
            else:
                raise ValueError("give labels (comma or line separated) or a preset (see GET /api/presets)")
            templates = parse_templates(template, preset_templates)
            uploads = await _read_uploads(service, images)
            roi_files = await _read_roi_files(service, rois) if rois else []
        except UploadError as e:
            return error_response(e.status, str(e))
        except ValueError as e:
            return error_response(400, str(e))
        result = await _answer(_classify, service, model, uploads, roi_files, detect, label_list, templates, topk,
                               focus)
        return result.to_dict() if hasattr(result, "to_dict") else result

    @router.post("/embed")
    async def embed(
        images: Annotated[list[UploadFile] | None, File(description="photos to embed")] = None,
        texts: Annotated[list[str] | None, Form(description="texts to embed (repeat the field)")] = None,
        model: Annotated[str | None, Form(description="a model id from /api/models")] = None,
    ) -> Any:
        if not images and not texts:
            return error_response(400, "give images and / or texts to embed")
        try:
            uploads = await _read_uploads(service, images) if images else []
        except UploadError as e:
            return error_response(e.status, str(e))
        return await _answer(_embed, service, model, uploads, texts or [])

    return router


def _embed(service: Service, model: str | None, uploads: list[UploadedImage], texts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    entry = None
    if uploads:
        entry, emb = service.embed_images(model, uploads)
        out["images"] = [{"name": u.name, "embedding": e.tolist()} for u, e in zip(uploads, emb)]
    if texts:
        entry, emb = service.embed_texts(model, texts)
        out["texts"] = [{"text": t, "embedding": e.tolist()} for t, e in zip(texts, emb)]
    dim = len(next(iter(out.values()))[0]["embedding"])
    return {"model": entry.id, "architecture": entry.architecture, "dim": dim, **out}

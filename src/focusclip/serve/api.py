"""The JSON API beside the page (documented in docs/serve.md):

* ``GET /api/models``: the model picker's entries and the default;
* ``GET /api/presets``: label presets from the task registry;
* ``POST /api/predict`` (multipart): ``images`` (one or more files), ``labels`` (comma / line separated)
  or ``preset``, ``template`` (repeatable), ``topk``, ``model``; the people: ``rois`` (keypoints or
  boxes JSON files named after their photos), ``detect`` (the server's pose detector for photos without
  a file) or ``subjects`` (boxes per photo, JSON); ``focus`` (a focus mode, or true for ``auto``: also
  answer about each person) and ``person`` (only that one) -> top-k labels per image and per person;
* ``POST /api/embed`` (multipart): ``images`` and / or ``texts`` (repeatable), ``model`` -> L2-normalised
  embeddings.

Every error, the framework's included (a missing field, ``topk=abc``, a broken multipart body, a field
over the size limit, an unknown path), is ``{"error": "one line"}`` (:func:`install_error_handlers`)
with 400 (bad input), 401 (no or wrong secret, see :mod:`.access`), 404 (unknown model or path), 405,
413 (too large) or 415 (not an image); an unexpected failure is a 500 whose details stay in the server
log. Messages name uploads by their file names and models by their ids, never by a path on the server
(:func:`focusclip.serve.service.public_message`).
"""

from __future__ import annotations

import json
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
from focusclip.serve.service import Service, public_message
from focusclip.serve.uploads import UploadedImage, UploadError, check_count, over_limit, read_image

logger = logging.getLogger(__name__)


def error_response(status: int, message: str, roots: Sequence[str | os.PathLike] = (),
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": public_message(message, roots)}, status_code=status, headers=headers)


async def _answer(service: Service, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a worker thread; map the library's errors to JSON error responses."""
    try:
        return await run_in_threadpool(fn, *args)
    except UploadError as e:
        return error_response(e.status, str(e), service.private_roots())
    except UnknownModelError as e:
        return error_response(404, str(e), service.private_roots())
    except (ValueError, FileNotFoundError) as e:
        return error_response(400, _error_text(e), service.private_roots())
    except Exception:
        logger.exception("API request failed")
        return error_response(500, "internal error; the server log has the details")


def _error_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


def validation_message(errors: Sequence[dict[str, Any]]) -> str:
    """One line for FastAPI's validation errors: ``topk: input should be a valid integer (got 'abc')``."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header", "cookie")]
        field = ".".join(loc) or "request"
        if err.get("type") == "missing":
            parts.append(f"missing field {field!r} (required)")
            continue
        msg = str(err.get("msg", "invalid value")).rstrip(".")
        msg = msg[:1].lower() + msg[1:]
        given = err.get("input")
        got = f" (got {given!r})" if isinstance(given, (str, int, float)) and len(repr(given)) <= 60 else ""
        parts.append(f"{field}: {msg}{got}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: Any, service: Service, router: APIRouter) -> None:
    """Every error of the JSON API as ``{"error": "one line"}``: the framework's validation errors (400),
    its HTTP errors (a multipart body that cannot be parsed, a field over the size limit: 400), and
    paths under ``/api`` that are no endpoint (404) or not for this method (405)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def on_validation(request: Any, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(exc.errors()))

    async def on_http(request: Any, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 400 and request.url.path.startswith("/api"):
            detail = f"the request body could not be read as a multipart form: {detail}"
        return error_response(exc.status_code, detail, service.private_roots(), headers=getattr(exc, "headers", None))

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    known = {getattr(r, "path", ""): getattr(r, "methods", set()) for r in router.routes}

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                   include_in_schema=False)
    async def no_endpoint(rest: str) -> JSONResponse:
        path = "/api/" + rest
        if path in known:
            allowed = ", ".join(sorted(known[path]))
            return error_response(405, f"{path} takes {allowed}, not this method", headers={"Allow": allowed})
        return error_response(404, f"no API endpoint {path}; see GET /api/models, /api/presets, POST "
                              "/api/predict, /api/embed (docs/serve.md)")


async def _read_uploads(service: Service, files: list[UploadFile]) -> list[UploadedImage]:
    check_count(len(files), service.limits)
    cap = service.limits.max_file_bytes
    out = []
    for i, f in enumerate(files):
        name = f.filename or f"image {i}"
        data = await f.read(cap + 1)  # one byte over the cap is enough to reject
        if len(data) > cap:  # say how large the file is, not how much of it was read
            raise UploadError(over_limit(name, f.size or len(data), cap, "upload limit"), status=413)
        out.append(read_image(data, name, service.limits, f.content_type))
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
            raise UploadError(over_limit(name, f.size or len(data), cap, "limit for ROI files"), status=413)
        out.append((name, data))
    return out


#: ``focus`` values that mean "the whole image only" and "every person, the model's way"
FOCUS_OFF = ("", "false", "off", "none", "no", "0")
FOCUS_ON = ("true", "on", "yes", "1")


def parse_focus(value: str | None) -> str | None:
    """The ``focus`` field: off (None), ``true`` (``auto``) or a focus mode's name."""
    from focusclip.model.focus import FOCUS_AT_INFERENCE

    text = (value or "").strip().lower()
    if text in FOCUS_OFF:
        return None
    if text in FOCUS_ON:
        return "auto"
    if text not in FOCUS_AT_INFERENCE:
        raise ValueError(f"focus {value!r}: expected false, true or a focus mode ({', '.join(FOCUS_AT_INFERENCE)})")
    return text


def parse_subjects(text: str | None, names: Sequence[str]) -> dict[int, list[list[float]]]:
    """The ``subjects`` field: boxes [x1, y1, x2, y2] in a photo's own pixels, as ``{"photo.jpg": [box, ...]}``
    or, with one photo, ``[box, ...]``. Returns photo index -> boxes."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("subjects: JSON nested too deeply; expected {\"photo.jpg\": [[x1, y1, x2, y2], ...]}") from None
    except ValueError as e:
        raise ValueError(f"subjects: not valid JSON ({e})") from None
    if isinstance(data, list):
        if len(names) != 1:
            raise ValueError(f"subjects: a list of boxes is for one photo; with {len(names)} photos give "
                             '{"photo.jpg": [[x1, y1, x2, y2], ...], ...}')
        data = {names[0]: data}
    if not isinstance(data, dict):
        raise ValueError('subjects: expected {"photo.jpg": [[x1, y1, x2, y2], ...]} or a list of boxes')
    out = {}
    for name, boxes in data.items():
        if name not in names:
            raise ValueError(f"subjects: no photo called {name!r} was uploaded (photos: {', '.join(names)})")
        ok = isinstance(boxes, list) and all(
            isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in b) for b in boxes)
        if not ok or not boxes:
            raise ValueError(f"subjects of {name}: expected a non-empty list of boxes [x1, y1, x2, y2] (numbers)")
        out[list(names).index(name)] = [[float(v) for v in b] for b in boxes]
    return out


def _classify(service: Service, model: str | None, uploads: list[UploadedImage], rois: Sequence[tuple[str, bytes]],
              detect: bool, labels: list[str], templates: list[str], topk: int, focus: str | None,
              person: int | None = None, boxes: dict[int, list[list[float]]] | None = None) -> Any:
    """Prepare the ROIs (the files are read from a private temporary folder under neutral names) and classify."""
    from focusclip.serve.roi import with_boxes

    with tempfile.TemporaryDirectory(prefix="focusclip-roi-") as tmp:
        files = []
        for i, (name, data) in enumerate(rois):
            path = os.path.join(tmp, f"{i}.json")
            with open(path, "wb") as f:
                f.write(data)
            files.append((name, path))
        prepared = service.prepare(uploads, files, detect)
    prepared = [with_boxes(p, boxes[i]) if boxes and i in boxes else p for i, p in enumerate(prepared)]
    return service.classify(model, prepared, labels, templates, topk, focus, person)


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
        focus: Annotated[str | None, Form(description="false, true (auto) or a focus mode: also answer about each "
                                          "person")] = None,
        person: Annotated[int | None, Form(ge=1, description="only this person (1-based)")] = None,
        subjects: Annotated[str | None, Form(description='boxes per photo: {"photo.jpg": [[x1, y1, x2, y2], ...]}')]
        = None,
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
            mode = parse_focus(focus)
            if (subjects or person is not None) and mode is None:
                mode = "auto"  # boxes sent, or a person named, are to be asked about
            uploads = await _read_uploads(service, images)
            boxes = parse_subjects(subjects, [u.name for u in uploads])
            roi_files = await _read_roi_files(service, rois) if rois else []
        except UploadError as e:
            return error_response(e.status, str(e), service.private_roots())
        except ValueError as e:
            return error_response(400, str(e), service.private_roots())
        result = await _answer(service, _classify, service, model, uploads, roi_files, detect, label_list, templates,
                               topk, mode, person, boxes)
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
        return await _answer(service, _embed, service, model, uploads, texts or [])

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

"""The web page (Gradio Blocks): pick a model, drop in photos, type labels or pick a preset, see the
top-k labels as bars per photo, a table, CSV / JSON downloads, ROI overlays and text-to-image search.

Every handler catches the library's errors and shows them as a one-line message on the page (never a
stack trace); anything unexpected is logged with its traceback and shown as "internal error".
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

import gradio as gr

from focusclip.labels import parse_labels
from focusclip.predict import DEFAULT_TEMPLATE
from focusclip.serve import cards
from focusclip.serve.models import UnknownModelError
from focusclip.serve.presets import find_preset, parse_templates
from focusclip.serve.results import TABLE_HEADERS, table_rows, to_csv, to_json
from focusclip.serve.roi import PreparedImage
from focusclip.serve.service import Service, check_query
from focusclip.serve.uploads import IMAGE_EXTENSIONS, DecodedUploads, UploadedImage, UploadError, check_count

logger = logging.getLogger(__name__)

TITLE = "focusclip: zero-shot classification of people"
USER_ERRORS = (UploadError, UnknownModelError, ValueError, FileNotFoundError)
INTRO = """## focusclip: zero-shot classification of people
Drop in photos, type the labels to choose from (or pick a preset) and see how the model ranks them.
Everything runs on this server."""
FOOTER = """Programs can use the JSON API beside this page: `POST /api/predict`, `POST /api/embed`,
`GET /api/models`, `GET /api/presets` (see docs/serve.md in the focusclip repository)."""


class DownloadFolder:
    """Files offered for download, in a private temporary folder; only the newest ``keep`` sets are kept."""

    def __init__(self, keep: int = 32):
        self._tmp = tempfile.TemporaryDirectory(prefix="focusclip-serve-")
        self._dirs: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self.keep = keep

    def write(self, files: dict[str, str]) -> list[str]:
        """Write ``{file name: text}`` into a new sub-folder; returns the paths in the same order."""
        folder = tempfile.mkdtemp(dir=self._tmp.name)
        paths = []
        for name, text in files.items():
            path = os.path.join(folder, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            paths.append(path)
        with self._lock:
            self._dirs.append(folder)
            while len(self._dirs) > self.keep:
                shutil.rmtree(self._dirs.popleft(), ignore_errors=True)
        return paths

    def cleanup(self) -> None:
        self._tmp.cleanup()


def _paths(files: Any) -> list[str]:
    """File paths from a gr.File value (None, one path or a list of paths / file objects)."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [f if isinstance(f, str) else getattr(f, "path", None) or f.name for f in files]


def _read_photos(service: Service, decoded: DecodedUploads, files: Any) -> list[UploadedImage]:
    paths = _paths(files)
    check_count(len(paths), service.limits)
    return [decoded.read(p, service.limits) for p in paths]


def _model_choices(service: Service) -> list[tuple[str, str]]:
    return [(e.title, e.id) for e in service.models()]


def _model_note(service: Service, model_id: str | None) -> str:
    if not model_id:
        return "**No model found.** Train one with `make demo`, or start the server with `--models-root`."
    try:
        entry, _ = service.catalog.resolve(model_id)
    except UnknownModelError as e:
        return f"**{e}**"
    if not entry.roi:
        roi = "a CLIP baseline (no ROI branch)"
    elif entry.focus_at_inference:
        roi = f"with the subject-focused (ROI) branch; its focus `{entry.focus}` can classify focused on an ROI"
    else:
        roi = f"with the subject-focused (ROI) branch; its focus `{entry.focus}` acts in training only"
    note = f"`{entry.architecture or '?'}` at {entry.image_size or '?'} px, {roi}."
    return note + (f"\n\n**Warning:** {entry.warning}" if entry.warning else "")


def _internal_error(what: str) -> str:
    logger.exception("%s failed", what)
    return cards.message(f"{what} failed with an internal error; the server log has the details", error=True)


# ----------------------------------------------------------------------------------- handlers
def classify_photos(service: Service, decoded: DecodedUploads, downloads: DownloadFolder, model_id: str | None,
                    photos: Any, roi_files: Any, labels_text: str, template_text: str, topk: float,
                    detect: bool = False, focus: bool = False) -> tuple:
    """(status, cards, table, CSV download, JSON download) for the Classify button."""
    no_files = (gr.update(value=None, visible=False), gr.update(value=None, visible=False))
    try:
        uploads = _read_photos(service, decoded, photos)
        labels = parse_labels(labels_text, service.limits.max_labels)
        templates = parse_templates(template_text, [DEFAULT_TEMPLATE])
        prepared = service.prepare(uploads, [(os.path.basename(p), p) for p in _paths(roi_files)],
                                   bool(detect) and service.people_finder is not None)
        out = service.classify(model_id, prepared, labels, templates, int(topk), bool(focus))
    except USER_ERRORS as e:
        return (cards.message(str(e), error=True), "", _table([]), *no_files)
    except Exception:
        return (_internal_error("classification"), "", _table([]), *no_files)
    html = cards.cards(out.results, [_shown(p) for p in prepared], [_roi_note(p) for p in prepared])
    csv_path, json_path = downloads.write({"focusclip-predictions.csv": to_csv(out.results),
                                           "focusclip-predictions.json": to_json(out.to_dict())})
    n = len(out.results)
    status = (f"{n} photo{'s' if n > 1 else ''} classified by {out.model.id} over {len(out.labels)} labels "
              f"in {1000 * out.seconds:.0f} ms")
    if out.focus:
        focused = sum("focus_predictions" in r for r in out.results)
        status += f"; {focused} of {n} with focus on their ROI"
    if out.model.warning:
        status += " (untrained registered towers: the answers are not meaningful)"
    return (cards.message(status), html, _table(out.results),
            gr.update(value=csv_path, visible=True), gr.update(value=json_path, visible=True))


def _shown(p: PreparedImage) -> Any:
    return p.roi.overlay if p.roi is not None else p.upload.image


def _roi_note(p: PreparedImage) -> str:
    return f"ROI from {p.roi.source} ({p.roi.kind})" if p.roi is not None else p.note


FOCUS_UNABLE = "this model cannot focus at inference (roi.mode attention, alpha or pool can)"


def _can_focus(service: Service, model_id: str | None) -> bool:
    try:
        return bool(model_id) and service.catalog.resolve(model_id)[0].focus_at_inference
    except UnknownModelError:
        return False


def _focus_toggle(service: Service, model_id: str | None) -> Any:
    """The focus checkbox: usable only with a model whose focus mechanism works at inference."""
    able = _can_focus(service, model_id)
    return gr.update(interactive=able, value=False if not able else gr.skip(), info=None if able else FOCUS_UNABLE)


def _table(results: Sequence[dict[str, Any]]) -> Any:
    import pandas as pd  # a Gradio dependency

    return pd.DataFrame(table_rows(results), columns=TABLE_HEADERS)


def search_photos(service: Service, decoded: DecodedUploads, model_id: str | None, photos: Any, query: str,
                  state: dict | None) -> tuple:
    """(status, ranked gallery, embedding state): photos are embedded once per model and photo set."""
    try:
        check_query(query)  # before embedding the photos
        uploads = _read_photos(service, decoded, photos)
        loaded = service.model(model_id)
        key = [loaded.entry.id, loaded.version, [u.digest for u in uploads]]
        if not state or state.get("key") != key:
            _, emb = service.embed_images(loaded.entry.id, uploads)
            state = {"key": key, "embeddings": emb}
        ranked = service.search(loaded.entry.id, state["embeddings"], query)
    except USER_ERRORS as e:
        return cards.message(str(e), error=True), [], state
    except Exception:
        return _internal_error("search"), [], state
    paths = _paths(photos)
    gallery = [(paths[i], f"{score:+.3f}  {uploads[i].name}") for i, score in ranked]
    best = uploads[ranked[0][0]].name
    status = f"{len(ranked)} photos ranked by similarity to {query.strip()!r}; best match: {best}"
    return cards.message(status), gallery, state


def check_photos(service: Service, decoded: DecodedUploads, photos: Any) -> str:
    """The status line after an upload: how many photos are ready, or what is wrong with one."""
    if not _paths(photos):
        return ""
    try:
        uploads = _read_photos(service, decoded, photos)
    except USER_ERRORS as e:
        return cards.message(str(e), error=True)
    except Exception:
        return _internal_error("reading the upload")
    sizes = ", ".join(f"{u.name} {u.original_size[0]}x{u.original_size[1]}" for u in uploads[:4])
    more = f" and {len(uploads) - 4} more" if len(uploads) > 4 else ""
    return cards.message(f"{len(uploads)} photo{'s' if len(uploads) > 1 else ''} ready: {sizes}{more}")


def apply_preset(service: Service, preset_id: str) -> tuple:
    """(labels text, template text) of a preset; no change for "custom"."""
    if not preset_id:
        return gr.update(), gr.update()
    p = find_preset(service.presets, preset_id)
    return ", ".join(p.labels), "\n".join(p.templates)


# --------------------------------------------------------------------------------------- page
def build_page(service: Service, downloads: DownloadFolder, decoded: DecodedUploads | None = None) -> gr.Blocks:
    """The Blocks of the page; mount it with :func:`focusclip.serve.app.create_app`."""
    decoded = decoded or DecodedUploads()
    default = service.default_model_id()
    preset_choices = [("custom labels", "")] + [(p.title, p.id) for p in service.presets]
    private = {"api_visibility": "private"}  # the documented API is /api/...; Gradio's own stays internal
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(INTRO)
        with gr.Row():
            model = gr.Dropdown(_model_choices(service), value=default, label="Model", scale=5,
                                elem_id="fc-model", allow_custom_value=False)
            rescan = gr.Button("Rescan models", scale=0, size="sm", min_width=140, elem_id="fc-rescan")
        model_info = gr.Markdown(_model_note(service, default), elem_id="fc-model-info")
        with gr.Row():
            photos = gr.File(label="Photos", file_count="multiple", file_types=list(IMAGE_EXTENSIONS),
                             elem_id="fc-photos", height=160)
            rois = gr.File(label="ROI (optional): keypoints or boxes JSON, named after its photo"
                           + (" (else the pose detector finds the people)" if service.people_finder else ""),
                           file_count="multiple", file_types=[".json"], elem_id="fc-rois", height=160)
        upload_status = gr.HTML(elem_id="fc-upload-status")
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column(scale=2):
                    preset = gr.Dropdown(preset_choices, value="", label="Preset (from the task registry)",
                                         elem_id="fc-preset")
                    labels = gr.Textbox(label="Labels (comma or line separated)", lines=3, elem_id="fc-labels",
                                        placeholder="running, sitting, jumping, waving")
                    template = gr.Textbox(DEFAULT_TEMPLATE, label="Prompt template ({c} is the label; one per "
                                          "line to average several)", lines=1, elem_id="fc-template")
                    topk = gr.Slider(1, 10, value=3, step=1, label="Top-k", elem_id="fc-topk")
                    detect = gr.Checkbox(service.people_finder is not None, elem_id="fc-detect",
                                         label=f"Find people with the pose detector ({service.detector_name}) in "
                                         "photos without an ROI file", visible=service.people_finder is not None)
                    able = _can_focus(service, default)
                    focus = gr.Checkbox(False, label="Also classify with focus on each photo's ROI (side by side)",
                                        elem_id="fc-focus", interactive=able, info=None if able else FOCUS_UNABLE)
                    go = gr.Button("Classify", variant="primary", elem_id="fc-classify")
                with gr.Column(scale=3, elem_id="fc-classify-output"):
                    status = gr.HTML(elem_id="fc-status")
                    result_cards = gr.HTML(elem_id="fc-cards")
            table = gr.Dataframe(_table([]), label="All photos", interactive=False, elem_id="fc-table")
            with gr.Row():
                csv_file = gr.DownloadButton("Download CSV", visible=False, elem_id="fc-csv")
                json_file = gr.DownloadButton("Download JSON", visible=False, elem_id="fc-json")
        with gr.Tab("Search"):
            with gr.Row():
                query = gr.Textbox(label="Find the photo that shows...", elem_id="fc-query", scale=4,
                                   placeholder="a person jumping")
                search = gr.Button("Search the photos", variant="primary", elem_id="fc-search", scale=1)
            search_status = gr.HTML(elem_id="fc-search-status")
            gallery = gr.Gallery(label="Photos, best match first", columns=4, elem_id="fc-gallery")
            embeddings = gr.State(None)
        gr.Markdown(FOOTER)

        rescan.click(lambda current: gr.update(choices=_refresh(service), value=current), model, model, **private)
        model.change(lambda m: _model_note(service, m), model, model_info, **private)
        model.change(lambda m: _focus_toggle(service, m), model, focus, **private)
        preset.change(lambda p: apply_preset(service, p), preset, [labels, template], **private)
        photos.change(lambda f: check_photos(service, decoded, f), photos, upload_status, **private)
        go.click(lambda *a: classify_photos(service, decoded, downloads, *a),
                 [model, photos, rois, labels, template, topk, detect, focus], [status, result_cards, table, csv_file, json_file],
                 **private)
        for trigger in (query.submit, search.click):
            trigger(lambda *a: search_photos(service, decoded, *a), [model, photos, query, embeddings],
                    [search_status, gallery, embeddings], **private)
    return page


def _refresh(service: Service) -> list[tuple[str, str]]:
    service.catalog.refresh()
    return _model_choices(service)


def page_css() -> str:
    return cards.CARD_CSS


def theme() -> Any:
    """Gradio's default look with system fonts only (no web fonts to fetch)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


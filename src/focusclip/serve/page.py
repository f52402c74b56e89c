"""The web page (Gradio Blocks): pick a model, drop in photos, type labels or pick a preset, see the
top-k labels as bars per photo and per person, a table, CSV / JSON downloads, and text-to-image search.

The people of a photo (its keypoints / boxes file's, or the pose detector's) are outlined and numbered
on its card, with one column of bars per person beside the whole image's (focus mode: the dropdown).
Clicking a person, or dragging a box on the photo, asks about that one (:func:`ask_about`).

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
from focusclip.serve.roi import PreparedImage, match_roi_files, with_boxes
from focusclip.serve.service import Service, check_query, focus_choices
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
        roi = ("no focus mechanism of its own (a CLIP baseline): asked about a person, `auto` biases a ViT's "
               "attention towards them (another tower: blurs the rest)")
    elif entry.focus_at_inference:
        roi = f"with the subject-focused (ROI) branch: asked about a person, `auto` uses its own `{entry.focus}` focus"
    else:
        roi = (f"with the subject-focused (ROI) branch, trained with `{entry.focus}`: asked about a person, `auto` "
               "dims the rest (the highlight at inference)")
    note = f"`{entry.architecture or '?'}` at {entry.image_size or '?'} px, {roi}."
    return note + (f"\n\n**Warning:** {entry.warning}" if entry.warning else "")


def _internal_error(what: str) -> str:
    logger.exception("%s failed", what)
    return cards.message(f"{what} failed with an internal error; the server log has the details", error=True)


# ----------------------------------------------------------------------------------- handlers
#: the focus dropdown's value for "the whole image only"
FOCUS_OFF = "off"
#: image-space prompts: every model can use them (what the dropdown offers before a model is loaded)
IMAGE_SPACE_FOCUS = ("auto", "crop", "blur", "circle", "dim")


def _mode(focus: str | None) -> str | None:
    return None if not focus or focus == FOCUS_OFF else str(focus)


def _outlines(p: PreparedImage) -> list[dict[str, Any]]:
    """Every person of a prepared photo (its ROI's and any asked about) in the pixels of the photo's file."""
    kept, original = p.upload.size, p.upload.original_size or p.upload.size
    sx, sy = original[0] / kept[0], original[1] / kept[1]
    subjects = list(p.roi.subjects if p.roi is not None else ()) + list(p.asked or ())
    out = []
    for s in subjects:
        d = s.describe()
        d["box"] = [None if v is None else round(v * k, 2) for v, k in zip(d["box"], (sx, sy, sx, sy))]
        out.append(d)
    return out


def _status(out: Any, n: int) -> str:
    status = (f"{n} photo{'s' if n > 1 else ''} classified by {out.model.id} over {len(out.labels)} labels "
              f"in {1000 * out.seconds:.0f} ms")
    if out.focus is not None:
        people = sum(len(r.get("people", [])) for r in out.results)
        status += f"; {people} {'person' if people == 1 else 'people'} asked about (focus {out.focus})"
    if out.model.warning:
        status += " (untrained registered towers: the answers are not meaningful)"
    return status


def classify_photos(service: Service, decoded: DecodedUploads, downloads: DownloadFolder, model_id: str | None,
                    photos: Any, roi_files: Any, labels_text: str, template_text: str, topk: float,
                    detect: bool = False, focus: str | None = FOCUS_OFF) -> tuple:
    """(status, cards, table, CSV download, JSON download, shown state) for the Classify button."""
    no_files = (gr.update(value=None, visible=False), gr.update(value=None, visible=False))
    try:
        uploads = _read_photos(service, decoded, photos)
        labels = parse_labels(labels_text, service.limits.max_labels)
        templates = parse_templates(template_text, [DEFAULT_TEMPLATE])
        prepared = service.prepare(uploads, [(os.path.basename(p), p) for p in _paths(roi_files)],
                                   bool(detect) and service.people_finder is not None)
        out = service.classify(model_id, prepared, labels, templates, int(topk), _mode(focus))
    except USER_ERRORS as e:
        return (cards.message(service.public(e), error=True), "", _table([]), *no_files, None)
    except Exception:
        return (_internal_error("classification"), "", _table([]), *no_files, None)
    shown = {"results": out.results, "outlines": [_outlines(p) for p in prepared],
             "notes": [_roi_note(p) for p in prepared], "model": out.model.id, "labels": out.labels,
             "templates": out.templates}
    return (cards.message(_status(out, len(out.results))), _cards_html(service, decoded, photos, shown), _table(out.results),
            *_downloads(downloads, out.to_dict()), shown)


def ask_about(service: Service, decoded: DecodedUploads, downloads: DownloadFolder, model_id: str | None,
              photos: Any, roi_files: Any, labels_text: str, template_text: str, topk: float, detect: bool,
              focus: str | None, shown: dict | None, evt: gr.EventData) -> tuple:
    """A click on a person (``{"photo", "person"}``) or a box dragged on a photo (``{"photo", "box"}`` in the
    photo's pixels): that photo's card answers about that one, beside the whole image. Same outputs as
    :func:`classify_photos`."""
    data = getattr(evt, "_data", None) or {}
    keep = (gr.skip(),) * 3
    if not isinstance(data, dict) or "photo" not in data or not ({"person", "box"} & set(data)):
        return (gr.skip(), gr.skip(), *keep, gr.skip())  # a click beside the people: nothing to ask
    try:
        if not shown:
            raise ValueError("classify the photos first, then click a person")
        i = int(data["photo"])
        uploads = _read_photos(service, decoded, photos)
        if not 0 <= i < len(uploads) or i >= len(shown["results"]):
            raise ValueError("the photos changed since they were classified; classify them again")
        labels = parse_labels(labels_text, service.limits.max_labels)
        templates = parse_templates(template_text, [DEFAULT_TEMPLATE])
        names = [os.path.basename(p) for p in _paths(roi_files)]
        matched = match_roi_files([u.name for u in uploads], names)
        files = [(names[matched[i]], _paths(roi_files)[matched[i]])] if i in matched else []
        (p,) = service.prepare([uploads[i]], files, bool(detect) and service.people_finder is not None)
        mode = _mode(focus) or "auto"  # asking about one person means focusing on them
        if "box" in data:
            box = [float(v) for v in data["box"]]
            p = with_boxes(p, [box], first=max([s.person for s in p.people], default=0) + 1)
            person = None
        else:
            person = int(data["person"])
        out = service.classify(model_id, [p], labels, templates, int(topk), mode, person)
    except USER_ERRORS as e:
        return (cards.message(service.public(e), error=True), gr.skip(), *keep, gr.skip())
    except Exception:
        return (_internal_error("asking about a person"), gr.skip(), *keep, gr.skip())
    result = {**out.results[0], "asked": True}
    shown = {**shown, "results": [*shown["results"]]}
    shown["results"][i] = result
    shown["outlines"] = [*shown["outlines"]]
    shown["outlines"][i] = _outlines(p)
    who = "your box" if "box" in data else f"person {data['person']}"
    asked = result["people"][0] if result["people"] else {}
    how = f"focus {asked.get('focus')}" if asked.get("focused") else f"not focused: {asked.get('note')}"
    status = f"{result['image']}: asked about {who} ({how}) with {out.model.id} in {1000 * out.seconds:.0f} ms"
    payload = {**out.to_dict(), "results": shown["results"]}
    return (cards.message(status), _cards_html(service, decoded, photos, shown), _table(shown["results"]),
            *_downloads(downloads, payload), shown)


def _downloads(downloads: DownloadFolder, payload: dict[str, Any]) -> tuple:
    csv_path, json_path = downloads.write({"focusclip-predictions.csv": to_csv(payload["results"]),
                                           "focusclip-predictions.json": to_json(payload)})
    return gr.update(value=csv_path, visible=True), gr.update(value=json_path, visible=True)


def _cards_html(service: Service, decoded: DecodedUploads, photos: Any, shown: dict[str, Any]) -> str:
    images = []
    for path in _paths(photos)[:len(shown["results"])]:
        try:
            images.append(decoded.read(path, service.limits).image)
        except USER_ERRORS:
            images.append(None)
    return cards.cards(shown["results"], images, shown["notes"], shown["outlines"])


def _roi_note(p: PreparedImage) -> str:
    if p.roi is None:
        return p.note
    n = len(p.roi.subjects)
    return f"ROI from {p.roi.source} ({p.roi.kind}): {n} {'person' if n == 1 else 'people'}"


def _focus_dropdown(service: Service, model_id: str | None) -> Any:
    """The focus choices of a model: the modes it can use (its own, attention for a ViT, image-space ones)."""
    choices, value = _focus_choices(service, model_id), "auto"
    return gr.update(choices=choices, value=value)


def _focus_choices(service: Service, model_id: str | None) -> list[tuple[str, str]]:
    modes: tuple[str, ...] = IMAGE_SPACE_FOCUS
    if model_id:
        try:
            modes = focus_choices(service.model(model_id))
        except Exception as e:  # the picker still works; the classify button reports the error
            logger.info("focus modes of %s unknown: %s", model_id, e)
    return [("whole image only", FOCUS_OFF)] + [(m, m) for m in modes]


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
        return cards.message(service.public(e), error=True), [], state
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
        return cards.message(service.public(e), error=True)
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
                    focus = gr.Dropdown(_focus_choices(service, default), value="auto", elem_id="fc-focus",
                                        label="Ask about each person: focus mode",
                                        info="auto: the model's own focus (dim for highlight-trained models), else attention on a ViT and blur "
                                        "on another tower; crop, blur, circle, dim work "
                                        "with every model, attention with ViT towers (docs/focus.md)")
                    go = gr.Button("Classify", variant="primary", elem_id="fc-classify")
                with gr.Column(scale=3, elem_id="fc-classify-output"):
                    status = gr.HTML(elem_id="fc-status")
                    result_cards = gr.HTML(elem_id="fc-cards", js_on_load=cards.ASK_JS)
                    shown = gr.State(None)
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
        model.change(lambda m: _focus_dropdown(service, m), model, focus, **private)
        preset.change(lambda p: apply_preset(service, p), preset, [labels, template], **private)
        photos.change(lambda f: check_photos(service, decoded, f), photos, upload_status, **private)
        outputs = [status, result_cards, table, csv_file, json_file, shown]
        inputs = [model, photos, rois, labels, template, topk, detect, focus]
        go.click(lambda *a: classify_photos(service, decoded, downloads, *a), inputs, outputs, **private)

        def ask(model_id: str | None, photos: Any, roi_files: Any, labels_text: str, template_text: str, topk: float,
                detect: bool, focus: str | None, state: dict | None, evt: gr.EventData) -> tuple:
            return ask_about(service, decoded, downloads, model_id, photos, roi_files, labels_text, template_text, topk,
                             detect, focus, state, evt)

        result_cards.click(ask, [*inputs, shown], outputs, **private)
        for trigger in (query.submit, search.click):
            trigger(lambda *a: search_photos(service, decoded, *a), [model, photos, query, embeddings],
                    [search_status, gallery, embeddings], **private)
    _no_outside_examples(page)
    return page


def _no_outside_examples(page: gr.Blocks) -> None:
    """Gradio puts an example value into the page's config for every component, for its API docs; for files
    and images that is a URL on github.com. The page documents no Gradio API, so there are none."""
    for block in page.blocks.values():
        if hasattr(block, "example_inputs"):
            block.example_inputs = _no_example


def _no_example() -> None:
    return None


def _refresh(service: Service) -> list[tuple[str, str]]:
    service.catalog.refresh()
    return _model_choices(service)


def page_css() -> str:
    return cards.CARD_CSS


def theme() -> Any:
    """Gradio's default look with system fonts only (no web fonts to fetch)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


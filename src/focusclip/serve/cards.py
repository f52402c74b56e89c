"""HTML for the page's results: one card per photo with its top-k labels as probability bars.

A photo with people shows them outlined and numbered (an SVG over the photo, in the photo's pixels);
its answers are columns side by side: the whole image, then one per person. Clicking a person, or
dragging a box on the photo, asks about that one (:data:`ASK_JS`, run by the page, sends
``{"photo", "person"}`` or ``{"photo", "box"}`` to the server).

Everything user-supplied (file names, labels) is escaped; thumbnails are inline ``data:`` JPEGs, so a
card references no URL at all. The styles (``CARD_CSS``) use the Gradio theme's CSS variables and so
follow its light / dark mode.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

THUMBNAIL_SIDE = 640  # shown at up to 320 px: sharp on high-density screens
#: outline colours of persons 1, 2, ... (repeating)
PERSON_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")

CARD_CSS = """
.fc-cards { display: flex; flex-direction: column; gap: 10px; }
.fc-card { display: flex; gap: 12px; border: 1px solid var(--border-color-primary); border-radius: 8px;
           padding: 10px; background: var(--block-background-fill); }
.fc-thumb { flex: 0 0 auto; max-width: 320px; }
.fc-thumb img { max-width: 320px; max-height: 320px; border-radius: 4px; display: block; }
.fc-photo { position: relative; display: inline-block; line-height: 0; touch-action: none; cursor: crosshair; }
.fc-photo svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; overflow: visible; }
.fc-person { cursor: pointer; }
.fc-person rect { fill: transparent; stroke-width: 3px; vector-effect: non-scaling-stroke; }
.fc-person:hover rect, .fc-person.fc-asked rect { fill: rgba(255, 255, 255, 0.18); stroke-width: 5px; }
.fc-person text { font-weight: bold; paint-order: stroke; stroke: #000; stroke-width: 3px;
                  vector-effect: non-scaling-stroke; fill: #fff; }
.fc-drawing { fill: rgba(255, 255, 255, 0.2); stroke: #fff; stroke-dasharray: 4 3; stroke-width: 2px;
              vector-effect: non-scaling-stroke; pointer-events: none; }
.fc-hint { font-size: 0.75em; color: var(--body-text-color-subdued); margin-top: 4px; line-height: 1.3; }
.fc-note { font-size: 0.75em; color: var(--body-text-color-subdued); }
.fc-bars { flex: 1; min-width: 0; }
.fc-columns { display: flex; gap: 16px; flex-wrap: wrap; }
.fc-columns > div { flex: 1 1 140px; min-width: 0; }
.fc-answer { border-top: 3px solid var(--border-color-primary); padding-top: 2px; }
.fc-column-title { font-size: 0.8em; color: var(--body-text-color-subdued); margin-bottom: 2px; }
.fc-card h4 { margin: 0 0 6px 0; font-size: 0.95em; overflow-wrap: anywhere; }
.fc-roi { font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 4px; }
.fc-bar-row { margin: 5px 0; }
.fc-bar-label { display: flex; justify-content: space-between; gap: 8px; font-size: 0.9em; }
.fc-bar-track { background: var(--background-fill-secondary); border-radius: 3px; height: 10px; }
.fc-bar-fill { background: var(--color-accent); border-radius: 3px; height: 10px; }
.fc-message { padding: 8px 12px; border-radius: 6px; margin: 4px 0; }
.fc-error { background: #fde8e8; color: #8a1c1c; border: 1px solid #f5b5b5; }
.fc-info { background: var(--background-fill-secondary); }
"""


def thumbnail_data_uri(image: Any, side: int = THUMBNAIL_SIDE) -> str:
    """A small JPEG of a PIL image as a ``data:`` URI."""
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((side, side))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar(label: str, prob: float, score: float) -> str:
    pct = 100.0 * prob
    return (f'<div class="fc-bar-row" title="cosine {score:+.3f}"><div class="fc-bar-label">'
            f'<span class="fc-label">{html.escape(label)}</span><span class="fc-prob">{pct:.1f}%</span></div>'
            f'<div class="fc-bar-track"><div class="fc-bar-fill" style="width:{pct:.1f}%"></div></div></div>')


def _bars(predictions: Sequence[dict[str, Any]]) -> str:
    return "".join(_bar(p["label"], p["prob"], p["score"]) for p in predictions)


def _bars_of(predictions: Sequence[dict[str, Any]]) -> str:
    return f'<div class="fc-bar-list">{_bars(predictions)}</div>'


def colour(person: int) -> str:
    return PERSON_COLOURS[(int(person) - 1) % len(PERSON_COLOURS)]


def _outlines(outlines: Sequence[dict[str, Any]], size: Sequence[int], asked: set[int]) -> str:
    """The people as numbered rectangles in an SVG of the photo's pixel frame."""
    w, h = (max(1, int(v)) for v in size)
    font = max(10.0, 0.07 * max(w, h))
    shapes = []
    for o in outlines:
        box = o.get("box") or []
        if len(box) != 4 or any(v is None for v in box):
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, x2 = sorted((max(0.0, min(w, x1)), max(0.0, min(w, x2))))
        y1, y2 = sorted((max(0.0, min(h, y1)), max(0.0, min(h, y2))))
        k = int(o["person"])
        cls = "fc-person fc-asked" if k in asked else "fc-person"
        shapes.append(f'<g class="{cls}" data-person="{k}"><title>person {k}</title>'
                      f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
                      f'style="stroke:{colour(k)}"></rect><text x="{x1 + 0.15 * font:.1f}" y="{y1 + font:.1f}" '
                      f'font-size="{font:.1f}">{k}</text></g>')
    return (f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none">'
            f'{"".join(shapes)}</svg>')


def _person_column(p: dict[str, Any]) -> str:
    k = int(p["person"])
    how = f"focus {p['focus']}" if p.get("focused") else "not focused"
    title = "your box" if p.get("source") == "click" else f"person {k}"
    note = f'<div class="fc-note">{html.escape(p["note"])}</div>' if p.get("note") else ""
    return (f'<div class="fc-answer fc-person-answer" data-person="{k}" style="border-top-color:{colour(k)}">'
            f'<div class="fc-column-title">{html.escape(title)} ({k}) &middot; {html.escape(how)}</div>{note}'
            f'{_bars_of(p["predictions"])}</div>')


def card(result: dict[str, Any], image: Any | None = None, roi_note: str = "", photo: int = 0,
         outlines: Sequence[dict[str, Any]] | None = None) -> str:
    """One photo's card: the photo (its people outlined and numbered, ``outlines`` in the photo's pixels,
    default the result's people), its name and the bars: one column for the whole image and, with
    ``people`` in the result, one per person side by side."""
    name = html.escape(result["image"])
    people = result.get("people")
    outlines = list(people or []) if outlines is None else list(outlines)
    asked = {int(p["person"]) for p in people or []} if result.get("asked") else set()
    parts = [f'<div class="fc-card" data-photo="{int(photo)}">']
    if image is not None:
        size = result.get("size") or list(image.size)
        note = f'<div class="fc-roi">{html.escape(roi_note)}</div>' if roi_note else ""
        hint = ('<div class="fc-hint">click a person, or drag a box, to ask about one</div>'
                if people is not None else "")
        parts.append(f'<div class="fc-thumb"><div class="fc-photo" data-photo="{int(photo)}" data-width="{int(size[0])}" '
                     f'data-height="{int(size[1])}"><img alt="{name}" draggable="false" src="{thumbnail_data_uri(image)}">'
                     f'{_outlines(outlines, size, asked)}</div>{note}{hint}</div>')
    parts.append(f'<div class="fc-bars"><h4>{name}</h4>')
    if people is not None:
        columns = [f'<div class="fc-answer fc-whole"><div class="fc-column-title">whole image</div>'
                   f'{_bars_of(result["predictions"])}</div>'] + [_person_column(p) for p in people]
        parts.append(f'<div class="fc-columns">{"".join(columns)}</div>')
    else:
        parts.append(_bars(result["predictions"]))
    parts.append("</div></div>")
    return "".join(parts)


def cards(results: Sequence[dict[str, Any]], images: Sequence[Any | None] = (),
          roi_notes: Sequence[str] = (), outlines: Sequence[Sequence[dict[str, Any]] | None] = ()) -> str:
    images = list(images) + [None] * (len(results) - len(images))
    notes = list(roi_notes) + [""] * (len(results) - len(roi_notes))
    lines = list(outlines) + [None] * (len(results) - len(outlines))
    return '<div class="fc-cards">' + "".join(card(r, im, n, i, o) for i, (r, im, n, o)
                                              in enumerate(zip(results, images, notes, lines))) + "</div>"


#: Run by the cards' HTML component (``element`` is its root, ``trigger`` sends an event with data to the
#: server): a click on a person asks about that person, a drag on a photo asks about the box drawn
#: (in the photo's pixels, read from the SVG's frame).
ASK_JS = """
let drag = null;
const frame = (photo, ev) => {
  const svg = photo.querySelector('svg'); const r = svg.getBoundingClientRect();
  const w = +photo.dataset.width, h = +photo.dataset.height;
  return [Math.min(w, Math.max(0, (ev.clientX - r.left) / r.width * w)),
          Math.min(h, Math.max(0, (ev.clientY - r.top) / r.height * h))];
};
element.addEventListener('pointerdown', (ev) => {
  const photo = ev.target.closest('.fc-photo'); if (!photo || ev.button !== 0) return;
  ev.preventDefault();
  drag = {photo, x: ev.clientX, y: ev.clientY, start: frame(photo, ev), rect: null,
          person: ev.target.closest('.fc-person')};
});
element.addEventListener('pointermove', (ev) => {
  if (!drag || Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) < 5) return;
  const [x, y] = frame(drag.photo, ev); const [x0, y0] = drag.start;
  if (!drag.rect) {
    const svg = drag.photo.querySelector('svg'); drag.rect = document.createElementNS(svg.namespaceURI, 'rect');
    drag.rect.setAttribute('class', 'fc-drawing'); svg.appendChild(drag.rect);
  }
  drag.rect.setAttribute('x', Math.min(x, x0)); drag.rect.setAttribute('y', Math.min(y, y0));
  drag.rect.setAttribute('width', Math.abs(x - x0)); drag.rect.setAttribute('height', Math.abs(y - y0));
});
const finish = (ev) => {
  if (!drag) return; const d = drag; drag = null;
  const photo = +d.photo.dataset.photo;
  if (d.rect) {
    const [x, y] = frame(d.photo, ev); const [x0, y0] = d.start;
    if (Math.abs(x - x0) >= 2 && Math.abs(y - y0) >= 2) {
      trigger('click', {photo, box: [Math.min(x, x0), Math.min(y, y0), Math.max(x, x0), Math.max(y, y0)].map(v => Math.round(v * 10) / 10)});
      return;
    }
    d.rect.remove();
  }
  if (d.person) trigger('click', {photo, person: +d.person.dataset.person});
};
element.addEventListener('pointerup', finish);
element.addEventListener('pointercancel', () => { if (drag && drag.rect) drag.rect.remove(); drag = null; });
"""


def message(text: str, error: bool = False) -> str:
    """A status line: ``fc-error`` for errors, ``fc-info`` otherwise."""
    kind = "fc-error" if error else "fc-info"
    role = ' role="alert"' if error else ""
    return f'<div class="fc-message {kind}"{role}>{html.escape(text)}</div>'

"""HTML for the page's results: one card per photo with its top-k labels as probability bars.

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

THUMBNAIL_SIDE = 320  # shown at 160 px: sharp on high-density screens

CARD_CSS = """
.fc-cards { display: flex; flex-direction: column; gap: 10px; }
.fc-card { display: flex; gap: 12px; border: 1px solid var(--border-color-primary); border-radius: 8px;
           padding: 10px; background: var(--block-background-fill); }
.fc-thumb { flex: 0 0 160px; }
.fc-thumb img { max-width: 160px; max-height: 160px; border-radius: 4px; display: block; }
.fc-bars { flex: 1; min-width: 0; }
.fc-columns { display: flex; gap: 16px; }
.fc-columns > div { flex: 1; min-width: 0; }
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


def card(result: dict[str, Any], image: Any | None = None, roi_note: str = "") -> str:
    """One photo's card: thumbnail (its ROI overlay when there is one), name and one bar per prediction;
    with ``focus_predictions`` two columns, without and with focus on the ROI."""
    name = html.escape(result["image"])
    parts = ['<div class="fc-card">']
    if image is not None:
        note = f'<div class="fc-roi">{html.escape(roi_note)}</div>' if roi_note else ""
        parts.append(f'<div class="fc-thumb"><img alt="{name}" src="{thumbnail_data_uri(image)}">{note}</div>')
    parts.append(f'<div class="fc-bars"><h4>{name}</h4>')
    if "focus_predictions" in result:
        parts.append('<div class="fc-columns"><div class="fc-plain"><div class="fc-column-title">without focus</div>'
                     f'{_bars(result["predictions"])}</div><div class="fc-focused"><div class="fc-column-title">'
                     f'with focus on the ROI</div>{_bars(result["focus_predictions"])}</div></div>')
    else:
        parts.append(_bars(result["predictions"]))
    parts.append("</div></div>")
    return "".join(parts)


def cards(results: Sequence[dict[str, Any]], images: Sequence[Any | None] = (),
          roi_notes: Sequence[str] = ()) -> str:
    images = list(images) + [None] * (len(results) - len(images))
    notes = list(roi_notes) + [""] * (len(results) - len(roi_notes))
    return '<div class="fc-cards">' + "".join(card(r, im, n) for r, im, n in zip(results, images, notes)) + "</div>"


def message(text: str, error: bool = False) -> str:
    """A status line: ``fc-error`` for errors, ``fc-info`` otherwise."""
    kind = "fc-error" if error else "fc-info"
    role = ' role="alert"' if error else ""
    return f'<div class="fc-message {kind}"{role}>{html.escape(text)}</div>'

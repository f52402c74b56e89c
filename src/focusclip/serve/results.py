"""Classification results as a table, CSV and JSON (what the page shows and offers for download)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from focusclip.io import csv_row, json_text

TABLE_HEADERS = ["image", "focus", "rank", "label", "probability", "cosine"]


def table_rows(results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One row per (image, focus, rank): image, "none" or the ROI's kind (rows of the answer focused on
    it), rank, label, probability (0-1), cosine similarity."""
    rows = []
    for r in results:
        answers = [("none", r["predictions"])]
        if "focus_predictions" in r:
            answers.append(((r.get("roi") or {}).get("kind", "roi"), r["focus_predictions"]))
        rows += [[r["image"], focus, rank, p["label"], round(p["prob"], 6), round(p["score"], 6)]
                 for focus, preds in answers for rank, p in enumerate(preds, 1)]
    return rows


def to_csv(results: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; a CR inside a cell gets quoted
    writer.writerow(TABLE_HEADERS)
    writer.writerows(csv_row(row) for row in table_rows(results))  # labels are user text: no formulas
    return buf.getvalue()


def to_json(payload: dict[str, Any]) -> str:
    return json_text(payload, indent=2, where="results JSON") + "\n"

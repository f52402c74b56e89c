"""Classification results as a table, CSV and JSON (what the page shows and offers for download)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from focusclip.io import csv_row, json_text

TABLE_HEADERS = ["image", "person", "focus", "rank", "label", "probability", "cosine"]


def table_rows(results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One row per (image, person, rank): image, "whole" or the person's id, the focus mode used ("none"
    for the whole image and for a person whose ROI marks nothing), rank, label, probability (0-1),
    cosine similarity."""
    rows = []
    for r in results:
        answers = [("whole", "none", r["predictions"])]
        answers += [(q["person"], q["focus"] if q["focused"] else "none", q["predictions"]) for q in r.get("people", [])]
        rows += [[r["image"], who, focus, rank, p["label"], round(p["prob"], 6), round(p["score"], 6)]
                 for who, focus, preds in answers for rank, p in enumerate(preds, 1)]
    return rows


def to_csv(results: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; a CR inside a cell gets quoted
    writer.writerow(TABLE_HEADERS)
    writer.writerows(csv_row(row) for row in table_rows(results))  # labels are user text: no formulas
    return buf.getvalue()


def to_json(payload: dict[str, Any]) -> str:
    return json_text(payload, indent=2, where="results JSON") + "\n"

"""A contact sheet: a grid of images with their activity / age / expression labels."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from focusclip.data.records import Record, record_id, resolve_image
from focusclip.io import atomic_save

logger = logging.getLogger(__name__)

# Bones drawn when ``skeleton=True`` (MPII joint ids).
# fmt: off
_BONES = ((0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11),
          (11, 10), (7, 13), (13, 14), (14, 15))
# fmt: on


def _caption(record: Record) -> str:
    labels = record.get("labels") or {}
    act = labels.get("activity") or (record.get("activity") or {}).get("name", "?")
    return f"{act}\n{labels.get('age', '?')}, {labels.get('expression', '?')}"


def _draw_skeleton(draw: ImageDraw.ImageDraw, record: Record, sx: float, sy: float) -> None:
    for person in record.get("people") or []:
        joints, vis = person.get("joints") or [], person.get("visible") or []
        if len(joints) != 16:
            continue
        for a, b in _BONES:
            if vis[a] and vis[b]:
                draw.line(
                    [(joints[a][0] * sx, joints[a][1] * sy), (joints[b][0] * sx, joints[b][1] * sy)],
                    fill=(255, 255, 0),
                    width=2,
                )


def contact_sheet(
    records: Sequence[Record],
    root: str | os.PathLike,
    path: str | os.PathLike,
    n: int = 16,
    cols: int = 4,
    thumb: int = 192,
    skeleton: bool = False,
) -> Path:
    """Save a PNG grid of the first ``n`` records' images (resolved against ``root``) with their labels.

    ``skeleton=True`` also draws the visible joints' bones. Returns the written path.
    """
    chosen = list(records)[:n]
    if not chosen:
        raise ValueError(f"contact_sheet: no records to draw for {path}")
    cols = max(1, min(cols, len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    label_h = 28
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, rec in enumerate(chosen):
        img_path = resolve_image(rec, root)
        try:
            with Image.open(img_path) as im:
                im = im.convert("RGB")
                w, h = im.size
                tile = im.resize((thumb, thumb), Image.BILINEAR)
        except OSError as e:
            raise FileNotFoundError(
                f"contact_sheet: cannot read image {img_path} of record {record_id(rec)!r}: {e}"
            ) from None
        if skeleton:
            _draw_skeleton(ImageDraw.Draw(tile), rec, thumb / w, thumb / h)
        x, y = (k % cols) * thumb, (k // cols) * (thumb + label_h)
        sheet.paste(tile, (x, y))
        draw.multiline_text((x + 3, y + thumb + 1), _caption(rec), fill=(0, 0, 0), font=font, spacing=1)
    path = Path(path)
    atomic_save(path, lambda p: sheet.save(p, format="PNG"))
    logger.info("contact sheet of %d images: %s", len(chosen), path)
    return path

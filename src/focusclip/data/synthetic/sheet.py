"""A contact sheet: a grid of images with their activity / age / expression labels."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from focusclip.data.records import Record, record_id, record_keypoints, resolve_image
from focusclip.drawing import draw_skeleton
from focusclip.errors import InputError
from focusclip.images import open_rgb
from focusclip.io import atomic_save

logger = logging.getLogger(__name__)


def _caption(record: Record) -> str:
    labels = record.get("labels") or {}
    act = labels.get("activity") or (record.get("activity") or {}).get("name", "?")
    return f"{act}\n{labels.get('age', '?')}, {labels.get('expression', '?')}"


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
        raise InputError(f"contact_sheet: no records to draw for {path}")
    cols = max(1, min(cols, len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    label_h = 28
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, rec in enumerate(chosen):
        img_path = resolve_image(rec, root)
        try:
            im = open_rgb(img_path)
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f"contact_sheet: record {record_id(rec)!r}: {e}") from None
        w, h = im.size
        tile = im.resize((thumb, thumb), Image.BILINEAR)
        if skeleton:
            joints, visible = record_keypoints(rec)
            tile = draw_skeleton(tile, joints * np.array([thumb / w, thumb / h]), visible, color=(255, 255, 0),
                                 width=2, dots=False)
        x, y = (k % cols) * thumb, (k // cols) * (thumb + label_h)
        sheet.paste(tile, (x, y))
        draw.multiline_text((x + 3, y + thumb + 1), _caption(rec), fill=(0, 0, 0), font=font, spacing=1)
    path = Path(path)
    atomic_save(path, lambda p: sheet.save(p, format="PNG"))
    logger.info("contact sheet of %d images: %s", len(chosen), path)
    return path

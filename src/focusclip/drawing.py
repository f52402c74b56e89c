"""Pictures people look at: heatmap overlays, skeletons, ROI overlays of an image, heatmap PNGs.

Images in, images out: nothing here reads keypoint files, runs detectors or writes files (that is
:mod:`focusclip.overlays`). Used by :mod:`focusclip.overlays` (``focusclip heatmap``, ``predict``,
``serve``), the demo's example sheet and the synthetic world's contact sheets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focusclip.errors import UsageError
from focusclip.heatmaps import DEFAULT_MIN_SIGMA, boxes_heatmap, keypoints_heatmap, point_sets
from focusclip.images import decode
from focusclip.skeleton import MPII_LIMBS, NUM_JOINTS


def heatmap_to_image(heatmap: np.ndarray) -> Any:
    """An (H, W) heatmap in [0, 1] as an 8-bit grey PIL image (the precomputed-heatmap format)."""
    from PIL import Image

    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim != 2:
        raise UsageError(f"heatmap: expected shape (H, W), got {h.shape}")
    return Image.fromarray(np.round(np.clip(np.nan_to_num(h), 0, 1) * 255).astype(np.uint8), mode="L")


def overlay_heatmap(image: Any, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Any:
    """Blend a colour-mapped heatmap over ``image``; returns an RGB image of the image's size.

    The heatmap is resized (bilinear) to the image when the sizes differ.
    """
    from matplotlib import colormaps
    from PIL import Image

    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim != 2:
        raise UsageError(f"heatmap: expected shape (H, W), got {h.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"alpha must be in [0, 1], got {alpha}")
    rgb = decode(image, "RGB")
    if h.shape != (rgb.height, rgb.width):
        h = np.asarray(Image.fromarray(h, mode="F").resize(rgb.size, Image.BILINEAR))
    colour = colormaps[cmap](np.clip(np.nan_to_num(h), 0, 1))[..., :3] * 255.0
    out = (1 - alpha) * np.asarray(rgb, dtype=np.float32) + alpha * colour
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), mode="RGB")


def draw_skeleton(image: Any, joints: Any, visible: Any = None, color: tuple[int, int, int] = (255, 255, 255),
                  radius: float | None = None, width: int | None = None, dots: bool = True) -> Any:
    """A copy of ``image`` (RGB) with MPII limbs drawn as lines and visible joints as dots.

    ``joints`` (16, 2) or (P, 16, 2) in the image's pixel coordinates; visibility by the project's rule
    (:func:`focusclip.skeleton.visible_mask`). Line width and dot radius scale with the image size.
    """
    from PIL import ImageDraw

    pts, vis = point_sets(joints, visible, NUM_JOINTS, "joints")
    out = decode(image, "RGB")
    draw = ImageDraw.Draw(out)
    unit = max(out.size) / 300
    width = width or max(1, round(unit))
    radius = radius or max(1.5, 1.5 * unit)
    for p in range(len(pts)):  # a few people; limbs are a constant list
        for a, b in MPII_LIMBS:
            if vis[p, a] and vis[p, b]:
                draw.line([tuple(pts[p, a]), tuple(pts[p, b])], fill=color, width=width)
        if dots:
            for x, y in pts[p][vis[p]]:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 0, 0), outline=color)
    return out


def roi_overlay(image: Any, joints: np.ndarray | None = None, visible: np.ndarray | None = None,
                boxes: np.ndarray | None = None, mode: str = "person", src_size: tuple[int, int] | None = None,
                size: tuple[int, int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA,
                alpha: float = 0.5) -> tuple[Any, np.ndarray]:
    """``(overlay, heatmap)`` of a PIL image from people's joints (skeletons drawn too) or from boxes.

    Coordinates are in the ``src_size=(H, W)`` frame (default: the image's); the heatmap is computed at
    ``size`` (default: the image's).
    """
    if (joints is None) == (boxes is None):
        raise UsageError("give exactly one of joints or boxes")
    img_size = (image.height, image.width)
    src_size = tuple(src_size) if src_size else img_size
    size = tuple(size) if size else img_size
    if joints is not None:
        heat = keypoints_heatmap(joints, visible, size, mode, src_size, min_sigma)
        scale = (img_size[1] / src_size[1], img_size[0] / src_size[0])
        moved = np.asarray(joints, dtype=np.float64) * scale
        return draw_skeleton(overlay_heatmap(image, heat, alpha=alpha), moved, visible), heat
    heat = boxes_heatmap(boxes, size, src_size, min_sigma)
    return overlay_heatmap(image, heat, alpha=alpha), heat


#: Outline colours of numbered people (cycled): distinct on photos and on the jet heatmap.
PERSON_COLORS = ((255, 255, 255), (255, 215, 0), (0, 255, 255), (255, 105, 180), (50, 205, 50), (255, 140, 0))


def number_people(image: Any, subjects: Any, width: int | None = None) -> Any:
    """A copy of ``image`` (RGB) with each subject's box outlined and its person number written at the box's
    top-left corner on a dark tag (:class:`focusclip.subjects.Subject`; boxes in the image's pixels). A
    subject without a finite box is left out. PIL's ``ImageDraw`` and its default font draw them."""
    from PIL import ImageDraw, ImageFont

    out = decode(image, "RGB")
    draw = ImageDraw.Draw(out)
    unit = max(out.size) / 300
    width = width or max(1, round(unit))
    size = max(10, round(8 * unit))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        font = ImageFont.load_default()
    for s in subjects:
        x1, y1, x2, y2 = s.ordered_box()
        if not all(np.isfinite(v) and abs(v) < 1e7 for v in (x1, y1, x2, y2)):
            continue
        color = PERSON_COLORS[(int(s.person) - 1) % len(PERSON_COLORS)]
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        text = str(int(s.person))
        tx, ty = max(0.0, min(x1, out.width - 1.0)), max(0.0, min(y1, out.height - 1.0))
        left, top, right, bottom = draw.textbbox((tx, ty), text, font=font)
        pad = max(1, size // 5)
        draw.rectangle([left - pad, top - pad, right + pad, bottom + pad], fill=(0, 0, 0))
        draw.text((tx, ty), text, fill=color, font=font)
    return out


def people_overlay(image: Any, subjects: Any, alpha: float = 0.5) -> tuple[Any, np.ndarray]:
    """``(overlay, heatmap)``: the union of the subjects' heatmaps over ``image`` (a PIL image), their
    skeletons where they have joints, and every person outlined and numbered (:func:`number_people`)."""
    from focusclip.subjects import union_heatmap

    rgb = decode(image, "RGB")
    heat = union_heatmap(subjects, (rgb.height, rgb.width))
    out = overlay_heatmap(rgb, heat, alpha=alpha)
    with_joints = [s for s in subjects if s.joints is not None]
    if with_joints:
        out = draw_skeleton(out, np.stack([s.joints for s in with_joints]),
                            np.stack([np.ones(NUM_JOINTS) if s.visible is None else s.visible for s in with_joints]))
    return number_people(out, subjects), heat

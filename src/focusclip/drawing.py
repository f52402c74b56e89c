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

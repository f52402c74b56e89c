"""ROI heatmaps from human keypoints, boxes and free point sets (the method is in docs/method.md).

Every heatmap is a sum of axis-aligned Gaussians, one per *set* of points (a person, a body-part
group of a person, a bird's parts, the two corners of a box), clipped to [0, 1]:

    G(x, y) = exp(-((x - cx)^2 / (2 sx^2) + (y - cy)^2 / (2 sy^2)))

For a set, ``(cx, cy)`` is the centre of the box around its *visible* points and ``sx, sy`` are half
that box's width and height (for a box given as xyxy, the box itself). A set with fewer than two
visible points contributes nothing. A zero width or height would divide by zero, so both sigmas are
at least ``min_sigma`` output pixels (default 1.0: a one-pixel blob rather than a NaN).

Conventions:

* **Pixel centres.** The output pixel in column ``i`` and row ``j`` is evaluated at ``x = i``,
  ``y = j`` (i = 0..W-1, j = 0..H-1): coordinates are in pixel units of the output grid.
* **Scaling.** With ``src_size=(H0, W0)`` the coordinates are in a frame of that size and are
  multiplied by ``W / W0`` and ``H / H0`` before anything else, so a heatmap is computed directly at
  training resolution (never at full frame and then resized). ``min_sigma`` is in output pixels.
* **Visibility.** :func:`focusclip.skeleton.visible_mask`, the project's one rule: a point is
  invisible when its flag is 0, a coordinate is NaN or infinite, or it is the ``[-1, -1]`` marker.
  Other negative coordinates (a joint just off the frame) are visible and count.

Sources (``HEATMAP_SOURCES``), i.e. where a record's ROI comes from: ``person`` / ``parts`` (people's
joints: one Gaussian per person or per body-part group), ``boxes`` (the record's ``boxes`` and people's
``box``), ``points`` (free point sets such as CUB parts), ``file`` (a precomputed grey PNG),
``none`` (all ones: the whole image) and ``auto`` (:func:`resolve_source`).

Speed: a Gaussian is separable, so for ``N`` sets the map is ``Gy.T @ Gx`` with ``Gy`` (N, H) and
``Gx`` (N, W) evaluated on the 1-D axes only; all people and parts are batched, with no loop over
pixels, people or parts. The factors are computed in float64 and values below :data:`FACTOR_CUTOFF`
(2**-63) are set to zero before the cast to float32: a factor's far tail would otherwise be a float32
subnormal, and a matrix product over subnormals is two orders of magnitude slower on CPUs that handle
them in microcode (issue 23: two people's person map at 1280x720 took 6-27 ms instead of 0.6 ms). A
map value moves by at most N * 2**-63 for N Gaussians, far below float32's rounding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from focusclip.data.records import (
    RecordError,
    record_boxes,
    record_id,
    record_keypoints,
    record_points,
    resolve_image,
)
from focusclip.errors import UsageError
from focusclip.skeleton import MPII_PART_GROUPS, NUM_JOINTS, POINT_LAYOUTS, visible_mask

logger = logging.getLogger(__name__)

#: The Gaussian-rendered sources, then the others (see the module docstring).
RENDERED_SOURCES = ("person", "parts", "boxes", "points")
HEATMAP_SOURCES = (*RENDERED_SOURCES, "file", "none", "auto")

DEFAULT_MIN_SIGMA = 1.0

#: Gaussian factor values below this (2**-63, the square root of float32's smallest normal number) are
#: set to zero, so neither a factor nor the product of two factors is a float32 subnormal. A map value
#: changes by at most N * FACTOR_CUTOFF (about 1e-19 per Gaussian): far below float32's own rounding.
FACTOR_CUTOFF = 2.0**-63


# ------------------------------------------------------------------------------ input checking
def _check_size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be (H, W), two positive integers; got {size!r}") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"{name} must be (H, W), two positive integers; got {size!r}")
    return h, w


def _scale_factors(size: tuple[int, int], src_size: Sequence[int] | None) -> tuple[float, float]:
    """(sx, sy) multiplying x and y coordinates from the ``src_size`` frame into the output frame."""
    if src_size is None:
        return 1.0, 1.0
    h0, w0 = _check_size(src_size, "src_size")
    return size[1] / w0, size[0] / h0


def point_sets(points: Any, visible: Any = None, n_points: int | None = None,
               what: str = "points") -> tuple[np.ndarray, np.ndarray]:
    """``points`` as float64 (S, K, 2) and the visibility rule applied as bool (S, K).

    ``points`` may be (K, 2) (one set), (S, K, 2), or empty (no sets); ``n_points`` fixes K when given;
    ``visible`` (K,), (S, K) or None.
    """
    pts = np.asarray(points, dtype=np.float64)
    k_txt = str(n_points) if n_points is not None else "K"
    if pts.size == 0 and pts.ndim <= 2:  # "no people": [] or np.zeros((0, 16, 2))-like
        k = n_points or 0
        return np.zeros((0, k, 2)), np.zeros((0, k), dtype=bool)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2 or (n_points is not None and pts.shape[1] != n_points):
        raise UsageError(f"{what}: expected shape ({k_txt}, 2) or (P, {k_txt}, 2), got {tuple(np.shape(points))}")
    if visible is not None:
        vis = np.asarray(visible)
        if vis.ndim == 1:
            vis = vis[None]
        if vis.shape != pts.shape[:2]:
            raise UsageError(f"{what}: visibility must have shape {pts.shape[1:2]} or {pts.shape[:2]} to match "
                             f"points of shape {pts.shape}, got {tuple(np.shape(visible))}")
        visible = vis
    return pts, visible_mask(pts, visible)


def box_corners(boxes: Any) -> np.ndarray:
    """xyxy boxes (B, 4) or one box (4,) -> corner sets (B, 2, 2); rejects other shapes."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 2, 2))
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise UsageError(f"boxes: expected shape (B, 4) xyxy or (4,), got {tuple(np.shape(boxes))}")
    return b.reshape(-1, 2, 2)


# ------------------------------------------------------------------------------------- core
def _set_params(pts: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, ...]:
    """Box-of-visible-points Gaussian parameters for (S, K, 2) sets: cx, cy, half-w, half-h, valid (S,)."""
    vis = vis & np.isfinite(pts).all(axis=-1)
    valid = vis.sum(axis=-1) >= 2
    x, y = pts[..., 0], pts[..., 1]
    with np.errstate(invalid="ignore"):
        x1 = np.where(vis, x, np.inf).min(axis=-1, initial=np.inf)
        x2 = np.where(vis, x, -np.inf).max(axis=-1, initial=-np.inf)
        y1 = np.where(vis, y, np.inf).min(axis=-1, initial=np.inf)
        y2 = np.where(vis, y, -np.inf).max(axis=-1, initial=-np.inf)
    b = np.where(valid[:, None], np.stack([x1, y1, x2, y2], axis=-1), 0.0)
    return (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2, valid


def gaussian_factor(centre: np.ndarray, sigma: np.ndarray, n: int) -> np.ndarray:
    """One axis of N separable Gaussians: float32 (N, n), ``exp(-(i - centre)^2 / (2 sigma^2))`` at
    i = 0..n-1, computed in float64 and with every value below :data:`FACTOR_CUTOFF` set to zero.

    The cutoff keeps float32 subnormals out of the factors *and* out of every product of two of them
    (a matrix product over subnormals is about 250x slower on CPUs that handle them in microcode)."""
    g = np.exp(-((np.arange(n) - np.asarray(centre, dtype=np.float64)[:, None]) ** 2)
               / (2 * np.asarray(sigma, dtype=np.float64)[:, None] ** 2))
    g[g < FACTOR_CUTOFF] = 0.0
    return g.astype(np.float32)


def _render(cx: np.ndarray, cy: np.ndarray, sx: np.ndarray, sy: np.ndarray, valid: np.ndarray,
            size: tuple[int, int], min_sigma: float) -> np.ndarray:
    """Sum of separable Gaussians on an (H, W) grid of pixel centres, clipped to [0, 1], float32."""
    h, w = size
    if not min_sigma > 0:
        raise UsageError(f"min_sigma must be > 0, got {min_sigma!r}")
    keep = np.flatnonzero(valid)
    if keep.size == 0:
        return np.zeros((h, w), dtype=np.float32)
    gx = gaussian_factor(cx[keep], np.maximum(sx[keep], min_sigma), w)  # (N, W)
    gy = gaussian_factor(cy[keep], np.maximum(sy[keep], min_sigma), h)  # (N, H)
    out = gy.T @ gx
    return np.clip(out, 0.0, 1.0, out=out)


def _group_index(groups: Mapping[str, Sequence[int]] | Sequence[Sequence[int]],
                 n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded (G, Kmax) index array and its validity mask for a set of point groups."""
    members = list(groups.values()) if isinstance(groups, Mapping) else list(groups)
    if not members:
        raise UsageError("groups: expected at least one group of point indices, got none")
    kmax = max(len(m) for m in members)
    idx = np.zeros((len(members), kmax), dtype=np.int64)
    mask = np.zeros((len(members), kmax), dtype=bool)
    for g, m in enumerate(members):  # runs once per call over a handful of constant groups
        ids = [int(i) for i in m]
        bad = [i for i in ids if not 0 <= i < n_points]
        if bad:
            raise UsageError(f"groups: point indices {bad} out of range for {n_points} points")
        idx[g, : len(ids)] = ids
        mask[g, : len(ids)] = True
    return idx, mask


def _grouped_sets(pts: np.ndarray, vis: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """(S, K, 2) sets -> (S * G, Kmax, 2) group sets with visibility, batched by fancy indexing."""
    idx, mask = _group_index(groups, pts.shape[1])
    gp = pts[:, idx]  # (S, G, Kmax, 2)
    gv = vis[:, idx] & mask  # (S, G, Kmax)
    return gp.reshape(-1, idx.shape[1], 2), gv.reshape(-1, idx.shape[1])


def render_sets(points: np.ndarray, visible: np.ndarray, size: Sequence[int], groups: Any = None,
                src_size: Sequence[int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA) -> np.ndarray:
    """The core: one Gaussian per (S, K, 2) set (or per group of each set) from its points where the
    bool (S, K) ``visible`` is True. ``visible`` is taken as final (the visibility rule already applied,
    e.g. before a geometric transform moved the points), so callers normally use the functions below."""
    size = _check_size(size)
    fx, fy = _scale_factors(size, src_size)
    pts = np.asarray(points, dtype=np.float64) * (fx, fy)
    vis = np.asarray(visible, dtype=bool)
    if groups is not None:
        pts, vis = _grouped_sets(pts, vis, groups)
    if not len(pts):
        return np.zeros(size, dtype=np.float32)
    return _render(*_set_params(pts, vis), size, min_sigma)


# ----------------------------------------------------------------------------------- public
def points_heatmap(points: Any, visible: Any, size: Sequence[int], groups: Any = None,
                   src_size: Sequence[int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA) -> np.ndarray:
    """Heatmap from free point sets (e.g. CUB's 15 parts): float32 (H, W) in [0, 1].

    ``points`` is (K, 2) or (S, K, 2); ``visible`` (K,), (S, K) or None. Without ``groups`` each set
    gives one Gaussian from the box of its visible points; with ``groups`` (a mapping name -> point
    indices, or a list of index lists) each set gives one Gaussian per group.
    """
    pts, vis = point_sets(points, visible)
    return render_sets(pts, vis, size, groups, src_size, min_sigma)


def keypoints_heatmap(joints: Any, visible: Any = None, size: Sequence[int] = (224, 224), mode: str = "person",
                      src_size: Sequence[int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA) -> np.ndarray:
    """Person (``mode="person"``) or body-part (``mode="parts"``) heatmap from MPII joints.

    ``joints`` (P, 16, 2) or (16, 2) in MPII order; ``visible`` (P, 16), (16,) or None. Returns float32
    (H, W) in [0, 1]; ``size=(H, W)``. Person: one Gaussian per person from the box of its visible
    joints. Parts: one per :data:`focusclip.skeleton.MPII_PART_GROUPS` group per person.
    """
    if mode not in ("person", "parts"):
        raise UsageError(f"keypoints_heatmap: mode must be 'person' or 'parts', got {mode!r}")
    pts, vis = point_sets(joints, visible, NUM_JOINTS, "joints")
    return render_sets(pts, vis, size, MPII_PART_GROUPS if mode == "parts" else None, src_size, min_sigma)


def boxes_heatmap(boxes: Any, size: Sequence[int], src_size: Sequence[int] | None = None,
                  min_sigma: float = DEFAULT_MIN_SIGMA) -> np.ndarray:
    """Heatmap from xyxy boxes (B, 4): one Gaussian per box, centre = box centre, sigma = half size.

    A box is its two corner points under the visibility rule: NaN/inf coordinates or the
    ``[-1, -1, -1, -1]`` "missing" marker skip it; corners given in the wrong order are accepted.
    """
    corners = box_corners(boxes)
    return render_sets(corners, visible_mask(corners), size, None, src_size, min_sigma)


# ------------------------------------------------------------------------------ record sources
def _layout_parts(record: Mapping[str, Any]) -> bool:
    """``parts`` of a record without people's joints come from its points when they follow a named layout
    (``points_layout``, e.g. CUB's 15 bird parts: :data:`focusclip.skeleton.POINT_LAYOUTS`)."""
    return record.get("points_layout") in POINT_LAYOUTS and not len(record_keypoints(record)[0])


def subject_points(record: Mapping[str, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    """The point sets (S, K, 2) and visibility (S, K) a rendered ``source`` draws from a record: people's
    joints (person / parts; parts of a bird record: its layout's points), box corners (boxes, as
    (B, 2, 2)) or the free point sets (points)."""
    if source == "parts" and _layout_parts(record):
        source = "points"
    if source in ("person", "parts"):
        return record_keypoints(record)
    if source == "boxes":
        corners = box_corners(record_boxes(record))
        return corners, visible_mask(corners)
    if source == "points":
        pts, vis = record_points(record)
        try:
            return point_sets(pts, vis)
        except ValueError as e:
            raise RecordError(f"record {record_id(record)}: {e}") from None
    raise UsageError(f"subject_points: source must be one of {RENDERED_SOURCES}, got {source!r}")


def subject_groups(record: Mapping[str, Any], source: str) -> Mapping[str, Sequence[int]] | None:
    """The point groups a rendered ``source`` draws one Gaussian each for: MPII's body parts for people's
    ``parts``, the layout's groups for a bird record's ``parts``, else None (one Gaussian per set)."""
    if source != "parts":
        return None
    return POINT_LAYOUTS[record["points_layout"]][1] if _layout_parts(record) else MPII_PART_GROUPS


def render_subject(source: str, points: np.ndarray, visible: np.ndarray, size: Sequence[int],
                   src_size: Sequence[int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA,
                   groups: Mapping[str, Sequence[int]] | None = None) -> np.ndarray:
    """Render :func:`subject_points` output (possibly moved by a transform) for a rendered source;
    ``groups`` from :func:`subject_groups` (default: MPII's body parts for ``parts``)."""
    if groups is None and source == "parts":
        groups = MPII_PART_GROUPS
    return render_sets(points, visible, size, groups, src_size, min_sigma)


def _yields_gaussian(visible: np.ndarray) -> bool:
    return bool((np.asarray(visible).sum(axis=-1) >= 2).any())


def resolve_source(record: Mapping[str, Any], source: str = "auto") -> str:
    """The source a record's heatmap comes from; ``auto`` is the one choice of the whole project:

    ``file`` when the record names a heatmap file; else the first of person, points, boxes that yields
    at least one Gaussian; else ``none`` (the whole image) when nothing marks a subject; else ``person``
    (a subject is marked but too little of it is visible: an empty map).
    """
    if source not in HEATMAP_SOURCES:
        raise UsageError(f"heatmap source must be one of {HEATMAP_SOURCES}, got {source!r}")
    if source != "auto":
        return source
    if record.get("heatmap"):
        return "file"
    found = {s: subject_points(record, s) for s in ("person", "points", "boxes")}
    for s, (_, vis) in found.items():
        if _yields_gaussian(vis):
            return s
    return "person" if any(len(pts) for pts, _ in found.values()) else "none"


def record_heatmap(record: Mapping[str, Any], size: Sequence[int], source: str = "auto",
                   src_size: Sequence[int] | None = None, min_sigma: float = DEFAULT_MIN_SIGMA,
                   root: str | os.PathLike | None = None) -> np.ndarray:
    """Heatmap of one record (schema of :mod:`focusclip.data.records`) at ``size=(H, W)``.

    ``source`` as in the module docstring. Coordinates are in the frame ``src_size=(H0, W0)``, by
    default the record's ``height`` and ``width`` (a record with neither is an error for the rendered
    sources). ``file`` reads the record's heatmap PNG relative to ``root`` and resizes it.
    """
    size = _check_size(size)
    source = resolve_source(record, source)
    if source == "none":
        return np.ones(size, dtype=np.float32)
    if source == "file":
        return _heatmap_file(record, size, root)
    if src_size is None:
        if record.get("width") is None or record.get("height") is None:
            raise RecordError(f"record {record_id(record)}: no 'width'/'height' to scale its coordinates from; "
                              "pass src_size=(H0, W0)")
        src_size = (record["height"], record["width"])
    return render_subject(source, *subject_points(record, source), size, src_size, min_sigma,
                          subject_groups(record, source))


def _heatmap_file(record: Mapping[str, Any], size: tuple[int, int], root: str | os.PathLike | None) -> np.ndarray:
    from PIL import Image

    from focusclip.images import open_image

    if not record.get("heatmap"):
        raise RecordError(f"record {record_id(record)}: heatmap source 'file' but the record has no 'heatmap' path")
    path = resolve_image({"image": record["heatmap"]}, root if root is not None else ".")
    grey = open_image(path, mode="L").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(grey, dtype=np.float32) / 255.0

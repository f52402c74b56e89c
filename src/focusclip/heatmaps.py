"""ROI heatmaps from human keypoints, boxes and free point sets (SPEC section 4), and overlays.

Every heatmap is a sum of axis-aligned Gaussians, one per *set* of points (a person, a body-part
group of a person, a bird's parts) or per box, clipped to [0, 1]:

    G(x, y) = exp(-((x - cx)^2 / (2 sx^2) + (y - cy)^2 / (2 sy^2)))

For a point set, ``(cx, cy)`` is the centre of the box around the set's *visible* points and
``sx, sy`` are half the box's width and height. A set with fewer than two visible points
contributes nothing. A zero width or height would divide by zero, so both sigmas are at least
``min_sigma`` output pixels (default 1.0, i.e. a one-pixel blob rather than a NaN).

Conventions:

* **Pixel centres.** The output pixel in column ``i`` and row ``j`` is evaluated at ``x = i``,
  ``y = j`` (i = 0..W-1, j = 0..H-1): coordinates are in pixel units of the output grid.
* **Scaling.** With ``src_size=(H0, W0)`` the coordinates are in a frame of that size and are
  multiplied by ``W / W0`` and ``H / H0`` before anything else, so a heatmap is computed directly at
  training resolution (never at full frame and then resized). ``min_sigma`` is in output pixels.
* **Visibility.** A point is invisible when its ``visible`` flag is 0, when either coordinate is NaN
  or infinite, or when it is the ``[-1, -1]`` "not annotated" marker of the record schema.
  ``visible=None`` means "visible unless one of those markers".

Speed: a Gaussian is separable, so for ``N`` sets the map is ``Gy.T @ Gx`` with ``Gy`` (N, H) and
``Gx`` (N, W) evaluated on the 1-D axes only; all people and parts are batched, with no loop over
pixels, people or parts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.data.records import NUM_JOINTS

logger = logging.getLogger(__name__)

MPII_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip


# The ten body-part groups of SPEC section 4 (MPII joint ids), in the reference code's order.
MPII_PART_GROUPS: Mapping[str, tuple[int, ...]] = {
    "head": (7, 8, 9, 12, 13),
    "torso": (6, 7, 12, 13, 2, 3),
    "left_upper_arm": (13, 14, 7),
    "right_upper_arm": (12, 11, 7),
    "left_lower_arm": (14, 15, 13),
    "right_lower_arm": (11, 10, 12),
    "left_upper_leg": (3, 4, 6),
    "right_upper_leg": (2, 1, 6),
    "left_lower_leg": (4, 5, 3),
    "right_lower_leg": (1, 0, 2),
}

# CUB-200-2011 parts in the order of ``parts/parts.txt`` (part ids 1..15 -> index 0..14).
CUB_PARTS: tuple[str, ...] = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
    "nape", "right eye", "right leg", "right wing", "tail", "throat",
)  # fmt: skip

# MPII limbs drawn by draw_skeleton (pairs of joint ids).
MPII_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (10, 11), (11, 12), (12, 7), (13, 7), (13, 14), (14, 15),
)  # fmt: skip

HEATMAP_MODES = ("person", "parts", "boxes", "points", "auto")

DEFAULT_MIN_SIGMA = 1.0


# ------------------------------------------------------------------------------ input checking
def _check_size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (H, W), two positive integers; got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be (H, W), two positive integers; got {size!r}")
    return h, w


def _scale_factors(size: tuple[int, int], src_size: Sequence[int] | None) -> tuple[float, float]:
    """(sx, sy) multiplying x and y coordinates from the ``src_size`` frame into the output frame."""
    if src_size is None:
        return 1.0, 1.0
    h0, w0 = _check_size(src_size, "src_size")
    return size[1] / w0, size[0] / h0


def _as_point_sets(
    points: Any, visible: Any, n_points: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise ``points`` to float64 (S, K, 2) and ``visible`` to bool (S, K), with invisibility applied.

    ``points`` may be (K, 2) (one set) or (S, K, 2); ``n_points`` fixes K when given.
    """
    pts = np.asarray(points, dtype=np.float64)
    k_txt = str(n_points) if n_points is not None else "K"
    if pts.size == 0 and pts.ndim <= 2:  # "no people": [] or np.zeros((0, 16, 2))-like
        k = n_points or 0
        return np.zeros((0, k, 2)), np.zeros((0, k), dtype=bool)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2 or (n_points is not None and pts.shape[1] != n_points):
        raise ValueError(
            f"{what}: expected shape ({k_txt}, 2) or (P, {k_txt}, 2), got {tuple(np.shape(points))}"
        )
    vis_ok = np.isfinite(pts).all(axis=-1) & ~(pts == -1).all(axis=-1)
    if visible is not None:
        vis = np.asarray(visible)
        if vis.ndim == 1:
            vis = vis[None]
        if vis.shape != pts.shape[:2]:
            raise ValueError(
                f"{what}: visibility must have shape {pts.shape[1:2]} or {pts.shape[:2]} to match "
                f"points of shape {pts.shape}, got {tuple(np.shape(visible))}"
            )
        vis = np.nan_to_num(vis.astype(np.float64), nan=0.0) > 0
        vis_ok &= vis
    return pts, vis_ok


def _as_boxes(boxes: Any) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (B, 4) xyxy or (4,), got {tuple(np.shape(boxes))}")
    return b


# ------------------------------------------------------------------------------------- core
def _set_params(pts: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, ...]:
    """Box-of-visible-points Gaussian parameters for (S, K, 2) sets: cx, cy, half-w, half-h, valid (S,)."""
    valid = vis.sum(axis=-1) >= 2
    x, y = pts[..., 0], pts[..., 1]
    with np.errstate(invalid="ignore"):
        x1 = np.where(vis, x, np.inf).min(axis=-1, initial=np.inf)
        x2 = np.where(vis, x, -np.inf).max(axis=-1, initial=-np.inf)
        y1 = np.where(vis, y, np.inf).min(axis=-1, initial=np.inf)
        y2 = np.where(vis, y, -np.inf).max(axis=-1, initial=-np.inf)
    return _box_params(np.stack([x1, y1, x2, y2], axis=-1), valid)


def _box_params(boxes: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """xyxy (S, 4) boxes -> cx, cy, half width, half height, valid; invalid rows get harmless values."""
    valid = valid & np.isfinite(boxes).all(axis=-1)
    b = np.where(valid[:, None], boxes, 0.0)
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    return cx, cy, np.abs(b[:, 2] - b[:, 0]) / 2, np.abs(b[:, 3] - b[:, 1]) / 2, valid


def _render(
    cx: np.ndarray,
    cy: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    valid: np.ndarray,
    size: tuple[int, int],
    min_sigma: float,
) -> np.ndarray:
    """Sum of separable Gaussians on an (H, W) grid of pixel centres, clipped to [0, 1], float32."""
    h, w = size
    if not min_sigma > 0:
        raise ValueError(f"min_sigma must be > 0, got {min_sigma!r}")
    keep = np.flatnonzero(valid)
    if keep.size == 0:
        return np.zeros((h, w), dtype=np.float32)
    cx, cy = cx[keep, None], cy[keep, None]
    sx = np.maximum(sx[keep, None], min_sigma)
    sy = np.maximum(sy[keep, None], min_sigma)
    gx = np.exp(-((np.arange(w) - cx) ** 2) / (2 * sx**2)).astype(np.float32)  # (N, W)
    gy = np.exp(-((np.arange(h) - cy) ** 2) / (2 * sy**2)).astype(np.float32)  # (N, H)
    out = gy.T @ gx
    return np.clip(out, 0.0, 1.0, out=out)


def _group_index(
    groups: Mapping[str, Sequence[int]] | Sequence[Sequence[int]], n_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Padded (G, Kmax) index array and its validity mask for a set of point groups."""
    members = list(groups.values()) if isinstance(groups, Mapping) else list(groups)
    if not members:
        raise ValueError("groups: expected at least one group of point indices, got none")
    kmax = max(len(m) for m in members)
    idx = np.zeros((len(members), kmax), dtype=np.int64)
    mask = np.zeros((len(members), kmax), dtype=bool)
    for g, m in enumerate(members):  # runs once per call over a handful of constant groups
        ids = [int(i) for i in m]
        bad = [i for i in ids if not 0 <= i < n_points]
        if bad:
            raise ValueError(f"groups: point indices {bad} out of range for {n_points} points")
        idx[g, : len(ids)] = ids
        mask[g, : len(ids)] = True
    return idx, mask


def _grouped_sets(pts: np.ndarray, vis: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """(S, K, 2) sets -> (S * G, Kmax, 2) group sets with visibility, batched by fancy indexing."""
    idx, mask = _group_index(groups, pts.shape[1])
    gp = pts[:, idx]  # (S, G, Kmax, 2)
    gv = vis[:, idx] & mask  # (S, G, Kmax)
    return gp.reshape(-1, idx.shape[1], 2), gv.reshape(-1, idx.shape[1])


# ----------------------------------------------------------------------------------- public
def points_heatmap(
    points: Any,
    visible: Any,
    size: Sequence[int],
    groups: Any = None,
    src_size: Sequence[int] | None = None,
    min_sigma: float = DEFAULT_MIN_SIGMA,
) -> np.ndarray:
    """Heatmap from free point sets (e.g. CUB's 15 parts): float32 (H, W) in [0, 1].

    ``points`` is (K, 2) or (S, K, 2); ``visible`` (K,), (S, K) or None. Without ``groups`` each set
    gives one Gaussian from the box of its visible points; with ``groups`` (a mapping name -> point
    indices, or a list of index lists) each set gives one Gaussian per group. See the module
    docstring for pixel and visibility conventions.
    """
    size = _check_size(size)
    pts, vis = _as_point_sets(points, visible, None, "points")
    fx, fy = _scale_factors(size, src_size)
    pts = pts * (fx, fy)
    if groups is not None and len(pts):
        pts, vis = _grouped_sets(pts, vis, groups)
    elif groups is not None:
        _group_index(groups, pts.shape[1])  # still validate the groups
    return _render(*_set_params(pts, vis), size, min_sigma)


def keypoints_heatmap(
    joints: Any,
    visible: Any = None,
    size: Sequence[int] = (224, 224),
    mode: str = "person",
    src_size: Sequence[int] | None = None,
    min_sigma: float = DEFAULT_MIN_SIGMA,
) -> np.ndarray:
    """Person (``mode="person"``) or body-part (``mode="parts"``) heatmap from MPII joints.

    ``joints`` (P, 16, 2) or (16, 2) in MPII order; ``visible`` (P, 16), (16,) or None (then the
    ``[-1, -1]`` marker and NaN mean invisible). Returns float32 (H, W) in [0, 1]; ``size=(H, W)``.
    Person: one Gaussian per person from the box of its visible joints. Parts: one per
    :data:`MPII_PART_GROUPS` group per person. Sets with fewer than 2 visible joints add nothing.
    """
    if mode not in ("person", "parts"):
        raise ValueError(f"keypoints_heatmap: mode must be 'person' or 'parts', got {mode!r}")
    size = _check_size(size)
    pts, vis = _as_point_sets(joints, visible, NUM_JOINTS, "joints")
    fx, fy = _scale_factors(size, src_size)
    pts = pts * (fx, fy)
    if mode == "parts":
        pts, vis = _grouped_sets(pts, vis, MPII_PART_GROUPS)
    return _render(*_set_params(pts, vis), size, min_sigma)


def boxes_heatmap(
    boxes: Any,
    size: Sequence[int],
    src_size: Sequence[int] | None = None,
    min_sigma: float = DEFAULT_MIN_SIGMA,
) -> np.ndarray:
    """Heatmap from xyxy boxes (B, 4): one Gaussian per box, centre = box centre, sigma = half size.

    Boxes with a NaN/inf coordinate or equal to the ``[-1, -1, -1, -1]`` "missing" marker are skipped;
    corners given in the wrong order are accepted.
    """
    size = _check_size(size)
    b = _as_boxes(boxes)
    fx, fy = _scale_factors(size, src_size)
    valid = ~(b == -1).all(axis=-1)
    return _render(*_box_params(b * (fx, fy, fx, fy), valid), size, min_sigma)


# ------------------------------------------------------------------------------ records
def _record_name(record: Mapping[str, Any]) -> str:
    return str(record.get("id", record.get("image", "<record without id or image>")))


def record_keypoints(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The people's joints (P, 16, 2) and visibility (P, 16) of a record; people without joints are skipped."""
    joints, vis = [], []
    for i, person in enumerate(record.get("people") or []):
        if person.get("joints") is None:
            continue
        j = np.asarray(person["joints"], dtype=np.float64)
        if j.shape != (NUM_JOINTS, 2):
            raise ValueError(
                f"record {_record_name(record)}: people[{i}].joints must be {NUM_JOINTS} [x, y] pairs, "
                f"got shape {j.shape}"
            )
        v = person.get("visible")
        v = np.ones(NUM_JOINTS) if v is None else np.asarray(v, dtype=np.float64)
        if v.shape != (NUM_JOINTS,):
            raise ValueError(
                f"record {_record_name(record)}: people[{i}].visible must have {NUM_JOINTS} entries, "
                f"got shape {v.shape}"
            )
        joints.append(j)
        vis.append(v)
    if not joints:
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS))
    return np.stack(joints), np.stack(vis)


def record_boxes(record: Mapping[str, Any]) -> np.ndarray:
    """Subject boxes of a record: its ``boxes`` plus each person's ``box``, as (B, 4) xyxy."""
    boxes = [list(b) for b in record.get("boxes") or []]
    boxes += [list(p["box"]) for p in record.get("people") or [] if p.get("box") is not None]
    try:
        return _as_boxes(boxes)
    except ValueError as e:
        raise ValueError(f"record {_record_name(record)}: {e}") from None


def record_points(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A record's free point sets (S, K, 2) and visibility (S, K) (``points`` / ``points_visible``)."""
    try:
        return _as_point_sets(record.get("points") or [], record.get("points_visible"), None, "points")
    except ValueError as e:
        raise ValueError(f"record {_record_name(record)}: {e}") from None


def auto_mode(record: Mapping[str, Any]) -> str:
    """First of person / points / boxes that yields at least one Gaussian (person if none does)."""
    _, vis = record_keypoints(record)
    if (vis.sum(axis=-1) >= 2).any():
        return "person"
    _, pvis = record_points(record)
    if (pvis.sum(axis=-1) >= 2).any():
        return "points"
    if len(record_boxes(record)):
        return "boxes"
    return "person"


def record_heatmap(
    record: Mapping[str, Any],
    size: Sequence[int],
    mode: str = "auto",
    src_size: Sequence[int] | None = None,
    min_sigma: float = DEFAULT_MIN_SIGMA,
) -> np.ndarray:
    """Heatmap of one record (schema of :mod:`focusclip.data.records`) at ``size=(H, W)``.

    Modes: ``person`` / ``parts`` (people's joints), ``boxes`` (``boxes`` and people's ``box``),
    ``points`` (``points`` + ``points_visible``, e.g. CUB parts, one Gaussian), ``auto`` (the first
    of person, points, boxes the record can fill). Coordinates are in the frame ``src_size=(H0, W0)``,
    by default the record's ``height`` and ``width``; a record with neither is an error.
    """
    if mode not in HEATMAP_MODES:
        raise ValueError(f"record_heatmap: mode must be one of {HEATMAP_MODES}, got {mode!r}")
    if src_size is None:
        if record.get("width") is None or record.get("height") is None:
            raise ValueError(
                f"record {_record_name(record)}: no 'width'/'height' to scale its coordinates from; "
                "pass src_size=(H0, W0)"
            )
        src_size = (record["height"], record["width"])
    if mode == "auto":
        mode = auto_mode(record)
    if mode in ("person", "parts"):
        joints, vis = record_keypoints(record)
        return keypoints_heatmap(joints, vis, size, mode, src_size, min_sigma)
    if mode == "boxes":
        return boxes_heatmap(record_boxes(record), size, src_size, min_sigma)
    points, vis = record_points(record)
    return points_heatmap(points, vis, size, None, src_size, min_sigma)


# ------------------------------------------------------------------------------ input files
def read_keypoints_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """Joints (P, 16, 2), visibility (P, 16) and the record's (H, W) if known, from a JSON file.

    Accepted: a record of our schema (an object with ``people``), a list of people objects
    (``joints``/``kpts`` 16x[x, y], optional ``visible``/``kpts_vis``/``joints_vis``), or a bare
    16x2 / Px16x2 array where ``[-1, -1]`` marks an invisible joint.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    src_size = None
    if isinstance(data, dict):
        if "people" not in data:
            raise ValueError(f"{path}: a JSON object must be a record with a 'people' list")
        if data.get("width") and data.get("height"):
            src_size = (int(data["height"]), int(data["width"]))
        people = data["people"] or []
    elif isinstance(data, list) and data and all(isinstance(p, dict) for p in data):
        people = data
    elif isinstance(data, list):
        try:
            joints, vis = _as_point_sets(data, None, NUM_JOINTS, "joints")
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        return joints, vis.astype(np.float64), None
    else:
        raise ValueError(f"{path}: expected a record, a list of people or a 16x2 / Px16x2 array")
    norm = []
    for p in people:
        joints = p.get("joints", p.get("kpts"))
        vis = p.get("visible", p.get("kpts_vis", p.get("joints_vis")))
        if joints is not None:
            norm.append({"joints": joints, "visible": vis})
    try:
        joints, vis = record_keypoints({"id": str(path), "people": norm})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    _, vis_ok = _as_point_sets(joints, vis, NUM_JOINTS, "joints")  # fold in the -1 / NaN markers
    return joints, vis_ok.astype(np.float64), src_size


def read_boxes_file(path: str | os.PathLike) -> np.ndarray:
    """xyxy boxes (B, 4) from a JSON list of [x1, y1, x2, y2]."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    try:
        return _as_boxes(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


# ------------------------------------------------------------------------------ drawing
def heatmap_to_image(heatmap: np.ndarray) -> Any:
    """An (H, W) heatmap in [0, 1] as an 8-bit grey PIL image (the precomputed-heatmap format)."""
    from PIL import Image

    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"heatmap: expected shape (H, W), got {h.shape}")
    return Image.fromarray(np.round(np.clip(np.nan_to_num(h), 0, 1) * 255).astype(np.uint8), mode="L")


def overlay_heatmap(image: Any, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Any:
    """Blend a colour-mapped heatmap over ``image``; returns an RGB image of the image's size.

    The heatmap is resized (bilinear) to the image when the sizes differ.
    """
    from matplotlib import colormaps
    from PIL import Image

    h = np.asarray(heatmap, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"heatmap: expected shape (H, W), got {h.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = image.convert("RGB")
    if h.shape != (rgb.height, rgb.width):
        h = np.asarray(Image.fromarray(h, mode="F").resize(rgb.size, Image.BILINEAR))
    colour = colormaps[cmap](np.clip(np.nan_to_num(h), 0, 1))[..., :3] * 255.0
    out = (1 - alpha) * np.asarray(rgb, dtype=np.float32) + alpha * colour
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), mode="RGB")


def draw_skeleton(
    image: Any,
    joints: Any,
    visible: Any = None,
    color: tuple[int, int, int] = (255, 255, 255),
    radius: float | None = None,
    width: int | None = None,
) -> Any:
    """A copy of ``image`` (RGB) with MPII limbs drawn as lines and visible joints as dots.

    ``joints`` (16, 2) or (P, 16, 2) in the image's pixel coordinates; visibility as in
    :func:`keypoints_heatmap`. Line width and dot radius default to scale with the image size.
    """
    from PIL import ImageDraw

    pts, vis = _as_point_sets(joints, visible, NUM_JOINTS, "joints")
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    unit = max(out.size) / 300
    width = width or max(1, round(unit))
    radius = radius or max(1.5, 1.5 * unit)
    for p in range(len(pts)):  # a few people; limbs are a constant list
        for a, b in MPII_LIMBS:
            if vis[p, a] and vis[p, b]:
                draw.line([tuple(pts[p, a]), tuple(pts[p, b])], fill=color, width=width)
        for x, y in pts[p][vis[p]]:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 0, 0), outline=color)
    return out


def overlay_from_files(
    image: Any,
    keypoints: str | os.PathLike | None = None,
    boxes: str | os.PathLike | None = None,
    mode: str = "person",
    size: tuple[int, int] | None = None,
    min_sigma: float = 1.0,
    alpha: float = 0.5,
) -> tuple[Any, np.ndarray]:
    """The ROI overlay of a PIL image from a keypoints or a boxes JSON file: ``(overlay, heatmap)``.

    The heatmap is computed at ``size`` (default: the image's); keypoints also get their skeleton drawn.
    """
    if (keypoints is None) == (boxes is None):
        raise ValueError("give exactly one of keypoints or boxes")
    img_size = (image.height, image.width)
    size = tuple(size) if size else img_size
    if keypoints is not None:
        joints, visible, src_size = read_keypoints_file(keypoints)
        src_size = src_size or img_size
        heat = keypoints_heatmap(joints, visible, size, mode, src_size, min_sigma)
        scale = (img_size[1] / src_size[1], img_size[0] / src_size[0])
        overlay = draw_skeleton(overlay_heatmap(image, heat, alpha=alpha), joints * scale, visible)
        logger.info("%d people, %d visible joints", len(joints), int((visible > 0).sum()))
    else:
        box_arr = read_boxes_file(boxes)
        heat = boxes_heatmap(box_arr, size, img_size, min_sigma)
        overlay = overlay_heatmap(image, heat, alpha=alpha)
        logger.info("%d boxes", len(box_arr))
    return overlay, heat

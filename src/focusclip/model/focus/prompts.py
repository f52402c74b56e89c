"""Image-space visual prompts: training-free ways to point any CLIP at one subject by changing its input.

Each works on the model's normalised input batch (B, 3, S, S) with the subject's box in input pixels
(x1, y1, x2, y2), so it suits every tower (ViT or conv, trained by focusclip or untouched):

==========  ==========================================================================  ===========================
prompt      input the tower sees                                                        source
==========  ==========================================================================  ===========================
``crop``    the subject's box grown by ``CROP_MARGIN`` of its size on each side, made    the usual baseline
            square where the image allows, resized to S x S
``blur``    ``M I + (1 - M) G_sigma(I)``: sharp inside the box (``M`` = 1), Gaussian     FGVP (Yang et al.,
            blurred outside, ``sigma = BLUR_SIGMA * S``                                  NeurIPS 2023)
``circle``  a red ellipse (``CIRCLE_COLOR``) through the box's corners, line width       Shtedritski et al.,
            ``CIRCLE_WIDTH * S`` (at least 2 px)                                        ICCV 2023
``dim``     ``I (a + H (1 - a))`` (the paper's highlight with ``a = DIM_FACTOR``; the    FocusCLIP (the paper)
            heatmap ``H``, not the box)
==========  ==========================================================================  ===========================

Blurring is linear and the normalisation per channel affine, so blurring the normalised input equals
normalising the blurred image. ``images`` hold one row per *photo* and ``owner`` (R,) says which photo
each of the R subjects belongs to: a photo's blurred copy is computed once for all its people. The
blur is torchvision's ``gaussian_blur``; the ellipse is drawn with PIL's ``ImageDraw``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageDraw
from torchvision.transforms import InterpolationMode

IMAGE_PROMPTS = ("crop", "blur", "circle", "dim")

CROP_MARGIN = 0.2            #: crop: the box grows by this fraction of its width / height on each side
BLUR_SIGMA = 0.05            #: blur: the Gaussian's standard deviation as a fraction of the input side
CIRCLE_COLOR = (255, 0, 0)   #: circle: pure red, as in Shtedritski et al.
CIRCLE_WIDTH = 0.01          #: circle: line width as a fraction of the input side (at least 2 px)
DIM_FACTOR = 0.5             #: dim: ``a`` of ``I (a + H (1 - a))`` (the paper's initial highlight scalar)
#: The level of a heatmap whose bounding box is the subject's box: a box's Gaussian is exp(-1/2) of its
#: peak on the box's edges (sigma = half the box), so the set above it spans the box exactly.
BOX_LEVEL = math.exp(-0.5)


def heatmap_boxes(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, 4) xyxy boxes (input pixels, corners at pixel edges) of the region of each (B, 1, H, W)
    heatmap at or above ``BOX_LEVEL`` of its peak; an all-zero heatmap gives the whole input."""
    h = heatmaps.flatten(0, -3) if heatmaps.dim() == 4 else heatmaps
    h = h.reshape(h.shape[0], *h.shape[-2:]).float()
    peak = h.flatten(1).amax(1).clamp_min(1e-12)
    keep = h >= (BOX_LEVEL * peak)[:, None, None] * (1 - 1e-6)
    rows, cols = keep.any(2), keep.any(1)
    n, hh, ww = h.shape
    out = torch.tensor([[0.0, 0.0, float(ww), float(hh)]]).repeat(n, 1)
    ar_y, ar_x = torch.arange(hh), torch.arange(ww)
    for i in range(n):  # one row per subject; a handful of index look-ups each
        if rows[i].any():
            ys, xs = ar_y[rows[i].cpu()], ar_x[cols[i].cpu()]
            out[i] = torch.tensor([float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1])
    return out


def crop_region(box: Sequence[float], frame: Sequence[int], margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the crop for ``box`` in a frame of (H, W): the box grown by ``margin``
    of its size on each side, made square around its centre where the frame allows, inside the frame."""
    fh, fw = int(frame[0]), int(frame[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    side = max(bw, bh) * (1 + 2 * margin)
    w, h = min(side, fw), min(side, fh)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - w / 2, 0.0), fw - w)
    top = min(max(cy - h / 2, 0.0), fh - h)
    t, lft = int(math.floor(top)), int(math.floor(left))
    return t, lft, max(1, min(int(math.ceil(top + h)), fh) - t), max(1, min(int(math.ceil(left + w)), fw) - lft)


def crop_inputs(images: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor,
                margin: float = CROP_MARGIN) -> torch.Tensor:
    """(R, 3, S, S): each subject's crop of its photo, resized (bilinear, antialiased) to the input size."""
    s = images.shape[-2:]
    out = []
    for box, o in zip(boxes.tolist(), owner.tolist()):
        top, left, h, w = crop_region(box, s, margin)
        out.append(TF.resized_crop(images[o], top, left, h, w, list(s), interpolation=InterpolationMode.BILINEAR,
                                   antialias=True))
    return torch.stack(out) if out else images[:0]


def box_masks(boxes: torch.Tensor, size: Sequence[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(R, 1, H, W) masks: 1 on pixels whose centre lies inside the box."""
    h, w = int(size[0]), int(size[1])
    ys = torch.arange(h, device=device, dtype=torch.float32)[None, :, None] + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float32)[None, None, :] + 0.5
    b = boxes.to(device=device, dtype=torch.float32)[:, :, None, None]
    inside = (xs >= b[:, 0]) & (xs <= b[:, 2]) & (ys >= b[:, 1]) & (ys <= b[:, 3])
    return inside[:, None].to(dtype)


def blur_sigma(side: int, sigma: float = BLUR_SIGMA) -> tuple[int, float]:
    """(odd kernel size, sigma in pixels) of the blur for an input side of ``side`` pixels."""
    px = max(sigma * side, 0.5)
    k = 2 * int(math.ceil(3 * px)) + 1
    return max(1, min(k, side if side % 2 else side - 1)), px


def blur_inputs(images: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor,
                sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(R, 3, S, S): each subject's photo, sharp inside its box and blurred outside (each photo blurred once)."""
    k, px = blur_sigma(images.shape[-1], sigma)
    used = torch.unique(owner)
    blurred = images.clone()
    blurred[used] = TF.gaussian_blur(images[used], [k, k], [px, px])
    mask = box_masks(boxes, images.shape[-2:], images.device, images.dtype)
    return mask * images[owner] + (1 - mask) * blurred[owner]


def ellipse_masks(boxes: torch.Tensor, size: Sequence[int], width: float = CIRCLE_WIDTH) -> torch.Tensor:
    """(R, 1, H, W) bool: the outline of the ellipse through each box's corners (semi-axes the box's half
    sides times sqrt 2), drawn with PIL."""
    h, w = int(size[0]), int(size[1])
    line = max(2, round(width * max(h, w)))
    out = []
    for x1, y1, x2, y2 in boxes.tolist():
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / math.sqrt(2), (y2 - y1) / math.sqrt(2)
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], outline=255, width=line)
        out.append(torch.from_numpy(np.asarray(canvas) > 0))
    return torch.stack(out)[:, None] if out else torch.zeros(0, 1, h, w, dtype=torch.bool)


def circle_inputs(images: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, mean: Sequence[float],
                  std: Sequence[float], color: Sequence[int] = CIRCLE_COLOR, width: float = CIRCLE_WIDTH) -> torch.Tensor:
    """(R, 3, S, S): each subject's photo with a red ellipse around its box (in the normalised input)."""
    rgb = torch.tensor([c / 255.0 for c in color], dtype=images.dtype, device=images.device)
    paint = ((rgb - torch.tensor(mean, dtype=images.dtype, device=images.device))
             / torch.tensor(std, dtype=images.dtype, device=images.device))[None, :, None, None]
    ring = ellipse_masks(boxes, images.shape[-2:], width).to(images.device)
    return torch.where(ring, paint, images[owner])


def dim_inputs(images: torch.Tensor, heatmaps: torch.Tensor, owner: torch.Tensor,
               factor: float | torch.Tensor = DIM_FACTOR) -> torch.Tensor:
    """(R, 3, S, S): ``I (a + H (1 - a))`` per subject (``heatmaps`` (R, 1, S, S))."""
    a = torch.as_tensor(factor, dtype=images.dtype, device=images.device)
    return images[owner] * (a + heatmaps.to(images.dtype) * (1 - a))

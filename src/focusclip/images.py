"""Opening images: one place, so every command sees the same pixels.

Images are opened in their *displayed* orientation: the EXIF orientation tag is applied, as MPII and COCO
annotate and as every viewer shows a phone photo. Keypoint and box files follow that convention.

Every PIL mode decodes to 8-bit RGB (or grey) correctly: 16-bit and 32-bit grey and float images are
rescaled to 0..255 (not clipped to white), palette images keep their colours, transparent pixels are
composited over white, CMYK is converted.

PIL's decompression-bomb guard stays on (it refuses images of more than about 179 megapixels); the
environment variable ``FOCUSCLIP_MAX_IMAGE_PIXELS`` changes PIL's limit (0 removes it) for genuinely
huge images.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from focusclip.errors import InputError, MissingInput, UsageError

PIXEL_LIMIT_ENV = "FOCUSCLIP_MAX_IMAGE_PIXELS"
_SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 or 270 degrees
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _apply_pixel_limit() -> None:
    """PIL's decompression-bomb limit from ``FOCUSCLIP_MAX_IMAGE_PIXELS``, when it is set."""
    raw = os.environ.get(PIXEL_LIMIT_ENV)
    if raw is None:
        return
    try:
        limit = int(raw)
    except ValueError:
        raise UsageError(f"{PIXEL_LIMIT_ENV}={raw!r}: expected a number of pixels (0 for no limit)") from None
    Image.MAX_IMAGE_PIXELS = limit if limit > 0 else None


def _to_8bit_grey(im: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey image as 8-bit "L", rescaled (never clipped to white)."""
    arr = np.asarray(im).astype(np.float64)
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if im.mode.startswith("I;16") or (im.mode == "I" and lo >= 0.0 and 255.0 < hi <= 65535.0):
        scaled = arr / 257.0  # 16-bit data (also when PIL holds it as 32-bit integers)
    elif im.mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = arr * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = arr
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.round(np.nan_to_num(scaled)), 0, 255).astype(np.uint8), mode="L")


def decode(image: Image.Image, mode: str = "RGB") -> Image.Image:
    """``image`` in its displayed orientation as 8-bit ``mode`` ("RGB" or "L"); see the module docstring."""
    im = ImageOps.exif_transpose(image)
    if im.mode in _WIDE_MODES:
        im = _to_8bit_grey(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("PA", "LA", "La", "RGBa", "RGBA"):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert(mode)


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF means "as stored"
        return 1


def _open_error(path: str | os.PathLike, e: Exception) -> Exception:
    if isinstance(e, FileNotFoundError):
        return MissingInput(f"image not found: {path}")
    if isinstance(e, IsADirectoryError):
        return InputError(f"{path}: is a folder, not an image file")
    if isinstance(e, Image.DecompressionBombError):
        return InputError(f"{path}: {e} PIL refuses such images as a guard against decompression bombs; if the "
                          f"image is genuine, set the environment variable {PIXEL_LIMIT_ENV} to a larger number "
                          "of pixels (0 removes the limit)")
    if isinstance(e, UsageError):
        return e
    return InputError(f"{path}: not a readable image ({type(e).__name__}: {e})")


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """An image file fully decoded (:func:`decode`) with the file closed; one clear error names the file
    when it is missing, not an image, or over the pixel limit."""
    _apply_pixel_limit()
    try:
        with Image.open(path) as im:
            im.load()
            return decode(im, mode)
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt or hostile files
        raise _open_error(path, e) from None


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """:func:`open_image` in RGB."""
    return open_image(path, "RGB")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as displayed, read from its header (nothing is decoded)."""
    _apply_pixel_limit()
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if _orientation(im) in _SWAPS_AXES else (w, h)
    except Exception as e:  # noqa: BLE001
        raise _open_error(path, e) from None


def open_image_reduced(path: str | os.PathLike, mode: str = "RGB", min_size: tuple[int, int] | None = None
                       ) -> tuple[Image.Image, tuple[float, float]]:
    """:func:`open_image`, but JPEGs may decode at a reduced scale (PIL draft mode) that is still at least
    ``min_size`` = (width, height) once displayed. Returns the image and the factor (fx, fy) from displayed
    file pixels to decoded pixels (scale keypoints by it). A 1280x720 JPEG for a 224 px model decodes about
    twice as fast this way."""
    _apply_pixel_limit()
    try:
        with Image.open(path) as im:
            swap = _orientation(im) in _SWAPS_AXES
            w0, h0 = im.size[::-1] if swap else im.size
            if min_size is not None and im.format == "JPEG":
                stored = (int(min_size[1]), int(min_size[0])) if swap else (int(min_size[0]), int(min_size[1]))
                im.draft(mode if mode in ("RGB", "L") else "RGB", stored)
            im.load()
            out = decode(im, mode)
    except Exception as e:  # noqa: BLE001
        raise _open_error(path, e) from None
    return out, (out.size[0] / w0, out.size[1] / h0)

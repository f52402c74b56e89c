"""Uploaded photos: size, pixel and content checks before anything is decoded, with one-line errors.

The checks, in order: the declared content type (when the client sends one), the byte size, what the
bytes really are (PIL identifies the format from the content, not the file name), the pixel count read
from the header *before* decoding (a decompression-bomb guard) and a complete decode. Every failure is
an :class:`UploadError` naming the file and what was expected; its ``status`` is the HTTP code the API
answers with.

Large JPEGs are decoded at a reduced DCT scale whose short side is still at least ``WORKING_SIDE``
pixels (PIL's draft mode, as the training loader does): a 12-megapixel phone photo decodes at 1/4 scale,
about ten times faster, still far above any model's input size. EXIF orientation is applied.
:meth:`UploadedImage.full_image` decodes the full resolution when pixel coordinates matter (ROI files).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

#: PIL format -> content type, the formats the page accepts.
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
                 "GIF": "image/gif"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
#: Content types sent by clients that do not know better; the content is checked either way.
GENERIC_CONTENT_TYPES = ("application/octet-stream", "")
MIB = 2**20
WORKING_SIDE = 512


@dataclass(frozen=True)
class UploadLimits:
    """What one request may carry. ``max_request_bytes`` bounds a whole HTTP request body."""

    max_file_bytes: int = 20 * MIB
    max_pixels: int = 40_000_000
    max_images: int = 32
    max_labels: int = 500
    max_request_bytes: int = 128 * MIB

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_pixels", "max_images", "max_labels", "max_request_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"upload limit {name} must be >= 1, got {getattr(self, name)}")


class UploadError(ValueError):
    """A rejected upload; ``status`` is 400 (bad request), 413 (too large) or 415 (not an image)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadedImage:
    """A decoded RGB photo with the name it was uploaded as, a digest of its bytes and the bytes."""

    name: str
    image: Any  # PIL.Image.Image, RGB; large JPEGs at a reduced scale (see the module docstring)
    digest: str
    data: bytes = field(repr=False, default=b"")
    original_size: tuple[int, int] = (0, 0)  #: (width, height) in the file

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the kept image."""
        return self.image.size

    @property
    def reduced(self) -> bool:
        """Decoded at a reduced scale (EXIF rotation aside, the kept image has fewer pixels than the file)."""
        return self.image.width * self.image.height < self.original_size[0] * self.original_size[1]

    def full_image(self) -> Any:
        """The photo at its full resolution (decoded again from the bytes when the kept one is reduced)."""
        if not self.reduced:
            return self.image
        w, h = self.original_size
        own = UploadLimits(max_file_bytes=len(self.data), max_pixels=w * h)  # limits this file passed
        return read_image(self.data, self.name, own, reduce_to=None).image

    def nbytes(self) -> int:
        """Memory held: decoded pixels plus the file's bytes."""
        return self.image.width * self.image.height * 3 + len(self.data)


def format_mb(n: int) -> str:
    return f"{n / MIB:.1f} MB"


def over_limit(name: str, size: int, cap: int, what: str = "upload limit") -> str:
    """``NAME: 2.4 MB is over the upload limit of 1.0 MB``; sizes that would read the same in MB are
    given in bytes (a file one byte over the limit is not "1.0 MB over 1.0 MB")."""
    have, limit = format_mb(size), format_mb(cap)
    if have == limit:
        have, limit = f"{size:,} bytes", f"{cap:,} bytes ({limit})"
    return f"{name}: {have} is over the {what} of {limit}"


def check_count(n: int, limits: UploadLimits) -> None:
    if n < 1:
        raise UploadError("no photo uploaded; add at least one image")
    if n > limits.max_images:
        raise UploadError(f"{n} photos uploaded; at most {limits.max_images} per request", status=413)


def read_image(data: bytes, name: str, limits: UploadLimits, content_type: str | None = None,
               reduce_to: int | None = WORKING_SIDE) -> UploadedImage:
    """Check and decode one uploaded file (see the module docstring for the checks); ``reduce_to=None``
    decodes a JPEG at full resolution."""
    from PIL import Image, UnidentifiedImageError

    from focusclip.images import decode

    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in GENERIC_CONTENT_TYPES and ctype not in IMAGE_FORMATS.values():
        raise UploadError(f"{name}: content type {ctype!r} is not an accepted image type "
                          f"(expected one of {', '.join(sorted(set(IMAGE_FORMATS.values())))})", status=415)
    if not data:
        raise UploadError(f"{name}: the file is empty; expected a JPEG, PNG, WebP, BMP or GIF image")
    if len(data) > limits.max_file_bytes:
        raise UploadError(over_limit(name, len(data), limits.max_file_bytes), status=413)
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UploadError(f"{name}: not an image (the content is not JPEG, PNG, WebP, BMP or GIF, whatever "
                          "the file name says)", status=415) from None
    except Image.DecompressionBombError:
        raise UploadError(f"{name}: too many pixels (decompression-bomb guard); at most "
                          f"{limits.max_pixels:,} pixels", status=413) from None
    except OSError as e:
        raise UploadError(f"{name}: not a readable image ({e})", status=415) from None
    with im:
        if im.format not in IMAGE_FORMATS:
            raise UploadError(f"{name}: a {im.format} image; accepted: JPEG, PNG, WebP, BMP, GIF", status=415)
        w, h = im.size
        if w * h > limits.max_pixels:
            raise UploadError(f"{name}: {w}x{h} = {w * h:,} pixels is over the limit of {limits.max_pixels:,} "
                              "(decompression-bomb guard)", status=413)
        try:
            if reduce_to and im.format == "JPEG":
                im.draft("RGB", (reduce_to, reduce_to))
            im.load()
            rgb = decode(im, "RGB")  # displayed orientation, every PIL mode (focusclip.images)
        except (OSError, ValueError, SyntaxError) as e:
            raise UploadError(f"{name}: damaged {im.format} image ({e})", status=415) from None
    return UploadedImage(name=name, image=rgb, digest=hashlib.sha256(data).hexdigest(), data=data,
                         original_size=(w, h))


def read_image_file(path: str | os.PathLike, limits: UploadLimits, name: str | None = None) -> UploadedImage:
    """:func:`read_image` on a file already on disk (the page's uploads); its size is checked before reading."""
    name = name or os.path.basename(path)
    try:
        n = os.path.getsize(path)
    except OSError as e:
        raise UploadError(f"{name}: the upload cannot be read ({e.strerror})") from None
    if n > limits.max_file_bytes:
        raise UploadError(over_limit(name, n, limits.max_file_bytes), status=413)
    with open(path, "rb") as f:
        return read_image(f.read(), name, limits)


class DecodedUploads:
    """The page's decoded uploads by file path, so a photo is checked and decoded once, not at every click.

    Least recently used first out, within ``max_bytes`` of memory (:meth:`UploadedImage.nbytes`).
    """

    def __init__(self, max_bytes: int = 512 * MIB):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, UploadedImage] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def read(self, path: str | os.PathLike, limits: UploadLimits) -> UploadedImage:
        try:
            st = os.stat(path)
        except OSError as e:
            raise UploadError(f"{os.path.basename(path)}: the upload cannot be read ({e.strerror})") from None
        key = (os.fspath(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        up = read_image_file(path, limits)
        with self._lock:
            if key not in self._items:
                self._items[key] = up
                self._held += up.nbytes()
            while self._held > self.max_bytes and len(self._items) > 1:
                self._held -= self._items.popitem(last=False)[1].nbytes()
        return up

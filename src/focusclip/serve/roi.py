"""Image preparation: each uploaded photo with its region of interest (ROI), when one is known.

Today an ROI comes from an uploaded keypoints or boxes JSON file (the formats of ``focusclip heatmap``),
matched to its photo by file name (``me.jpg`` <- ``me.json``; a single photo takes a single file
whatever its name). :func:`prepare_images` is the one place that decides each photo's ROI, so a pose
detector is one more provider tried there for photos without a file, and classification "with focus"
reads :attr:`Roi.heatmap` from the :class:`PreparedImage` it is given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.serve.uploads import UploadedImage, UploadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Roi:
    """A photo's region of interest: the heatmap (H, W in [0, 1]) and its overlay for display."""

    kind: str      #: "keypoints" | "boxes" (later: "detector")
    source: str    #: the file (or detector) it came from, as shown to the user
    heatmap: np.ndarray
    overlay: Any   #: PIL RGB image of the photo's size


@dataclass(frozen=True)
class PreparedImage:
    upload: UploadedImage
    roi: Roi | None = None

    @property
    def name(self) -> str:
        return self.upload.name


def roi_from_file(image: Any, path: str | os.PathLike, name: str | None = None) -> Roi:
    """The ROI of a PIL image from a keypoints JSON, else a boxes JSON (the kind is read from the content)."""
    from focusclip.drawing import overlay_from_files

    name = name or Path(path).name
    errors = {}
    for kind in ("keypoints", "boxes"):
        try:
            overlay, heat = overlay_from_files(image, **{kind: path})
            return Roi(kind=kind, source=name, heatmap=heat, overlay=overlay)
        except ValueError as e:  # the readers' InputError: the file is not of this kind
            errors[kind] = (str(e).replace(str(path), name) or type(e).__name__).removeprefix(f"{name}: ")
    if errors["keypoints"] == errors["boxes"]:  # e.g. not JSON at all
        raise UploadError(f"{name}: {errors['keypoints']}")
    raise UploadError(f"{name}: neither keypoints ({errors['keypoints']}) nor boxes ({errors['boxes']})")


def match_roi_files(image_names: Sequence[str], roi_names: Sequence[str]) -> dict[int, int]:
    """Photo index -> ROI-file index: by file stem, or the only file for the only photo."""
    if len(image_names) == 1 and len(roi_names) == 1:
        return {0: 0}
    by_stem: dict[str, int] = {}
    for j, n in enumerate(roi_names):
        stem = Path(n).stem
        if stem in by_stem:
            raise UploadError(f"two ROI files are called {stem}: {roi_names[by_stem[stem]]} and {n}")
        by_stem[stem] = j
    matched = {i: by_stem[Path(n).stem] for i, n in enumerate(image_names) if Path(n).stem in by_stem}
    unused = sorted(set(range(len(roi_names))) - set(matched.values()))
    if unused:
        raise UploadError(f"ROI file(s) {', '.join(roi_names[j] for j in unused)} match no photo; name each "
                          "after its photo (me.jpg <- me.json)")
    return matched


def prepare_images(uploads: Sequence[UploadedImage],
                   roi_files: Sequence[tuple[str, str | os.PathLike]] = ()) -> list[PreparedImage]:
    """Each photo with its ROI from the matched ``(name, path)`` keypoints / boxes file, if any.

    File coordinates are in the photo's own pixels, so the ROI is computed on the full-resolution photo
    (the heatmap has its size); the overlay is scaled to the kept (possibly reduced) image for display.
    """
    matched = match_roi_files([u.name for u in uploads], [n for n, _ in roi_files])
    out = []
    for i, up in enumerate(uploads):
        roi = None
        if i in matched:
            name, path = roi_files[matched[i]]
            roi = roi_from_file(up.full_image(), path, name)
            if roi.overlay.size != up.image.size:
                roi = replace(roi, overlay=roi.overlay.resize(up.image.size))
        out.append(PreparedImage(up, roi))
    return out

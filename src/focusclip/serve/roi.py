"""Image preparation: each uploaded photo with its region of interest (ROI), when one is known.

An ROI comes from an uploaded keypoints or boxes JSON file (the formats of ``focusclip heatmap``),
matched to its photo by file name (``me.jpg`` <- ``me.json``; a single photo takes a single file
whatever its name), or, for photos without a file, from the server's pose detector
(:class:`PeopleFinder`, ``focusclip serve --detect``). :func:`prepare_images` is the one place that
decides each photo's ROI; classification "with focus" reads :attr:`Roi.heatmap` (always at the size of
the photo the model sees) from the :class:`PreparedImage` it is given.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.serve.uploads import UploadedImage, UploadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Roi:
    """A photo's region of interest: the heatmap (H, W in [0, 1]) and its overlay for display."""

    kind: str      #: "keypoints" | "boxes" | "detector"
    source: str    #: the file (or detector) it came from, as shown to the user
    heatmap: np.ndarray
    overlay: Any   #: PIL RGB image of the photo's size

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "source": self.source}


@dataclass(frozen=True)
class PreparedImage:
    upload: UploadedImage
    roi: Roi | None = None
    note: str = ""  #: why a photo that was meant to have an ROI has none (e.g. the detector found nobody)

    @property
    def name(self) -> str:
        return self.upload.name


def roi_from_file(image: Any, path: str | os.PathLike, name: str | None = None) -> Roi:
    """The ROI of a PIL image from a keypoints JSON, else a boxes JSON (the kind is read from the content)."""
    from focusclip.overlays import overlay_from_files

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


class PeopleFinder:
    """The server's pose detector (:func:`focusclip.detect.create_detector`), created at its first use and
    shared by all requests one at a time (detectors keep state between calls and are not thread-safe)."""

    def __init__(self, name: str, factory: Callable[[], Any], mode: str = "person", detector: Any = None):
        self.name = name
        self.mode = mode
        self._factory = factory
        self._detector = detector  #: an already created detector, else one is made at the first call
        self._lock = threading.Lock()

    def __call__(self, image: Any) -> Roi | None:
        """The ROI of everyone found in a PIL image, or None when nobody is found."""
        from focusclip.overlays import overlay_from_detector

        with self._lock:
            if self._detector is None:
                self._detector = self._factory()
            overlay, heat, people = overlay_from_detector(image, self._detector, mode=self.mode)
        if not people:
            return None
        noun = "person" if len(people) == 1 else "people"
        return Roi(kind="detector", source=f"{self.name}, {len(people)} {noun}", heatmap=heat, overlay=overlay)

    def close(self) -> None:
        with self._lock:
            if self._detector is not None and hasattr(self._detector, "close"):
                self._detector.close()
            self._detector = None


def prepare_images(uploads: Sequence[UploadedImage], roi_files: Sequence[tuple[str, str | os.PathLike]] = (),
                   find_people: Callable[[Any], Roi | None] | None = None) -> list[PreparedImage]:
    """Each photo with its ROI: from the matched ``(name, path)`` keypoints / boxes file if any, else from
    ``find_people`` (a :class:`PeopleFinder`) when given, else none.

    File coordinates are in the photo's own pixels, so a file's ROI is computed on the full-resolution
    photo and then scaled, overlay and heatmap, to the kept (possibly reduced) image the model sees; the
    detector looks at the kept image itself.
    """
    matched = match_roi_files([u.name for u in uploads], [n for n, _ in roi_files])
    out = []
    for i, up in enumerate(uploads):
        if i in matched:
            name, path = roi_files[matched[i]]
            out.append(PreparedImage(up, _fit(roi_from_file(up.full_image(), path, name), up.image.size)))
        elif find_people is not None:
            roi = find_people(up.image)
            who = getattr(find_people, "name", "the detector")
            out.append(PreparedImage(up, roi, "" if roi else f"no person found by {who}"))
        else:
            out.append(PreparedImage(up))
    return out


def _fit(roi: Roi, size: tuple[int, int]) -> Roi:
    """``roi`` with overlay and heatmap resized to ``size`` (W, H)."""
    if roi.overlay.size == size:
        return roi
    from PIL import Image

    heat = Image.fromarray(roi.heatmap.astype(np.float32), mode="F").resize(size, Image.BILINEAR)
    return replace(roi, overlay=roi.overlay.resize(size), heatmap=np.clip(np.asarray(heat), 0.0, 1.0))

"""ROI overlays of photos: from keypoint / box files or a detector, and the overlay PNGs commands write.

:mod:`focusclip.drawing` draws (images in, images out). This module gathers what an overlay needs around
it: reading the keypoints / boxes files (:mod:`focusclip.data.keypoint_files`), running a
:mod:`focusclip.detect` detector, and writing overlays as PNG files without writing over an input or an
earlier result. Used by ``focusclip heatmap``, ``focusclip predict --keypoints / --boxes / --detect`` and
``focusclip serve``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.drawing import roi_overlay
from focusclip.errors import UsageError
from focusclip.heatmaps import DEFAULT_MIN_SIGMA

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


def overlay_from_files(image: Any, keypoints: PathLike | None = None, boxes: PathLike | None = None,
                       mode: str = "person", size: tuple[int, int] | None = None,
                       min_sigma: float = DEFAULT_MIN_SIGMA, alpha: float = 0.5) -> tuple[Any, np.ndarray]:
    """``(overlay, heatmap)`` of a PIL image from a keypoints or a boxes JSON file
    (:mod:`focusclip.data.keypoint_files`), drawn by :func:`focusclip.drawing.roi_overlay`."""
    from focusclip.data.keypoint_files import read_boxes_file, read_keypoints_file

    if (keypoints is None) == (boxes is None):
        raise UsageError("give exactly one of keypoints or boxes")
    if keypoints is not None:
        kp = read_keypoints_file(keypoints, image_size=(image.height, image.width))
        logger.info("%d people, %d visible joints", len(kp.joints), int(kp.visible.sum()))
        return roi_overlay(image, kp.joints, kp.visible, mode=mode, src_size=kp.src_size, size=size,
                           min_sigma=min_sigma, alpha=alpha)
    box_arr = read_boxes_file(boxes)
    logger.info("%d boxes", len(box_arr))
    return roi_overlay(image, boxes=box_arr, size=size, min_sigma=min_sigma, alpha=alpha)


def overlay_from_detector(image: Any, detector: Any, mode: str = "person", size: tuple[int, int] | None = None,
                          min_sigma: float = DEFAULT_MIN_SIGMA, alpha: float = 0.5) -> tuple[Any, np.ndarray, list]:
    """``(overlay, heatmap, people)`` of the people a :mod:`focusclip.detect` detector finds in a PIL image.

    With nobody found the heatmap is all zeros and the overlay is the image; callers decide whether that
    is a warning (:func:`detected_overlay`) or a note on the page (``focusclip serve``).
    """
    from focusclip.detect import people_arrays

    people = detector.detect(image).people
    logger.info("%d people, %d visible joints", len(people), sum(int(p.visible.sum()) for p in people))
    joints, visible = people_arrays(people)
    overlay, heat = roi_overlay(image, joints, visible, mode=mode, size=size, min_sigma=min_sigma, alpha=alpha)
    return overlay, heat, people


def detected_overlay(image: Any, name: str, detector: Any, mode: str = "person", size: tuple[int, int] | None = None,
                     min_sigma: float = DEFAULT_MIN_SIGMA, alpha: float = 0.5) -> tuple[Any, np.ndarray]:
    """``(overlay, heatmap)`` of the people a detector finds in ``image`` (an empty map, warned under
    ``name``, when it finds nobody)."""
    overlay, heat, people = overlay_from_detector(image, detector, mode, size, min_sigma, alpha)
    if not people:
        logger.warning("%s: no person found; the ROI heatmap is empty", name)
    return overlay, heat


def write_png(path: PathLike, image: Any) -> None:
    """Write a PIL image as PNG, atomically (a reader never sees half a file)."""
    from focusclip.io import atomic_save

    atomic_save(path, lambda f: image.save(f, format="PNG"))


def overlay_path(image: PathLike, out_dir: PathLike) -> Path:
    """Where the overlay of ``image`` goes: ``<out_dir>/<image stem>_roi.png``."""
    return Path(out_dir) / f"{Path(image).stem}_roi.png"


def check_overlay_targets(images: Sequence[PathLike], out_dir: PathLike, overwrite: bool) -> None:
    """Before any work: no overlay may be an input, two images must not share an overlay name, and
    existing overlays need ``overwrite``."""
    from focusclip.io import check_no_overwrite, check_not_inputs

    seen: dict[str, PathLike] = {}
    for image in images:
        out = str(overlay_path(image, out_dir))
        if out in seen:
            raise UsageError(f"{seen[out]} and {image} would both write the overlay {out}; give the images "
                             "different names")
        seen[out] = image
    inputs = {f"IMAGE {i}": p for i, p in enumerate(images)}
    for out in seen:
        check_not_inputs({"--overlay-dir": out}, inputs)
    check_no_overwrite(seen, overwrite)


def write_overlay(image: PathLike, out_dir: PathLike, inputs: Sequence[PathLike], *,
                  keypoints: PathLike | None = None, boxes: PathLike | None = None,
                  detector: Any = None) -> tuple[Path, np.ndarray]:
    """``(overlay path, heatmap at the image's size)``: the ROI overlay of the image file ``image`` from
    its keypoints file, its boxes file or a detector (exactly one), written to :func:`overlay_path`.

    ``inputs`` are all the command's input images; the overlay may be none of them nor the ROI file.
    """
    from focusclip.images import open_rgb
    from focusclip.io import check_not_inputs

    if sum(x is not None for x in (keypoints, boxes, detector)) != 1:
        raise UsageError("give exactly one of keypoints, boxes or detector")
    out = overlay_path(image, out_dir)
    named = {f"IMAGE {i}": p for i, p in enumerate(inputs)}
    if keypoints is not None:
        named["--keypoints"] = keypoints
    if boxes is not None:
        named["--boxes"] = boxes
    check_not_inputs({"overlay": out}, named)
    if detector is not None:
        overlay, heat = detected_overlay(open_rgb(image), str(image), detector)
    else:
        overlay, heat = overlay_from_files(open_rgb(image), keypoints=keypoints, boxes=boxes)
    write_png(out, overlay)
    return out, heat


def write_people_overlay(image: PathLike, out_dir: PathLike, inputs: Sequence[PathLike], subjects: Sequence[Any],
                         roi_files: dict[str, PathLike | None] | None = None) -> Path:
    """Write the ROI overlay of the image file ``image`` with its people numbered
    (:func:`focusclip.drawing.people_overlay`) to :func:`overlay_path`; the overlay may be none of the
    command's ``inputs`` nor its ``roi_files`` (name -> path)."""
    from focusclip.drawing import people_overlay
    from focusclip.images import open_rgb
    from focusclip.io import check_not_inputs

    out = overlay_path(image, out_dir)
    check_not_inputs({"overlay": out}, {f"IMAGE {i}": p for i, p in enumerate(inputs)} | dict(roi_files or {}))
    overlay, _ = people_overlay(open_rgb(image), subjects)
    write_png(out, overlay)
    return out

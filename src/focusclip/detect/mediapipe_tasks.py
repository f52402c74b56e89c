"""MediaPipe Tasks ``PoseLandmarker``: several people per photo from a ``.task`` model file you provide.

The current MediaPipe API (``mediapipe.tasks.python.vision.PoseLandmarker``; in the 0.10.x wheels and the
only one in 0.10.30+ and 1.x, on Python 3.13 too). Its wheels carry no model: give a PoseLandmarker
bundle (``pose_landmarker_lite.task``, ``_full`` or ``_heavy``, published by Google at
https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker) by local path or URL (downloaded
once into ``$FOCUSCLIP_CACHE``, :mod:`focusclip.detect.weights`). ``num_poses`` people at most per photo.
Each pose's 33 landmarks give COCO's 17 keypoints and MPII's 16 joints as for the classic detector; a
landmark's ``visibility`` is its joint's score. No face boxes (the Tasks face detector needs another model
file).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from focusclip.detect.base import Detection, DetectorUnavailable, Person, person_from_coco
from focusclip.detect.weights import model_file
from focusclip.errors import InputError
from focusclip.skeleton import BLAZEPOSE_LANDMARKS, blazepose_to_coco

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'focusclip[detect]' (mediapipe with the Tasks API)"
MODEL_HINT = ("a PoseLandmarker .task file, e.g. pose_landmarker_full.task from "
              "https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker, by path or URL")


def import_tasks() -> tuple[Any, Any, Any]:
    """``(mediapipe, mediapipe.tasks.python.vision, BaseOptions)`` or one clear error saying what to install."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as e:
        raise DetectorUnavailable(f"the mediapipe-tasks detector needs mediapipe's Tasks API: {INSTALL_HINT} ({e})") from None
    return mp, vision, BaseOptions


def people_from_landmarks(poses: Sequence[Sequence[Any]], width: int, height: int,
                          min_visibility: float) -> list[Person]:
    """People from PoseLandmarker's ``pose_landmarks`` (per pose, 33 landmarks with normalised ``x``, ``y``
    and ``visibility``) on a ``width`` x ``height`` photo."""
    people = []
    for landmarks in poses:
        if len(landmarks) != len(BLAZEPOSE_LANDMARKS):
            raise RuntimeError(f"PoseLandmarker returned {len(landmarks)} landmarks, expected {len(BLAZEPOSE_LANDMARKS)}")
        xy = np.array([[p.x * width, p.y * height] for p in landmarks], dtype=np.float64)
        vis = np.array([p.visibility if p.visibility is not None else 0.0 for p in landmarks], dtype=np.float64)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        points, scores = blazepose_to_coco(xy, np.where(inside & np.isfinite(vis), vis, 0.0))
        visible = scores >= min_visibility
        if not visible.any():
            continue
        people.append(person_from_coco(points, scores, min_visibility, float(scores[visible].mean())))
    return people


class TasksPoseDetector:
    """PoseLandmarker on PIL RGB images (module docstring). Close it (or use ``with``)."""

    name = "mediapipe-tasks"

    def __init__(self, weights: str | os.PathLike | None = None, num_poses: int = 8, min_visibility: float = 0.5,
                 min_pose_detection_confidence: float = 0.5, min_pose_presence_confidence: float = 0.5,
                 cache: str | os.PathLike | None = None):
        mp, vision, base_options = import_tasks()
        if not weights:
            raise InputError(f"the mediapipe-tasks detector needs its model: {MODEL_HINT}")
        if int(num_poses) < 1:
            raise InputError(f"num_poses must be at least 1, got {num_poses}")
        self.path = model_file(weights, "PoseLandmarker model", MODEL_HINT, cache)
        if not zipfile.is_zipfile(self.path):
            raise InputError(f"{self.path}: not a MediaPipe .task bundle (a zip holding pose_detector.tflite and "
                             f"pose_landmarks_detector.tflite); expected {MODEL_HINT}")
        self._mp = mp
        self.version = getattr(mp, "__version__", "?")
        self.max_people = int(num_poses)
        self.min_visibility = float(min_visibility)
        self.settings = {"num_poses": self.max_people, "min_visibility": self.min_visibility,
                         "min_pose_detection_confidence": min_pose_detection_confidence,
                         "min_pose_presence_confidence": min_pose_presence_confidence}
        options = vision.PoseLandmarkerOptions(
            base_options=base_options(model_asset_path=str(self.path)),
            running_mode=vision.RunningMode.IMAGE, num_poses=self.max_people,
            min_pose_detection_confidence=min_pose_detection_confidence,
            min_pose_presence_confidence=min_pose_presence_confidence)
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as e:
            raise InputError(f"{self.path}: MediaPipe could not load it as a PoseLandmarker model ({e})") from None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.path.name, "mediapipe": self.version, "max_people": self.max_people,
                **self.settings}

    def detect(self, image: Any) -> Detection:
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        return Detection(people=people_from_landmarks(result.pose_landmarks, rgb.shape[1], rgb.shape[0],
                                                      self.min_visibility))

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> TasksPoseDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

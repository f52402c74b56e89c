"""MediaPipe BlazePose (classic ``solutions.pose``) + MediaPipe face detection, fully offline.

The models run from the files inside the mediapipe wheel: ``pose_detection.tflite`` and
``pose_landmark_full.tflite`` (``model_complexity=1``; the lite and heavy landmark models are not in the
wheel and would be downloaded, so they are never asked for) and ``face_detection_full_range_sparse.tflite``
(``model_selection=1``, faces up to about 5 m away). The 0.10 wheels from 0.10.13 to 0.10.21 ship them
(0.10.15 and later pin numpy < 2); 0.10.30 and later, like the 1.x wheels, ship none: hence the bounds of
the ``detect`` extra (see docs/training-data.md).

BlazePose finds one person per image it is shown (the most prominent); :mod:`focusclip.detect.people`
shows it the whole photo, the region around each face and windows of the photo, and keeps every person
the face detector confirms, once (``multi=True``, the default; ``multi=False``: the whole photo only, at
most one person, several times faster; also what ``max_people=1`` gives). Its 33 landmarks give COCO's 17 keypoints
(:data:`focusclip.skeleton.BLAZEPOSE_TO_COCO`) and so MPII's 16 joints; a landmark's ``visibility`` score
is its joint's score, and joints below ``min_visibility`` are invisible.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from focusclip.detect.base import Detection, DetectorUnavailable, match_faces, person_from_coco, strongest
from focusclip.detect.people import Box, Search, find_people
from focusclip.skeleton import BLAZEPOSE_LANDMARKS, blazepose_to_coco

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'focusclip[detect]' (mediapipe 0.10.13-0.10.14, whose wheels ship the models)"
#: Google's PoseLandmarker model (full), for the Tasks API (``mediapipe-tasks``)
TASK_URL = ("https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/latest/"
            "pose_landmarker_full.task")


def import_mediapipe() -> Any:
    """``mediapipe`` with its classic solutions, or one clear error saying what to install."""
    try:
        import mediapipe as mp
    except ImportError as e:
        raise DetectorUnavailable(f"the mediapipe detector needs mediapipe: {INSTALL_HINT} ({e})") from None
    solutions = getattr(mp, "solutions", None)
    if solutions is None or not hasattr(solutions, "pose"):
        raise DetectorUnavailable(
            f"mediapipe {getattr(mp, '__version__', '?')} has no classic solutions.pose API (the 1.x and >= 0.10.30 "
            f"wheels dropped it and its models, and 0.10.14 has no wheels for Python >= 3.13): use its Tasks API with "
            f"`--detector mediapipe-tasks --detector-weights pose_landmarker_full.task` (a path, or the URL {TASK_URL}), "
            f"or on Python < 3.13 {INSTALL_HINT}")
    return mp


def classic_available() -> bool:
    """Whether this mediapipe has the classic solutions (and so this offline detector)."""
    try:
        import_mediapipe()
    except DetectorUnavailable:
        return False
    return True


class MediaPipeDetector:
    """BlazePose + face detection on PIL RGB images (module docstring). Close it (or use ``with``)."""

    name = "mediapipe"

    def __init__(self, min_visibility: float = 0.5, min_detection_confidence: float = 0.5,
                 min_face_confidence: float = 0.5, faces: bool = True, multi: bool = True,
                 windows: tuple[float, ...] = Search.windows, min_face_score: float = Search.min_face_score,
                 max_people: int | None = None):
        mp = import_mediapipe()
        self.version = mp.__version__
        self.min_visibility = float(min_visibility)
        self.multi = bool(multi) and max_people != 1  # one person wanted: the single pass does it
        self.max_people = 1 if not self.multi else max_people
        self.search = Search(windows=tuple(float(v) for v in windows), min_visibility=self.min_visibility,
                             min_face_score=float(min_face_score))
        self.settings = {"min_visibility": min_visibility, "min_detection_confidence": min_detection_confidence,
                         "min_face_confidence": min_face_confidence, "model_complexity": 1, "face_model": 1,
                         "multi": self.multi}
        if self.multi:
            self.settings.update(windows=list(self.search.windows), min_face_score=self.search.min_face_score)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                            min_detection_confidence=min_detection_confidence)
        self._faces = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_face_confidence) if faces or multi else None
        # confirming a person: both face models on the head crop (short range: the face fills the crop)
        self._near_faces = mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=min_face_confidence) if multi else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": "blazepose-full", "mediapipe": self.version,
                "max_people": self.max_people, **self.settings}

    def detect(self, image: Any) -> Detection:
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        if self.multi:
            people, faces = find_people(rgb, self._pose_points, self._face_boxes, self._confirm_faces, self.search)
            return Detection(people=strongest(people, self.max_people), faces=faces)
        faces = [box for box, _ in self._face_boxes(rgb)]
        people = [person_from_coco(points, scores, self.min_visibility, float(np.mean(scores)))
                  for points, scores in self._pose_points(rgb)]
        match_faces(people, faces)
        return Detection(people=people, faces=faces)

    def _pose_points(self, rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """BlazePose on an RGB array: [] or one person's 17 COCO keypoints (pixels) and scores."""
        h, w = rgb.shape[:2]
        result = self._pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return []
        lm = result.pose_landmarks.landmark
        if len(lm) != len(BLAZEPOSE_LANDMARKS):
            raise RuntimeError(f"BlazePose returned {len(lm)} landmarks, expected {len(BLAZEPOSE_LANDMARKS)}")
        xy = np.array([[p.x * w, p.y * h] for p in lm])
        vis = np.array([p.visibility for p in lm])
        return [blazepose_to_coco(xy, vis)]

    def _face_boxes(self, rgb: np.ndarray, detector: Any = None) -> list[tuple[Box, float]]:
        detector = detector or self._faces
        if detector is None:
            return []
        h, w = rgb.shape[:2]
        out = []
        for d in detector.process(np.ascontiguousarray(rgb)).detections or []:
            b = d.location_data.relative_bounding_box
            out.append(((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h), float(d.score[0])))
        return out

    def _confirm_faces(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        return self._face_boxes(rgb, self._near_faces) + self._face_boxes(rgb, self._faces)

    def close(self) -> None:
        self._pose.close()
        for d in (self._faces, self._near_faces):
            if d is not None:
                d.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

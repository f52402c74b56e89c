"""RTMPose (top-down, COCO's 17 keypoints) run by rtmlib, on person boxes from a YOLOX model or, offline,
from the MediaPipe multi-person search.

rtmlib does the work: ``rtmlib.RTMPose`` crops each person box (1.25x padding, the model's aspect),
normalises, runs the model and decodes its SimCC outputs; ``rtmlib.YOLOX`` (``det_mode="human"``) finds
the person boxes when you give its weights (``person_weights``). Without them the boxes are those of the
people :class:`~focusclip.detect.mediapipe_pose.MediaPipeDetector` finds (offline, every person whose face
shows), so RTMPose refines MediaPipe's people: something rtmlib cannot do by itself. Weights by local
path (``.onnx`` or an ONNX SDK ``.zip``) or URL, as for RTMO (:func:`focusclip.detect.rtmo.resolve_weights`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Any

import numpy as np

from focusclip.detect.base import Detection, person_from_coco, strongest
from focusclip.detect.rtmo import import_rtmlib, resolve_weights
from focusclip.errors import InputError

logger = logging.getLogger(__name__)


def _load(factory: Any, path: Any, what: str, **kwargs: Any) -> Any:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # rtmlib prints "load <model> with <backend> backend"
            return factory(str(path), backend="onnxruntime", device="cpu", **kwargs)
    except Exception as e:  # onnxruntime raises its own types for unreadable models
        raise InputError(f"{path}: not a loadable {what} ONNX model ({type(e).__name__}: {e})") from None


class RTMPoseDetector:
    """RTMPose on PIL RGB images (module docstring). Close it (or use ``with``)."""

    name = "rtmpose"

    def __init__(self, weights: str | os.PathLike, person_weights: str | os.PathLike | None = None,
                 min_keypoint_score: float = 0.3, person_score_threshold: float = 0.5, max_people: int | None = None,
                 cache: str | os.PathLike | None = None, **person_options: Any):
        rtmlib = import_rtmlib()
        self.path = resolve_weights(weights, cache, what="RTMPose weights")
        self.pose = _load(rtmlib.RTMPose, self.path, "RTMPose")
        shape = self.pose.session.get_inputs()[0].shape
        outputs = self.pose.session.get_outputs()
        if len(shape) != 4 or not all(isinstance(v, int) for v in shape[2:]) or len(outputs) != 2:
            raise InputError(f"{self.path}: expected RTMPose's input (1, 3, H, W) and outputs simcc_x, simcc_y; got "
                             f"input {shape}, {len(outputs)} outputs")
        self.pose.model_input_size = (int(shape[3]), int(shape[2]))  # rtmlib: (width, height)
        self.min_keypoint_score = float(min_keypoint_score)
        self.max_people = max_people
        self.person_path = None
        self._boxes: Any
        if person_weights:
            self.person_path = resolve_weights(person_weights, cache, what="YOLOX person detector weights")
            self._boxes = _load(rtmlib.YOLOX, self.person_path, "YOLOX", det_mode="human",
                                score_thr=float(person_score_threshold))
            self._mediapipe = None
        else:
            from focusclip.detect.mediapipe_pose import MediaPipeDetector

            self._mediapipe = MediaPipeDetector(**person_options)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "weights": self.path.name, "input": list(self.pose.model_input_size[::-1]),
                "person_boxes": self.person_path.name if self.person_path else "mediapipe",
                "min_keypoint_score": self.min_keypoint_score, "max_people": self.max_people}

    def detect(self, image: Any) -> Detection:
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        faces: list = []
        face_of: list = []
        if self._mediapipe is not None:
            found = self._mediapipe.detect(image)
            boxes = [p.box for p in found.people]
            face_of = [p.face_box for p in found.people]
            faces = found.faces
        else:
            boxes = [tuple(float(v) for v in b) for b in np.asarray(self._boxes(bgr)).reshape(-1, 4)]
        people = []
        for i, box in enumerate(boxes):
            kpts, scores = self.pose(bgr, bboxes=[list(box)])
            sc = np.asarray(scores[0], dtype=np.float64)
            visible = sc >= self.min_keypoint_score
            if not visible.any():
                continue
            person = person_from_coco(np.asarray(kpts[0], dtype=np.float64), sc, self.min_keypoint_score,
                                      float(sc[visible].mean()))
            person.face_box = face_of[i] if face_of else None
            people.append(person)
        return Detection(people=strongest(people, self.max_people), faces=faces)

    def close(self) -> None:
        if self._mediapipe is not None:
            self._mediapipe.close()

    def __enter__(self) -> RTMPoseDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

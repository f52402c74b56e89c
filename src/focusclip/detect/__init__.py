"""Finding people in photos that have no keypoint file: MPII joints, person and face boxes per person.

``create_detector(name, **options)`` builds one of :data:`DETECTORS`:

* ``mediapipe`` (offline default, ``pip install 'focusclip[detect]'``): MediaPipe's BlazePose through its
  classic ``solutions.pose`` API and its face detector, whose models ship inside the mediapipe wheel.
  BlazePose finds one person in what it is shown; :mod:`focusclip.detect.people` shows it the whole
  photo, the regions around faces and windows of the photo and keeps **every person** a face detector
  confirms, once (``multi=False``: the old one-person pass).
* ``mediapipe-tasks`` (needs a PoseLandmarker ``.task`` file, by path or URL): MediaPipe's current
  Tasks API, ``num_poses`` people per photo; works with the mediapipe wheels for Python 3.13.
* ``rtmpose`` (needs its ONNX weights; ``rtmlib``): RTMPose, top-down, on person boxes from a YOLOX
  model (``person_weights``) or, offline, from the ``mediapipe`` detector's people.
* ``rtmo`` (needs its ONNX weights, by URL or local path; ``rtmlib`` and ``onnxruntime``): RTMO, a
  one-stage multi-person pose model (COCO's 17 keypoints), run by rtmlib.

Both give :class:`~focusclip.detect.base.Person` objects in MPII joint order
(:func:`focusclip.skeleton.coco_to_mpii`); :mod:`focusclip.detect.run` turns folders of photos into
records, resumably.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from focusclip.detect.base import (
    Detection,
    Detector,
    DetectorUnavailable,
    Person,
    people_arrays,
    person_record,
)
from focusclip.errors import UsageError


def _mediapipe(**options: Any) -> Detector:
    from focusclip.detect.mediapipe_pose import MediaPipeDetector

    return MediaPipeDetector(**options)


def _mediapipe_tasks(**options: Any) -> Detector:
    from focusclip.detect.mediapipe_tasks import TasksPoseDetector

    return TasksPoseDetector(**options)


def _rtmo(**options: Any) -> Detector:
    from focusclip.detect.rtmo import RTMODetector

    return RTMODetector(**options)


def _rtmpose(**options: Any) -> Detector:
    from focusclip.detect.rtmpose import RTMPoseDetector

    return RTMPoseDetector(**options)


#: name -> factory taking the detector's keyword options
DETECTORS: MappingProxyType[str, Callable[..., Detector]] = MappingProxyType(
    {"mediapipe": _mediapipe, "mediapipe-tasks": _mediapipe_tasks, "rtmo": _rtmo, "rtmpose": _rtmpose})


def create_detector(name: str = "mediapipe", **options: Any) -> Detector:
    """A detector by name (:data:`DETECTORS`); options go to its constructor."""
    if name not in DETECTORS:
        raise UsageError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[name](**options)


#: what ``--detector-weights`` must name, per detector that needs a model file
WEIGHTS_NEEDED = MappingProxyType({
    "mediapipe-tasks": "a PoseLandmarker .task file (e.g. pose_landmarker_full.task), by path or URL",
    "rtmo": "an RTMO .onnx or ONNX SDK .zip, by path or URL",
    "rtmpose": "an RTMPose .onnx or ONNX SDK .zip, by path or URL"})


def detector_options(name: str, weights: str | None = None, min_visibility: float | None = None,
                     max_people: int | None = None, person_weights: str | None = None) -> dict[str, Any]:
    """The constructor options of detector ``name`` from the settings every caller offers: ``weights``
    (required by mediapipe-tasks and rtmo, :data:`WEIGHTS_NEEDED`; refused by mediapipe, whose models are
    in its wheel), ``min_visibility`` (the confidence below which a joint is invisible; rtmo calls it
    ``min_keypoint_score``) and ``max_people`` (the most people kept per photo, the highest-scoring;
    mediapipe with 1 makes the single whole-photo pass; mediapipe-tasks calls it ``num_poses``);
    ``person_weights``: rtmpose's YOLOX person detector (default: the people mediapipe finds)."""
    if name not in DETECTORS:
        raise UsageError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    options: dict[str, Any] = {}
    if name in WEIGHTS_NEEDED:
        if not weights:
            raise UsageError(f"the {name} detector needs --detector-weights PATH|URL ({WEIGHTS_NEEDED[name]})")
        options["weights"] = weights
    elif weights:
        raise UsageError(f"the {name} detector uses the models inside its package; --detector-weights is for "
                         f"{' and '.join(WEIGHTS_NEEDED)}")
    if person_weights:
        if name != "rtmpose":
            raise UsageError(f"--person-weights is for the rtmpose detector, not {name}")
        options["person_weights"] = person_weights
    if min_visibility is not None:
        options["min_keypoint_score" if name in ("rtmo", "rtmpose") else "min_visibility"] = min_visibility
    if max_people is not None:
        if int(max_people) < 1:
            raise UsageError(f"--max-people must be at least 1, got {max_people}")
        options["num_poses" if name == "mediapipe-tasks" else "max_people"] = int(max_people)
    return options


__all__ = ["DETECTORS", "Detection", "Detector", "DetectorUnavailable", "Person", "WEIGHTS_NEEDED", "create_detector", "detector_options", "people_arrays", "person_record"]

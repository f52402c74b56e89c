"""RTMO (one-stage multi-person pose, COCO's 17 keypoints) run by rtmlib (onnxruntime underneath).

rtmlib loads the model, letterboxes the photo and runs it, and suppresses overlapping people
(``rtmlib.RTMO``'s ``preprocess`` / ``inference`` and its ``multiclass_nms``). What stays here, because
rtmlib does not do it: weights from an ONNX SDK ``.zip`` on disk (rtmlib takes an ``.onnx`` path or a URL,
and treats any path that does not exist as a URL to download, so a typo would go to the network; here a
missing path is a clear error and nothing is downloaded unless a URL is given), checking the model's
inputs and outputs when it loads, and keeping each person's box and score (``rtmlib.RTMO.__call__``
returns keypoints only, and a zero-filled person when nobody is found).

The model file is the ``end2end.onnx`` of mmpose's RTMO ONNX SDK archives (for example
``rtmo-s_8xb32-600e_body7-640x640-*.zip``), given by local path (``.onnx`` or the ``.zip``) or, with a
network, by URL: it is then downloaded once into the cache folder (``$FOCUSCLIP_CACHE`` or
``~/.cache/focusclip``) and the ``.onnx`` is taken out of a zip. Nothing is downloaded unless a URL is
given.

Inputs and outputs (checked when the model loads): one input ``(1, 3, H, W)`` float32, a BGR image
resized to fit ``H x W`` with its aspect kept, placed at the top-left of a canvas of grey 114, not
normalised; two outputs ``dets (1, N, 5)`` = x1 y1 x2 y2 score and ``keypoints (1, N, 17, 3)`` = x y
score, in canvas pixels. People below ``score_threshold`` are dropped, overlapping ones suppressed (NMS
at ``nms_threshold`` IoU), and keypoints below ``min_keypoint_score`` are invisible.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.detect.base import Detection, DetectorUnavailable, person_from_coco, strongest
from focusclip.detect.weights import cache_dir, model_file
from focusclip.errors import InputError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'focusclip[rtmo]' (rtmlib and onnxruntime)"
PAD_VALUE = 114


def resolve_weights(spec: str | os.PathLike, cache: str | os.PathLike | None = None, what: str = "RTMO weights") -> Path:
    """A local ``.onnx`` from a path (``.onnx`` or ``.zip``) or a URL (downloaded once, atomically)."""
    cache = Path(cache) if cache is not None else cache_dir()
    local = model_file(spec, what, "an .onnx file, an mmpose ONNX SDK .zip or a URL", cache)
    if local.suffix.lower() != ".zip":
        return local
    return _onnx_from_zip(local, cache)


def _onnx_from_zip(archive: Path, cache: Path) -> Path:
    out = cache / f"{archive.stem}.onnx"
    if out.exists():
        return out
    with zipfile.ZipFile(archive) as z:
        names = sorted((n for n in z.namelist() if n.endswith(".onnx")), key=lambda n: "end2end" not in n)
        if not names:
            raise InputError(f"{archive}: no .onnx file inside (expected an RTMO ONNX SDK archive with end2end.onnx)")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
        tmp.write_bytes(z.read(names[0]))
        os.replace(tmp, out)
    return out


def import_rtmlib() -> Any:
    """``rtmlib`` (with onnxruntime), or one clear error saying what to install."""
    try:
        import onnxruntime  # noqa: F401 - rtmlib's backend here
        import rtmlib
    except ImportError as e:
        raise DetectorUnavailable(f"the rtmo detector needs rtmlib and onnxruntime: {INSTALL_HINT} ({e})") from None
    return rtmlib


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, score_threshold: float = -np.inf) -> list[int]:
    """Indices kept by rtmlib's greedy non-maximum suppression (highest score first; scores must exceed
    ``score_threshold``)."""
    from rtmlib.tools.object_detection.post_processings import multiclass_nms

    if not len(boxes):
        return []
    _, keep = multiclass_nms(np.asarray(boxes, dtype=np.float64), np.asarray(scores, dtype=np.float64)[:, None],
                             nms_thr=threshold, score_thr=score_threshold)
    return [] if keep is None else [int(i) for i in keep]


class RTMODetector:
    """RTMO on PIL RGB images through onnxruntime (module docstring)."""

    name = "rtmo"

    def __init__(self, weights: str | os.PathLike, score_threshold: float = 0.5, nms_threshold: float = 0.45,
                 min_keypoint_score: float = 0.3, cache: str | os.PathLike | None = None, threads: int = 0,
                 max_people: int | None = None):
        rtmlib = import_rtmlib()
        self.path = resolve_weights(weights, cache)
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # rtmlib prints "load <model> with <backend> backend"
                self.model = rtmlib.RTMO(str(self.path), backend="onnxruntime", device="cpu",
                                         score_thr=self.score_threshold, nms_thr=self.nms_threshold)
            if threads:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                self.model.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                          providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for unreadable models
            raise InputError(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        self.session = self.model.session
        self.input_name, self.input_hw = self._check_io()
        self.model.model_input_size = self.input_hw
        self.min_keypoint_score = float(min_keypoint_score)
        self.max_people = max_people

    def _check_io(self) -> tuple[str, tuple[int, int]]:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        ok = (shape is not None and len(shape) == 4 and shape[1] == 3 and len(outputs) == 2
              and len(outputs[0].shape) == 3 and len(outputs[1].shape) == 4)
        if not ok:
            got = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
            raise InputError(f"{self.path}: expected RTMO's input (1, 3, H, W) and outputs dets (1, N, 5), keypoints "
                             f"(1, N, 17, 3); got inputs {got[0]}, outputs {got[1]}")
        h, w = (int(v) if isinstance(v, int) else 640 for v in shape[2:])
        return inputs[0].name, (h, w)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "weights": self.path.name, "input": list(self.input_hw),
                "score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold,
                "min_keypoint_score": self.min_keypoint_score, "max_people": self.max_people}

    def preprocess(self, image: Any) -> tuple[np.ndarray, float]:
        """The (1, 3, H, W) float32 BGR canvas rtmlib makes, and the resize ratio."""
        canvas, ratio = self.model.preprocess(np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1]))
        return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)[None], float(ratio)

    def detect(self, image: Any) -> Detection:
        tensor, ratio = self.preprocess(image)
        dets, kpts = self.model.inference(tensor[0].transpose(1, 2, 0))
        dets, kpts = np.asarray(dets[0], dtype=np.float64), np.asarray(kpts[0], dtype=np.float64)
        if dets.ndim != 2 or dets.shape[-1] != 5 or kpts.shape[1:] != (17, 3) or len(kpts) != len(dets):
            raise RuntimeError(f"{self.path}: outputs of shapes {dets.shape} and {kpts.shape}; expected (N, 5), (N, 17, 3)")
        boxes, scores = dets[:, :4] / ratio, dets[:, 4]
        keep = nms(boxes, scores, self.nms_threshold, np.nextafter(self.score_threshold, -np.inf))
        people = [person_from_coco(kpts[i, :, :2] / ratio, kpts[i, :, 2], self.min_keypoint_score, float(scores[i]),
                                   tuple(boxes[i])) for i in keep]
        return Detection(people=strongest(people, self.max_people))

    def close(self) -> None:
        pass

    def __enter__(self) -> RTMODetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

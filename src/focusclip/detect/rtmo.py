"""RTMO (one-stage multi-person pose, COCO's 17 keypoints) through onnxruntime, as rtmlib runs it.

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

import logging
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.detect.base import Detection, DetectorUnavailable, person_from_coco
from focusclip.errors import InputError, MissingInput

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'focusclip[rtmo]' (onnxruntime)"
PAD_VALUE = 114


def cache_dir() -> Path:
    """Where downloaded weights go: ``$FOCUSCLIP_CACHE`` or ``~/.cache/focusclip``."""
    return Path(os.environ.get("FOCUSCLIP_CACHE") or Path.home() / ".cache" / "focusclip")


def resolve_weights(spec: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """A local ``.onnx`` from a path (``.onnx`` or ``.zip``) or a URL (downloaded once, atomically)."""
    text = str(spec)
    cache = Path(cache) if cache is not None else cache_dir()
    if "://" in text:
        local = cache / text.rstrip("/").rsplit("/", 1)[-1]
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{os.getpid()}.part")
            logger.info("downloading %s -> %s", text, local)
            try:
                with urllib.request.urlopen(text, timeout=60) as r, tmp.open("wb") as f:  # noqa: S310 - user's URL
                    shutil.copyfileobj(r, f)
                os.replace(tmp, local)
            except OSError as e:
                raise OSError(f"could not download the RTMO weights {text}: {e}") from None
            finally:
                if tmp.exists():
                    tmp.unlink()
    else:
        local = Path(text)
        if not local.is_file():
            raise MissingInput(f"RTMO weights not found: {local} (an .onnx file, an RTMO ONNX SDK .zip or a URL)")
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


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression (highest score first)."""
    order = np.argsort(-scores, kind="stable")
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1, yy1 = np.maximum(boxes[i, 0], boxes[rest, 0]), np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2, yy2 = np.minimum(boxes[i, 2], boxes[rest, 2]), np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return keep


class RTMODetector:
    """RTMO on PIL RGB images through onnxruntime (module docstring)."""

    name = "rtmo"
    max_people = None

    def __init__(self, weights: str | os.PathLike, score_threshold: float = 0.5, nms_threshold: float = 0.45,
                 min_keypoint_score: float = 0.3, cache: str | os.PathLike | None = None, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise DetectorUnavailable(f"the rtmo detector needs onnxruntime: {INSTALL_HINT} ({e})") from None
        self.path = resolve_weights(weights, cache)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for unreadable models
            raise InputError(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        self.input_name, self.input_hw = self._check_io()
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.min_keypoint_score = float(min_keypoint_score)

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
                "min_keypoint_score": self.min_keypoint_score}

    def preprocess(self, image: Any) -> tuple[np.ndarray, float]:
        """The (1, 3, H, W) float32 BGR canvas and the resize ratio."""
        from PIL import Image

        h, w = self.input_hw
        rgb = image.convert("RGB")
        ratio = min(h / rgb.height, w / rgb.width)
        size = (max(1, int(rgb.width * ratio)), max(1, int(rgb.height * ratio)))
        canvas = np.full((h, w, 3), PAD_VALUE, dtype=np.uint8)
        canvas[: size[1], : size[0]] = np.asarray(rgb.resize(size, Image.BILINEAR))
        bgr = canvas[..., ::-1].transpose(2, 0, 1)
        return np.ascontiguousarray(bgr, dtype=np.float32)[None], ratio

    def detect(self, image: Any) -> Detection:
        tensor, ratio = self.preprocess(image)
        dets, kpts = self.session.run(None, {self.input_name: tensor})
        dets, kpts = np.asarray(dets[0], dtype=np.float64), np.asarray(kpts[0], dtype=np.float64)
        if dets.ndim != 2 or dets.shape[-1] != 5 or kpts.shape[1:] != (17, 3) or len(kpts) != len(dets):
            raise RuntimeError(f"{self.path}: outputs of shapes {dets.shape} and {kpts.shape}; expected (N, 5), (N, 17, 3)")
        boxes, scores = dets[:, :4] / ratio, dets[:, 4]
        good = np.flatnonzero(scores >= self.score_threshold)
        keep = good[nms(boxes[good], scores[good], self.nms_threshold)] if good.size else good
        people = [person_from_coco(kpts[i, :, :2] / ratio, kpts[i, :, 2], self.min_keypoint_score, float(scores[i]),
                                   tuple(boxes[i])) for i in keep]
        return Detection(people=people)

    def close(self) -> None:
        pass

    def __enter__(self) -> RTMODetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

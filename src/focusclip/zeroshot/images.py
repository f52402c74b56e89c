"""Turning a :class:`Sample` into pixels: image files, in-memory grey arrays, video frames; crops.

:class:`SampleImages` is the torch Dataset the evaluator batches through a DataLoader (it runs in the
loader workers): ``dataset[i] -> (transform(image), i)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from focusclip.errors import InputError
from focusclip.images import decode, open_rgb
from focusclip.zeroshot.datasets.common import VIDEO_EXTENSIONS, DatasetError, Sample

logger = logging.getLogger(__name__)

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


class ImageLoadError(DatasetError):
    """An image, frame or video that cannot be read; names the file and the sample."""


def _frame_position(frame: str | float) -> float:
    if frame == "middle":
        return 0.5
    if frame == "first":
        return 0.0
    pos = float(frame)
    if not 0.0 <= pos <= 1.0:
        raise InputError(f"frame must be 'middle', 'first' or a fraction in [0, 1], got {frame!r}")
    return pos


def read_video_frame(path: Path, frame: str | float = "middle") -> Image.Image:
    """One RGB frame of a video decoded with PyAV (optional dependency ``av``)."""
    try:
        import av
    except ImportError:
        raise ImportError(f"reading {path} needs PyAV: pip install av (or pip install 'focusclip[video]'), "
                          "or give pre-extracted frames <split>/<clip>/*.jpg instead") from None
    pos = _frame_position(frame)
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ImageLoadError(f"{path}: no video stream")
        stream = container.streams.video[0]
        n = stream.frames or 0
        if n <= 0:  # frame count not in the header: decode everything (short clips only)
            frames = [f for f in container.decode(stream)]
            if not frames:
                raise ImageLoadError(f"{path}: no decodable frames")
            return frames[min(int(pos * len(frames)), len(frames) - 1)].to_image()
        target = min(int(pos * n), n - 1)
        last = None
        for i, f in enumerate(container.decode(stream)):
            if i >= target:
                return f.to_image()
            last = f
        if last is None:  # e.g. a truncated download
            raise ImageLoadError(f"{path}: no decodable frames")
        return last.to_image()  # the header over-counted frames


def _frame_from_folder(folder: Path, frame: str | float) -> Path:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
    if not files:
        raise ImageLoadError(f"{folder}: no extracted frames (*.jpg/*.png)")
    return files[min(int(_frame_position(frame) * len(files)), len(files) - 1)]


def open_sample(sample: Sample) -> Image.Image:
    """The sample's RGB image, cropped to its box (clamped to the image) when it has one."""
    src = sample.source
    try:
        if isinstance(src, np.ndarray):
            img = Image.fromarray(src)
        elif src.is_dir():
            img = open_rgb(_frame_from_folder(src, sample.frame))
        elif src.suffix.lower() in VIDEO_EXTENSIONS:
            img = read_video_frame(src, sample.frame)
        else:
            img = open_rgb(src)
        img = decode(img, "RGB")
    except ImportError:
        raise
    except (OSError, ValueError) as e:
        where = "in-memory pixels" if isinstance(src, np.ndarray) else str(src)
        raise ImageLoadError(f"sample {sample.id!r}: cannot read image {where} ({e})") from None
    if sample.box is not None:
        x1, y1, x2, y2 = sample.box
        w, h = img.size
        box = (max(0, int(round(x1))), max(0, int(round(y1))), min(w, int(round(x2))), min(h, int(round(y2))))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ImageLoadError(f"sample {sample.id!r}: box {sample.box} lies outside the {w}x{h} image {src}")
        img = img.crop(box)
    return img


def subject_heatmap(sample: Sample, size: tuple[int, int]) -> np.ndarray | None:
    """The heatmap (H, W) of the sample's subject boxes at the image's ``size`` (None without any)."""
    if not sample.subject:
        return None
    from focusclip.heatmaps import boxes_heatmap

    return boxes_heatmap(np.asarray(sample.subject, dtype=np.float32), size)


class SampleImages(torch.utils.data.Dataset):
    """``samples[i]`` opened, cropped and transformed: ``(Tensor[3, S, S], i)``; with ``focus``,
    ``(image, heatmap Tensor[1, S, S] of its subject boxes, has_heatmap, i)``."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], torch.Tensor],
                 focus: bool = False):
        self.samples = samples
        self.transform = transform
        self.focus = focus

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple:
        image = open_sample(self.samples[i])
        if not self.focus:
            return self.transform(image), i
        heat = subject_heatmap(self.samples[i], (image.height, image.width))
        if heat is None:
            x = self.transform(image)
            return x, torch.zeros(1, *x.shape[-2:]), False, i
        out = self.transform.apply(image, heatmap=heat)
        return out["image"], out["heatmap"], True, i

"""Image transforms that move a heatmap, keypoints and boxes together with the image.

One geometric transform (a crop box resized to the output square) is drawn per call and applied to the
image, a heatmap, keypoints and boxes alike, so they can never desynchronise. Heatmaps rendered from
keypoints are drawn *after* the transform, at output size, from the transformed keypoints.

There is deliberately no horizontal flip: pose descriptions name left and right limbs, and a flip would
make the text wrong.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from focusclip.errors import UsageError
from focusclip.images import decode

#: ``squash``: the whole frame to S x S (the paper). ``center_crop``: focusclip's own centre square of the
#: original, then resized (the offline presets; models trained with it keep it). ``shortest``: open_clip's
#: ``resize_mode='shortest'`` exactly (PIL resize of the short side to S, the long side ``int(S * long /
#: short)``, then torchvision's ``CenterCrop``, offsets rounded half to even). ``shortest_edge``:
#: transformers' ``CLIPImageProcessor`` exactly (torchvision uint8 resize of the short side, same sizes,
#: antialiased, then a centre crop with offsets rounded down). A wrapped CLIP gets its own library's mode.
RESIZE_MODES = ("squash", "center_crop", "shortest", "shortest_edge")
#: the modes that resize the short side first and then crop (the CLIP libraries' evaluation transforms)
LIBRARY_MODES = ("shortest", "shortest_edge")
_PIL_RESAMPLE = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST,
                 "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


@dataclass
class SampleTransform:
    """Resize (or randomly crop and resize) to ``resolution`` x ``resolution`` and normalise with the tower's mean/std.

    ``tf(image) -> Tensor[3, S, S]``; ``tf.apply(image, heatmap=..., keypoints=..., boxes=...) -> dict`` applies
    one geometric transform to all of them.

    ``resize="squash"`` (the paper) resizes the whole frame to S x S; ``"center_crop"`` keeps the aspect
    ratio and crops the centre square of the original; ``"shortest"`` / ``"shortest_edge"`` resize the short
    side and crop exactly as open_clip / transformers do (:data:`RESIZE_MODES`). With ``train=True`` and ``scale`` below 1, a random crop covering
    ``scale`` of the area with aspect ratio in ``ratio`` is taken first (RandomResizedCrop);
    ``color_jitter`` > 0 jitters brightness, contrast and saturation by that amount.
    """

    resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: bool = False
    resize: str = "squash"
    scale: tuple[float, float] = (1.0, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    color_jitter: float = 0.0
    interpolation: str = "bicubic"
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _rng_worker: int | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise UsageError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        self._rng = random.Random(self.seed)
        self._rng_worker = None
        self._interp = InterpolationMode(self.interpolation)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the output."""
        return self.resolution, self.resolution

    def __call__(self, image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.apply(image)["image"]

    @property
    def pixel_key(self) -> tuple[Any, ...] | None:
        """What fixes :meth:`pixels` of an image (None when it is random: a training transform that crops
        or jitters). Two transforms with the same key give the same uint8 pixels for the same image."""
        if self.train and (self.scale[0] < 1.0 or self.color_jitter > 0):
            return None
        return ("sample-transform", self.resolution, self.resize, self.interpolation)

    def pixels(self, image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 Tensor[3, S, S]: the image resized (deterministic crop) before normalisation; with
        :meth:`normalize` it gives ``self(image)`` when :attr:`pixel_key` is not None."""
        if self._library_geometry():
            return self._library_pixels(image)[0]
        img = _to_uint8_tensor(image)
        top, left, h, w = self.crop_box(*img.shape[-2:])
        s = self.resolution
        return TF.resized_crop(img, top, left, h, w, [s, s], interpolation=self._interp, antialias=True)

    def _library_geometry(self) -> bool:
        """Whether this call resizes and crops as a CLIP library does (no random crop drawn)."""
        return self.resize in LIBRARY_MODES and not (self.train and self.scale[0] < 1.0)

    def resized_size(self, h0: int, w0: int) -> tuple[int, int]:
        """(H, W) after the short side is resized to S, as both libraries compute it (torchvision's
        ``Resize(int)`` and transformers' ``shortest_edge``): the long side is ``int(S * long / short)``."""
        s = self.resolution
        if h0 <= w0:
            return s, int(s * w0 / h0)
        return int(s * h0 / w0), s

    def library_crop(self, h: int, w: int) -> tuple[int, int]:
        """(top, left) of the S x S centre crop of an (H, W) resized image, rounded as the library rounds."""
        s = self.resolution
        if self.resize == "shortest":  # torchvision center_crop
            return int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return int((h - s) / 2.0), int((w - s) / 2.0)  # transformers' TorchvisionBackend.center_crop

    def _library_pixels(self, image: Image.Image | np.ndarray | torch.Tensor
                        ) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """uint8 (3, S, S) pixels exactly as open_clip / transformers make them, and the geometry
        ``(resized H, resized W, crop top, crop left)``."""
        s = self.resolution
        if self.resize == "shortest":
            pil = decode(image, "RGB") if isinstance(image, Image.Image) else TF.to_pil_image(_to_uint8_tensor(image))
            h, w = self.resized_size(pil.height, pil.width)
            resample = _PIL_RESAMPLE.get(self.interpolation)
            if resample is None:
                raise UsageError(f"interpolation {self.interpolation!r} has no PIL equivalent for resize 'shortest'")
            resized = TF.pil_to_tensor(pil.resize((w, h), resample))
        else:
            img = _to_uint8_tensor(image)
            h, w = self.resized_size(*img.shape[-2:])
            resized = TF.resize(img, [h, w], interpolation=self._interp, antialias=True)
        top, left = self.library_crop(h, w)
        return resized[..., top:top + s, left:left + s], (h, w, top, left)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, S, S) from :meth:`pixels` -> the model's normalised float input."""
        return TF.normalize(pixels.float().div_(255.0), list(self.mean), list(self.std))

    def apply(self, image: Image.Image | np.ndarray | torch.Tensor, heatmap: Any = None,
              keypoints: np.ndarray | None = None, boxes: np.ndarray | None = None) -> dict[str, Any]:
        s = self.resolution
        out: dict[str, Any] = {}
        if self._library_geometry():
            x, (rh, rw, ctop, cleft) = self._library_pixels(image)
            h0, w0 = _image_hw(image)
            # the same geometry in source pixels: scale (rw / w0, rh / h0), then the crop offset
            scale_xy = np.array([rw / w0, rh / h0], dtype=np.float32)
            top, left, h, w = ctop / scale_xy[1], cleft / scale_xy[0], s / scale_xy[1], s / scale_xy[0]
        else:
            img = _to_uint8_tensor(image)
            h0, w0 = img.shape[-2:]
            top, left, h, w = self.crop_box(h0, w0)
            x = TF.resized_crop(img, top, left, h, w, [s, s], interpolation=self._interp, antialias=True)
        x = x.float().div_(255.0)
        if self.train and self.color_jitter > 0:
            x = self._jitter(x)
        out["image"] = TF.normalize(x, list(self.mean), list(self.std))
        if heatmap is not None:
            hm = _to_heatmap_tensor(heatmap)
            if self._library_geometry():
                hm = TF.resize(hm, [rh, rw], interpolation=InterpolationMode.BILINEAR, antialias=True)
                hm = hm[..., ctop:ctop + s, cleft:cleft + s]
            else:
                if hm.shape[-2:] != (h0, w0):
                    hm = TF.resize(hm, [h0, w0], interpolation=InterpolationMode.BILINEAR, antialias=True)
                hm = TF.resized_crop(hm, top, left, h, w, [s, s], interpolation=InterpolationMode.BILINEAR,
                                     antialias=True)
            out["heatmap"] = hm.clamp_(0.0, 1.0)
        scale_xy = np.array([s / w, s / h], dtype=np.float32)
        offset = np.array([left, top], dtype=np.float32)
        if keypoints is not None:
            kp = np.asarray(keypoints, dtype=np.float32)
            out["keypoints"] = (kp - offset) * scale_xy
        if boxes is not None:
            b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            out["boxes"] = (b - np.tile(offset, 2)) * np.tile(scale_xy, 2)
        return out

    def crop_box(self, h0: int, w0: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the source region that becomes the output square (for the CLIP
        libraries' modes, which resize before they crop, the centre square they keep, to the pixel)."""
        if self.train and self.scale[0] < 1.0:
            return self._random_crop(h0, w0)
        if self.resize == "center_crop" or self.resize in LIBRARY_MODES:
            side = min(h0, w0)
            return (h0 - side) // 2, (w0 - side) // 2, side, side
        return 0, 0, h0, w0

    def _random(self) -> random.Random:
        """This process's generator: every DataLoader worker gets its own stream (a copied generator
        would make all workers draw the same crops), derived from ``seed`` when one is given."""
        info = torch.utils.data.get_worker_info()
        worker = -1 if info is None else info.id
        if worker != self._rng_worker and info is not None:
            self._rng = random.Random(None if self.seed is None else self.seed * 1_000_003 + worker + 1)
        self._rng_worker = worker
        return self._rng

    def _random_crop(self, h0: int, w0: int) -> tuple[int, int, int, int]:
        rng = self._random()
        area = h0 * w0
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= w0 and 0 < h <= h0:
                return rng.randint(0, h0 - h), rng.randint(0, w0 - w), h, w
        return 0, 0, h0, w0

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        j, rng = self.color_jitter, self._random()
        x = TF.adjust_brightness(x, rng.uniform(1 - j, 1 + j))
        x = TF.adjust_contrast(x, rng.uniform(1 - j, 1 + j))
        return TF.adjust_saturation(x, rng.uniform(1 - j, 1 + j))


def _image_hw(image: Image.Image | np.ndarray | torch.Tensor) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    return int(image.shape[-2]), int(image.shape[-1])


def _to_uint8_tensor(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(image, Image.Image):
        return TF.pil_to_tensor(decode(image, "RGB"))
    if isinstance(image, np.ndarray):
        arr = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    if isinstance(image, torch.Tensor):
        return image
    raise TypeError(f"expected a PIL image, numpy array or tensor, got {type(image).__name__}")


def _to_heatmap_tensor(heatmap: Any) -> torch.Tensor:
    """A (1, H, W) float tensor in [0, 1] from an array, tensor or grey PIL image (0..255)."""
    if isinstance(heatmap, Image.Image):
        return torch.from_numpy(np.asarray(heatmap.convert("L"), dtype=np.float32) / 255.0)[None]
    t = torch.as_tensor(np.asarray(heatmap, dtype=np.float32)) if not isinstance(heatmap, torch.Tensor) \
        else heatmap.float()
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] != 1:
        raise UsageError(f"heatmap must have shape (H, W) or (1, H, W), got {tuple(t.shape)}")
    return t


def transforms_for(config: dict[str, Any], mean: tuple[float, ...], std: tuple[float, ...],
                   augment: dict[str, Any] | None = None) -> tuple[SampleTransform, SampleTransform]:
    """The (train, eval) transforms for a model config. ``augment`` may set scale, ratio, color_jitter."""
    v = config["vision"]
    common = dict(resolution=int(v["image_size"]), mean=tuple(mean), std=tuple(std),
                  resize=v.get("resize", "squash"), interpolation=v.get("interpolation", "bicubic"))
    aug = dict(augment or {})
    unknown = set(aug) - {"scale", "ratio", "color_jitter", "seed"}
    if unknown:
        raise UsageError(f"unknown augmentation options {sorted(unknown)}; known: scale, ratio, color_jitter, seed")
    for k in ("scale", "ratio"):
        if k in aug:
            aug[k] = tuple(aug[k])
    return SampleTransform(train=True, **common, **aug), SampleTransform(train=False, **common)


def eval_transform(model: Any) -> SampleTransform:
    """The evaluation transform of a (loaded) model, from its own config."""
    return transforms_for(model.config, model.image_mean, model.image_std)[1]

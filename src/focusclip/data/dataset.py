"""The training dataset: records -> ``{"image", "heatmap", "text", "id"}`` samples, and the batch collator.

One geometric transform per sample is applied to the image and everything positioned on it
(``SampleTransform.apply``); heatmaps from joints, points or boxes are rendered *after* it, at output
size, from the transformed coordinates, so image and heatmap always line up.

Heatmap sources (``heatmap=``) are :data:`focusclip.heatmaps.HEATMAP_SOURCES`: ``"person"`` /
``"parts"`` (people's joints), ``"boxes"``, ``"points"``, ``"file"`` (the record's precomputed grey PNG),
``"none"`` (all ones: the ROI branch then sees the plain image; for the CLIP baseline, which ignores it)
and ``"auto"`` (:func:`focusclip.heatmaps.resolve_source`, the same choice everywhere).

With DataLoader workers, each worker holds its own copy of the dataset: ``bad_samples`` and
:meth:`FocusDataset.set_epoch` act on the copy in the process where they are used. Call
``set_epoch`` before iterating an epoch (workers are re-created per epoch unless
``persistent_workers=True``, in which case captions="random" draws stay those of the first epoch).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from focusclip.data.records import Record, RecordError, record_id, resolve_image
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.heatmaps import HEATMAP_SOURCES, render_subject, resolve_source, subject_points
from focusclip.images import open_image_reduced

logger = logging.getLogger(__name__)

CAPTION_MODES = ("random", "first", "all")


class SampleError(InputError):
    """A sample that cannot be loaded; the message names the file and the record."""


class FocusDataset(Dataset):
    """Records -> samples. ``records`` is a list of records or a path (records JSONL, custom CSV/JSONL).

    ``root`` is the folder image paths are relative to (default: the file's folder; required for a list
    with relative paths, else the current directory is used). ``transform`` is a
    :class:`focusclip.model.transforms.SampleTransform`. ``captions``: "random" (one per epoch, drawn
    deterministically from ``(seed, epoch, index)``), "first", or "all" (``text`` is then a list).
    ``on_error``: "raise" raises :class:`SampleError`; "skip" returns the next good sample, records the
    bad one in ``bad_samples`` and logs a (rate-limited) warning. ``draft`` lets JPEGs decode at a
    reduced DCT scale that is still at least the output size (about 2x faster for MPII frames at 224;
    off when the transform takes random crops), with coordinates scaled to match.
    """

    def __init__(self, records: Sequence[Record] | str | os.PathLike, root: str | os.PathLike | None = None,
                 transform: Any = None, heatmap: str = "person", captions: str = "random",
                 on_error: str = "skip", seed: int = 0, warn_every: float = 30.0, draft: bool = True):
        if heatmap not in HEATMAP_SOURCES:
            raise UsageError(f"heatmap must be one of {HEATMAP_SOURCES}, got {heatmap!r}")
        if captions not in CAPTION_MODES:
            raise UsageError(f"captions must be one of {CAPTION_MODES}, got {captions!r}")
        if on_error not in ("skip", "raise"):
            raise UsageError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if transform is None:
            raise UsageError("FocusDataset needs a transform (focusclip.model.transforms.SampleTransform)")
        if isinstance(records, (str, os.PathLike)):
            from focusclip.data.sources import read_dataset_file

            records, file_root = read_dataset_file(records)
            root = root if root is not None else file_root
        self.records: list[Record] = list(records)
        self.root = Path(root) if root is not None else Path.cwd()
        self.transform = transform
        self.heatmap = heatmap
        self.captions = captions
        self.on_error = on_error
        self.seed = seed
        self.draft = draft
        self.epoch = 0
        self.bad_samples: list[dict[str, str]] = []
        self._bad_index: set[int] = set()
        self._warn_every = warn_every
        self._last_warn = -float("inf")
        self._warned_upto = 0

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select which caption ``captions="random"`` draws for every sample in this epoch."""
        self.epoch = int(epoch)

    # -------------------------------------------------------------------------------- samples
    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.records)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} records")
        try:
            for step in range(n):
                i = (index + step) % n
                if i in self._bad_index and self.on_error == "skip":
                    continue
                try:
                    return self.load(i)
                except SampleError as e:
                    if self.on_error == "raise":
                        raise
                    self._note_bad(i, e)
        finally:
            self._maybe_warn()
        raise SampleError(f"no loadable sample in the dataset ({n} records, all bad); first: "
                          f"{self.bad_samples[0] if self.bad_samples else '?'}")

    def load(self, index: int) -> dict[str, Any]:
        """The sample of record ``index``; :class:`SampleError` when its files or caption are unusable."""
        record = self.records[index]
        rid = record_id(record)
        path = resolve_image(record, self.root)
        where = f"record {index} ({rid}), image {path}"
        text = self._text(record, index, where)
        image, factor = _open_image(path, "RGB", where, self._draft_size())
        try:
            sample = self._transform(record, image, factor, where)
        except SampleError:
            raise
        except (ValueError, OSError) as e:
            raise SampleError(f"{where}: {e}") from e
        sample["text"] = text
        sample["id"] = rid
        return sample

    def caption_index(self, index: int, n_captions: int) -> int:
        """Which caption "random" picks for ``index`` in the current epoch (deterministic)."""
        if n_captions <= 1:
            return 0
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(n_captions))

    def _text(self, record: Record, index: int, where: str) -> str | list[str]:
        captions = [c for c in record.get("captions") or [] if isinstance(c, str) and c.strip()]
        if not captions:
            raise SampleError(f"{where}: the record has no caption")
        if self.captions == "all":
            return captions
        if self.captions == "first":
            return captions[0]
        return captions[self.caption_index(index, len(captions))]

    def _draft_size(self) -> tuple[int, int] | None:
        """Decode JPEGs at a reduced scale (still >= the output size) unless random crops may zoom in."""
        tf = self.transform
        if not self.draft or (getattr(tf, "train", False) and min(getattr(tf, "scale", (1.0, 1.0))) < 1.0):
            return None
        h, w = tf.image_size
        return int(w), int(h)

    def _transform(self, record: Record, image: Any, factor: tuple[float, float], where: str) -> dict[str, Any]:
        tf = self.transform
        size = tuple(tf.image_size)
        try:
            source = resolve_source(record, self.heatmap)
        except RecordError as e:
            raise SampleError(f"{where}: {e}") from None
        if source == "file":
            if not record.get("heatmap"):
                raise SampleError(f"{where}: heatmap='file' but the record has no 'heatmap' path")
            hm_path = resolve_image({"image": record["heatmap"]}, self.root)
            out = tf.apply(image, heatmap=_open_image(hm_path, "L", f"{where}, heatmap")[0])
            return {"image": out["image"], "heatmap": out["heatmap"].float()}
        if source == "none":
            return {"image": tf(image), "heatmap": torch.ones(1, *size)}
        points, visible = subject_points(record, source)
        if not len(points):
            return {"image": tf(image), "heatmap": torch.zeros(1, *size)}
        out = tf.apply(image, keypoints=points.reshape(-1, 2) * factor)
        moved = np.asarray(out["keypoints"], dtype=np.float64).reshape(points.shape)
        hm = render_subject(source, moved, visible, size)
        return {"image": out["image"], "heatmap": torch.from_numpy(np.ascontiguousarray(hm))[None].float()}

    # ---------------------------------------------------------------------------- bad samples
    def _note_bad(self, index: int, error: SampleError) -> None:
        record = self.records[index]
        self._bad_index.add(index)
        self.bad_samples.append({"index": str(index), "id": record_id(record),
                                 "file": str(resolve_image(record, self.root)), "error": str(error)})

    def _maybe_warn(self) -> None:
        """Log the bad samples found since the last warning, at most once every ``warn_every`` seconds."""
        now = time.monotonic()
        if len(self.bad_samples) > self._warned_upto and now - self._last_warn >= self._warn_every:
            new = self.bad_samples[self._warned_upto:]
            listed = "; ".join(f"{b['file']} ({b['error'].rsplit(': ', 1)[-1]})" for b in new[:10])
            more = f" and {len(new) - 10} more" if len(new) > 10 else ""
            logger.warning("skipped %d bad sample(s) (%d so far in this process): %s%s", len(new),
                           len(self.bad_samples), listed, more)
            self._last_warn = now
            self._warned_upto = len(self.bad_samples)


def _open_image(path: Path, mode: str, where: str, draft: tuple[int, int] | None = None
                ) -> tuple[Any, tuple[float, float]]:
    """The decoded image and the factor (fx, fy) from file pixels to decoded pixels (JPEG draft mode)."""
    if not path.is_file():
        raise SampleError(f"{where}: file {path} does not exist")
    try:
        return open_image_reduced(path, mode, draft)
    except (InputError, MissingInput) as e:
        raise SampleError(f"{where}: cannot read {path}: {str(e).removeprefix(f'{path}: ')}") from None


class Collator:
    """``DataLoader(collate_fn=Collator(tokenizer))``: stacks images and heatmaps, tokenises texts.

    Runs in the loader workers, so tokenisation happens there. Returns ``{"image" [B,3,S,S],
    "heatmap" [B,1,S,S], "text": {"input_ids", "attention_mask"}, "id": [...], "truncated": int}`` where
    ``truncated`` counts the batch's texts cut at the tokenizer's context length (the job reports the total). With several
    captions per sample (``captions="all"``) the texts are flattened and ``"text_index"`` (LongTensor
    [T]) gives each text's sample. ``tokenizer=None`` leaves ``"text"`` as the list of strings.
    """

    def __init__(self, tokenizer: Callable[[list[str]], dict[str, torch.Tensor]] | None):
        self.tokenizer = tokenizer

    def __call__(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not batch:
            raise UsageError("Collator got an empty batch")
        texts: list[str] = []
        index: list[int] = []
        multi = False
        for k, sample in enumerate(batch):
            t = sample["text"]
            if isinstance(t, (list, tuple)):
                multi = True
                texts += list(t)
                index += [k] * len(t)
            else:
                texts.append(t)
                index.append(k)
        before = getattr(self.tokenizer, "num_truncated", 0)
        out: dict[str, Any] = {
            "image": torch.stack([s["image"] for s in batch]),
            "heatmap": torch.stack([s["heatmap"] for s in batch]),
            "text": self.tokenizer(texts) if self.tokenizer is not None else texts,
            "id": [s["id"] for s in batch],
            "truncated": getattr(self.tokenizer, "num_truncated", 0) - before,  # texts cut at the context length
        }
        if multi:
            out["text_index"] = torch.tensor(index, dtype=torch.long)
        return out

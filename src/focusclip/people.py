"""One image embedding per person: the batched engine behind ``ZeroShotClassifier.predict_people``,
``embed_people`` and ``focusclip predict`` / ``embed`` with people.

For each photo the image is decoded once and its plain input (the model's own transform) is encoded
once: that is the whole-image answer, and the answer for every person who marks nothing. Each person
who marks something gets a focused input (:mod:`focusclip.model.focus.inference`):

* ``crop``: the person's box plus a margin, cut from the *original* photo (not the resized input) and
  resized, so a small person keeps their detail;
* every other mode: the photo's input with the person's heatmap rendered directly at the input size.
  A centre-crop model (CLIP's shortest-side resize) whose crop would cut a person out sees a window of
  the same size slid over that person instead.

Focused inputs of several people and photos go through the tower together, ``batch_size`` rows at a
time, and per-photo work (the input, its blurred copy) is shared by the photo's people.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from focusclip.errors import UsageError
from focusclip.images import decode, open_rgb
from focusclip.model.focus.inference import MARK_LEVEL, focused_features, resolve_focus
from focusclip.model.focus.prompts import crop_region
from focusclip.model.transforms import SampleTransform
from focusclip.subjects import Subject, subjects_from_detection

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | Image.Image
View = tuple[int, int, int, int]  #: (top, left, height, width) of the photo region the input shows


@dataclass
class PersonFeature:
    """One person's answer material: the subject, its normalised feature, whether it was focused and why not."""

    subject: Subject
    feature: torch.Tensor
    focused: bool
    note: str | None = None


@dataclass
class PhotoFeatures:
    """A photo's name, (W, H), whole-image feature and its people."""

    image: str
    size: tuple[int, int]
    whole: torch.Tensor
    people: list[PersonFeature] = field(default_factory=list)
    mode: str = ""


@dataclass
class _Row:
    photo: int
    slot: int
    subject: Subject
    base: int
    heat: torch.Tensor | None


def image_name(image: ImageInput, i: int) -> str:
    return str(image) if not isinstance(image, Image.Image) else f"<image {i}>"


def _open(image: ImageInput) -> Image.Image:
    return decode(image, "RGB") if isinstance(image, Image.Image) else open_rgb(image)


def _view_input(transform: SampleTransform, pixels: torch.Tensor, view: View) -> torch.Tensor:
    """The normalised input the transform would make of ``view`` of the uint8 (3, H, W) photo."""
    s = transform.resolution
    x = TF.resized_crop(pixels, *view, [s, s], interpolation=transform._interp, antialias=True)
    return transform.normalize(x)


def _person_view(subject: Subject, plain: View, frame: tuple[int, int]) -> View:
    """The plain view when it shows the person's whole box, else a window of its size slid over the person."""
    top, left, h, w = plain
    box = subject.box_in(frame)
    if box is None:
        return plain
    x1, y1, x2, y2 = box
    if x1 >= left and y1 >= top and x2 <= left + w and y2 <= top + h:
        return plain
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    new_left = int(round(min(max(cx - w / 2, 0), frame[1] - w)))
    new_top = int(round(min(max(cy - h / 2, 0), frame[0] - h)))
    return new_top, new_left, h, w


def _subjects_for(i: int, subjects: Sequence[Sequence[Subject] | None] | None, detector: Any,
                  pil: Image.Image) -> list[Subject]:
    given = None if subjects is None else subjects[i]
    if given is not None:
        return list(given)
    if detector is not None:
        return subjects_from_detection(detector.detect(pil))
    return []


def encode_people(model: Any, transform: SampleTransform, images: Sequence[ImageInput],
                  subjects: Sequence[Sequence[Subject] | None] | None = None, focus: str = "auto",
                  batch_size: int = 32, device: torch.device | None = None, detector: Any = None,
                  person: int | None = None, on_photo: Callable[[PhotoFeatures], None] | None = None
                  ) -> list[PhotoFeatures]:
    """Normalised whole-image and per-person features of every photo (module docstring).

    ``subjects``: one list of :class:`~focusclip.subjects.Subject` per image (None, or a None entry: the
    ``detector``'s people when one is given, else nobody). ``person``: keep only that person (an error
    naming the image when a photo has no such person). ``on_photo`` is called with each finished photo."""
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if subjects is not None and len(subjects) != len(images):
        raise UsageError(f"{len(subjects)} subject lists for {len(images)} images; give one per image (None: none)")
    mode = resolve_focus(model, focus)
    dev = device or next(model.parameters()).device
    done: list[PhotoFeatures] = []
    pending: list[tuple[PhotoFeatures, int]] = []  # photos waiting for their features, with their plain input
    bases: list[torch.Tensor] = []                 # the inputs of the pending photos (plain, slid, crops)
    rows: list[_Row] = []                          # the pending people to focus on

    def flush() -> None:
        feats = _encode_rows(model, bases, rows, mode, batch_size, dev)
        plain = _encode_plain(model, [bases[b] for _, b in pending], batch_size, dev)
        for (photo, _), whole in zip(pending, plain):
            photo.whole = whole
            photo.people = [PersonFeature(p.subject, whole, False, p.note) for p in photo.people]
        for row, feat in zip(rows, feats):
            photo = pending[row.photo][0]
            if feat is None:
                note = f"person {row.subject.person}: the focused features were not finite"
                photo.people[row.slot] = PersonFeature(row.subject, photo.whole, False, note)
            else:
                photo.people[row.slot] = PersonFeature(row.subject, feat, True, None)
        for photo, _ in pending:
            for p in photo.people:
                if p.note:
                    logger.info("%s: %s; its answer is the whole image's", photo.image, p.note)
            done.append(photo)
            if on_photo is not None:
                on_photo(photo)
        pending.clear()
        bases.clear()
        rows.clear()

    s = transform.resolution
    for i, image in enumerate(images):
        pil = _open(image)
        who = _subjects_for(i, subjects, detector, pil)
        name = image_name(image, i)
        if person is not None:
            chosen = [x for x in who if x.person == person]
            if not chosen:
                raise UsageError(f"{name}: there is no person {person} (people: "
                                 f"{', '.join(str(x.person) for x in who) or 'none'})")
            who = chosen
        frame = (pil.height, pil.width)
        pixels = TF.pil_to_tensor(pil)
        plain_view = transform.crop_box(*frame)
        photo = PhotoFeatures(name, (pil.width, pil.height), torch.zeros(0), mode=mode)
        views = {plain_view: len(bases)}
        bases.append(transform.normalize(transform.pixels(pil)))  # the plain input, exactly as predict sees it
        pending.append((photo, views[plain_view]))
        here = len(pending) - 1
        for subject in who:
            note = subject.why_nothing(frame)
            slot = len(photo.people)
            photo.people.append(PersonFeature(subject, torch.zeros(0), False, note))
            if note is not None:
                continue
            view = crop_region(subject.box_in(frame), frame) if mode == "crop" else \
                _person_view(subject, plain_view, frame)
            if view not in views:
                views[view] = len(bases)
                bases.append(_view_input(transform, pixels, view))
            if mode == "crop":  # the crop is the focused input
                rows.append(_Row(here, slot, subject, views[view], None))
                continue
            top, left, h, w = view
            moved = subject.moved((left, top), (s / w, s / h))
            heat = moved.heatmap((s, s)) if moved.box_in((s, s)) is not None else None
            if heat is None or not heat.max(initial=0.0) >= MARK_LEVEL:
                photo.people[slot].note = f"person {subject.person} lies outside what the model sees"
                continue
            rows.append(_Row(here, slot, subject, views[view], torch.from_numpy(heat)[None]))
        if len(rows) >= batch_size or len(bases) >= 2 * batch_size:
            flush()
    if pending:
        flush()
    return done


@torch.inference_mode()
def _encode_plain(model: Any, inputs: list[torch.Tensor], batch_size: int, dev: torch.device) -> list[torch.Tensor]:
    out = []
    for i in range(0, len(inputs), batch_size):
        x = torch.stack(inputs[i:i + batch_size]).to(dev)
        out.extend(model.encode_image(x, normalize=True).float().cpu())
    return out


@torch.inference_mode()
def _encode_rows(model: Any, bases: list[torch.Tensor], rows: list[_Row], mode: str, batch_size: int,
                 dev: torch.device) -> list[torch.Tensor | None]:
    """Focused features of ``rows`` (None where a row's features were not finite), ``batch_size`` at a time."""
    out: list[torch.Tensor | None] = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        used = sorted({r.base for r in chunk})
        where = {b: k for k, b in enumerate(used)}
        images = torch.stack([bases[b] for b in used]).to(dev)
        owner = torch.tensor([where[r.base] for r in chunk])
        if mode == "crop":  # the crop is the input
            feats = model.encode_image(images[owner.to(dev)], normalize=True)
        else:
            heat = torch.stack([r.heat for r in chunk]).to(dev)  # boxes for blur / circle: from the heatmap,
            feats = focused_features(model, images, heat, mode, owner=owner, normalize=True)  # as encode_image
        feats = feats.float().cpu()
        finite = torch.isfinite(feats).all(1)
        out.extend(f if ok else None for f, ok in zip(feats, finite.tolist()))
    return out


def as_subject_lists(subjects: Any, n: int) -> list[list[Subject] | None] | None:
    """``subjects`` checked as one list (or None) per image."""
    if subjects is None:
        return None
    out = list(subjects)
    if len(out) != n:
        raise UsageError(f"{len(out)} subject lists for {n} images; give one per image (None: none)")
    for i, s in enumerate(out):
        if s is not None and not all(isinstance(x, Subject) for x in s):
            raise UsageError(f"subjects of image {i}: expected a list of focusclip.subjects.Subject")
    return out



def read_subjects(images: Sequence[str | os.PathLike], keypoints: Sequence[Any] | None = None,
                  boxes: Sequence[Any] | None = None, detector: Any = None) -> list[list[Subject]]:
    """The people of each image file: from its keypoints file (``keypoints[i]``), its boxes file
    (``boxes[i]``) or the ``detector`` (exactly one source)."""
    from focusclip.images import image_size
    from focusclip.subjects import subjects_from_boxes_file, subjects_from_keypoints_file

    given = [x for x in (keypoints, boxes, detector) if x is not None]
    if len(given) != 1:
        raise UsageError("give the people one way: keypoints files, boxes files or a detector")
    for files, kind in ((keypoints, "keypoints"), (boxes, "boxes")):
        if files is not None and len(files) != len(images):
            raise UsageError(f"{len(files)} {kind} files for {len(images)} images; give one per image")
    out = []
    for i, image in enumerate(images):
        if keypoints is not None:
            w, h = image_size(image)
            out.append(subjects_from_keypoints_file(keypoints[i], image_size=(h, w)))
        elif boxes is not None:
            out.append(subjects_from_boxes_file(boxes[i]))
        else:
            found = subjects_from_detection(detector.detect(open_rgb(image)))
            if not found:
                logger.warning("%s: no person found; only the whole-image answer", image)
            out.append(found)
    return out

"""Every person in a photo from a pose model that finds one person per image (BlazePose) and a face detector.

BlazePose finds the most prominent person in what it is shown. :func:`find_people` shows it several parts
of the photo and keeps every person that a face detector confirms:

1. **Where to look.** The whole photo; a body-sized region around every face the face detector finds in
   the whole photo (:data:`BODY_FROM_FACE`: 2.5 face widths either side of the face's centre, from one
   face height above it to seven below); and square windows of :attr:`Search.windows` times the photo's
   short side, half a window apart, covering the photo (people too small for the whole-photo pass, or
   standing next to a more prominent one, are the most prominent in some window).
2. **Who is there.** The pose model runs on each region; its keypoints are mapped back to the photo, and
   a keypoint outside the region it was found in is invisible (the model guesses joints past the edge).
3. **One answer per person.** Candidates whose heads (the middle of the visible nose, eyes and ears) lie
   within :data:`SAME_HEAD` head sizes of each other are the same person; the candidate with both
   shoulders visible and the highest mean keypoint score stands for them (:func:`_preference`).
4. **No invented people.** A person needs a visible nose and at least :data:`MIN_HEAD_POINTS` visible
   face keypoints, and a face of score >= :attr:`Search.min_face_score` whose box holds the person's nose
   (:data:`NOSE_MARGIN`): one the face detector found in the whole photo, else one it finds in a crop of
   three (then six, :data:`CONFIRM_CROPS`) head sizes around that head (resized to :data:`CONFIRM_SIDE`
   pixels); up to :data:`CONFIRM_TRIES` candidates of the same head are tried. One face confirms one
   person (:data:`SAME_FACE`): the one whose head lies nearest its centre. The pose model, shown a
   region with nobody in it, may still place a skeleton there (on a blank patch, a texture's blob), and
   no face is found there. The face found becomes the person's ``face_box``.

What it cannot find: people whose face is not visible (seen from behind, face hidden) and people smaller
than about 1/20 of the photo's short side when no face detection points at them. Cost: one pose pass per
region (7-12 per photo on the portrait composites) plus small face passes; see benchmarks/RESULTS.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from focusclip.detect.base import Person, person_from_coco

Box = tuple[float, float, float, float]
#: a pose model on an RGB array (H, W, 3): a list of (17 COCO keypoints (17, 2) in its pixels, scores (17,))
PoseFn = Callable[[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]
#: a face detector on an RGB array: a list of (box xyxy in its pixels, score)
FaceFn = Callable[[np.ndarray], list[tuple[Box, float]]]

BODY_FROM_FACE = (2.5, 1.0, 7.0)  #: face widths either side, face heights above and below the face's top
SAME_HEAD = 0.5  #: heads closer than this many head sizes are one person
MIN_HEAD_POINTS = 2  #: visible face keypoints (nose, eyes, ears; the nose among them) a person needs
CONFIRM_SIDE = 192  #: the head crop is resized to this many pixels for the face detector
CONFIRM_CROPS = (3.0, 6.0)  #: head crops this many head sizes wide, tried in turn until a face is sure
CONFIRM_TRIES = 3  #: candidates of one head tried (best first) before the head is given up
SAME_FACE = 0.3  #: confirming faces overlapping more than this (IoU) are one face, so one person
MIN_REGION = 32  #: regions smaller than this (pixels, either side) are not searched
FACE_POINTS = 5  #: COCO 0-4: nose, eyes, ears
NOSE_MARGIN = 0.25  #: a confirming face box, widened by this fraction of its size each side, holds the nose


@dataclass(frozen=True)
class Search:
    """How :func:`find_people` searches (module docstring)."""

    windows: tuple[float, ...] = (0.7,)  #: window sides as fractions of the photo's short side
    face_regions: bool = True  #: also look at a body-sized region around each face
    min_visibility: float = 0.5  #: keypoints below this score are invisible
    min_face_score: float = 0.75  #: the face detector's score that confirms a person


@dataclass
class _Candidate:
    points: np.ndarray  # (17, 2) photo pixels
    scores: np.ndarray  # (17,), 0 outside the region it was found in
    head: np.ndarray  # (2,)
    head_size: float
    visible: int
    mean: float
    min_visibility: float


def body_region(face: Box) -> Box:
    """The body-sized region around a face box (:data:`BODY_FROM_FACE`)."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    side, above, below = BODY_FROM_FACE
    cx = (x1 + x2) / 2
    return (cx - side * w, y1 - above * h, cx + side * w, y1 + below * h)


def windows(width: int, height: int, fractions: Sequence[float]) -> list[Box]:
    """Square windows of ``fraction * min(width, height)`` pixels, half a window apart, covering the photo
    (the last ones flush with its right and bottom edges); the whole photo itself is left out."""
    out: list[Box] = []
    short = min(width, height)
    for frac in fractions:
        side = max(1, round(frac * short))
        xs = _starts(width, side)
        ys = _starts(height, side)
        for y in ys:
            for x in xs:
                box = (float(x), float(y), float(x + side), float(y + side))
                if box != (0.0, 0.0, float(width), float(height)) and box not in out:
                    out.append(box)
    return out


def _starts(length: int, side: int) -> list[int]:
    if side >= length:
        return [0]
    n = math.ceil((length - side) / (side / 2)) + 1
    return sorted({round(i * (length - side) / (n - 1)) for i in range(n)})


def _clip(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return (max(0, int(math.floor(x1))), max(0, int(math.floor(y1))), min(width, int(math.ceil(x2))),
            min(height, int(math.ceil(y2))))


def _candidates(rgb: np.ndarray, region: Box, pose: PoseFn, min_visibility: float) -> list[_Candidate]:
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = _clip(region, w, h)
    if x2 - x1 < MIN_REGION or y2 - y1 < MIN_REGION:
        return []
    out = []
    for points, scores in pose(np.ascontiguousarray(rgb[y1:y2, x1:x2])):
        pts = np.asarray(points, dtype=np.float64) + (x1, y1)
        sc = np.asarray(scores, dtype=np.float64)
        inside = (pts[:, 0] >= x1) & (pts[:, 0] < x2) & (pts[:, 1] >= y1) & (pts[:, 1] < y2)
        sc = np.where(inside & np.isfinite(sc), sc, 0.0)
        cand = _candidate(pts, sc, min_visibility)
        if cand is not None:
            out.append(cand)
    return out


def _candidate(pts: np.ndarray, sc: np.ndarray, min_visibility: float) -> _Candidate | None:
    vis = sc >= min_visibility
    face = vis[:FACE_POINTS]
    if not face[0] or face.sum() < MIN_HEAD_POINTS:
        return None
    fp = pts[:FACE_POINTS][face]
    size = float(max(np.ptp(fp[:, 0]), np.ptp(fp[:, 1]))) * 1.5
    if vis[5] and vis[6]:
        size = max(size, 0.5 * float(np.hypot(*(pts[5] - pts[6]))))
    return _Candidate(points=pts, scores=sc, head=fp.mean(axis=0), head_size=max(size, 8.0),
                      visible=int(vis.sum()), mean=float(sc[vis].mean()), min_visibility=min_visibility)


def _preference(c: _Candidate) -> tuple[int, float]:
    """Sort key, best first: both shoulders visible, then the highest mean score of the visible keypoints.
    (Not the most visible keypoints: the candidate that claims the most joints is the one that guesses
    legs and arms beyond what it sees; see benchmarks/RESULTS.md.)"""
    return -int(bool(c.scores[5] >= c.min_visibility and c.scores[6] >= c.min_visibility)), -c.mean


def _group(cands: list[_Candidate]) -> list[list[_Candidate]]:
    """Candidates grouped by head (:data:`SAME_HEAD`), best first in each group, groups best first."""
    order = sorted(cands, key=_preference)
    groups: list[list[_Candidate]] = []
    for c in order:
        for g in groups:
            ref = g[0]
            if np.hypot(*(c.head - ref.head)) < SAME_HEAD * max(c.head_size, ref.head_size):
                g.append(c)
                break
        else:
            groups.append([c])
    return groups


def _holds_nose(face: Box, nose: np.ndarray) -> bool:
    mx, my = NOSE_MARGIN * (face[2] - face[0]), NOSE_MARGIN * (face[3] - face[1])
    return face[0] - mx <= nose[0] <= face[2] + mx and face[1] - my <= nose[1] <= face[3] + my


def _confirm(rgb: np.ndarray, cand: _Candidate, faces: FaceFn,
             photo_faces: Sequence[tuple[Box, float]] = ()) -> tuple[float, Box | None]:
    """The best score of a face that holds the candidate's nose: among the whole photo's faces, else in
    crops of :data:`CONFIRM_CROPS` head sizes around its head; and that face's box."""
    from PIL import Image

    best, box = 0.0, None
    for face, score in photo_faces:
        if _holds_nose(face, cand.points[0]) and score > best:
            best, box = float(score), face
    h, w = rgb.shape[:2]
    cx, cy = cand.head
    for crop_sizes in CONFIRM_CROPS:
        if best >= 0.9:
            break
        half = crop_sizes / 2 * cand.head_size
        x1, y1, x2, y2 = _clip((cx - half, cy - half, cx + half, cy + half), w, h)
        if x2 - x1 < 4 or y2 - y1 < 4:
            continue
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[y1:y2, x1:x2])).resize(
            (CONFIRM_SIDE, CONFIRM_SIDE), Image.BILINEAR))
        sx, sy = (x2 - x1) / CONFIRM_SIDE, (y2 - y1) / CONFIRM_SIDE
        for (fx1, fy1, fx2, fy2), score in faces(crop):
            face = (x1 + fx1 * sx, y1 + fy1 * sy, x1 + fx2 * sx, y1 + fy2 * sy)
            if _holds_nose(face, cand.points[0]) and score > best:
                best, box = float(score), face
    return best, box


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def find_people(rgb: np.ndarray, pose: PoseFn, faces: FaceFn, confirm_faces: FaceFn | None = None,
                search: Search = Search()) -> tuple[list[Person], list[Box]]:
    """The people in an RGB array (module docstring) and every face box found (the whole photo's faces,
    then the confirming faces not already among them). ``faces`` runs on the whole photo,
    ``confirm_faces`` (default ``faces``) on the head crops."""
    h, w = rgb.shape[:2]
    photo_faces = faces(rgb)
    found_faces = [box for box, score in photo_faces]
    regions: list[Box] = [(0.0, 0.0, float(w), float(h))]
    if search.face_regions:
        regions += [body_region(f) for f in found_faces]
    regions += windows(w, h, search.windows)
    cands = [c for region in regions for c in _candidates(rgb, region, pose, search.min_visibility)]
    confirmed: list[tuple[_Candidate, Box]] = []
    for group in _group(cands):
        for best in group[:CONFIRM_TRIES]:
            score, face = _confirm(rgb, best, confirm_faces or faces, photo_faces)
            if score >= search.min_face_score and face is not None:
                confirmed.append((best, face))
                break
    people: list[Person] = []
    all_faces = list(found_faces)
    for best, face in _one_per_face(confirmed):
        person = person_from_coco(best.points, best.scores, search.min_visibility, best.mean)
        person.face_box = face
        people.append(person)
        if all(iou(face, f) < 0.3 for f in all_faces):
            all_faces.append(face)
    people.sort(key=lambda p: (p.box[0], p.box[1]))
    return people, all_faces


def _one_per_face(confirmed: list[tuple[_Candidate, Box]]) -> list[tuple[_Candidate, Box]]:
    """One person per face: of candidates confirmed by the same face (boxes overlapping by IoU >
    :data:`SAME_FACE`), the one whose head lies nearest the face's centre (in face widths)."""
    def off_centre(item: tuple[_Candidate, Box]) -> float:
        cand, (x1, y1, x2, y2) = item
        return float(np.hypot(cand.head[0] - (x1 + x2) / 2, cand.head[1] - (y1 + y2) / 2)) / max(x2 - x1, 1e-6)

    kept: list[tuple[_Candidate, Box]] = []
    for item in sorted(confirmed, key=off_centre):
        if all(iou(item[1], other[1]) <= SAME_FACE for other in kept):
            kept.append(item)
    return kept

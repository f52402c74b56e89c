"""An offline, deterministic describer of birds from CUB's 15 part locations and the bird's box.

It is the text source of ``focusclip data cub`` when the captions of Reed et al. (``text_c10``) are not
given, and what ``focusclip describe --backend rules`` writes for bird records (``points_layout:
"cub"``). From the geometry it reads which way the bird faces (beak against tail or nape), which side it
shows (one eye, one wing), whether its body is held level or upright, which parts are visible or hidden,
how much of the picture it fills and where it is. With ``species=True`` the record's ``labels.species``
is named ("a photo of a Laysan Albatross"): training on seen classes with their names is how zero-shot
transfer to unseen classes is learned; never evaluate on the classes whose names the texts carry.

Coordinates are image pixels (x right, y down); "left" and "right" of the frame are the image's,
"left wing" / "left eye" are the bird's own (CUB's part names).
"""

from __future__ import annotations

import math

import numpy as np

from focusclip.data.records import Record, record_boxes, record_id, record_points
from focusclip.english import article, join_words, pick_variant
from focusclip.skeleton import CUB_PARTS, visible_mask

_IDX = {name: i for i, name in enumerate(CUB_PARTS)}
#: part groups as the text names them (in the order they are listed)
_NAMED_GROUPS = (
    ("head", ("crown", "forehead", "nape", "beak")), ("eyes", ("left eye", "right eye")),
    ("throat", ("throat",)), ("breast", ("breast",)), ("belly", ("belly",)), ("back", ("back",)),
    ("wings", ("left wing", "right wing")), ("tail", ("tail",)), ("legs", ("left leg", "right leg")),
)


def is_bird_record(record: Record) -> bool:
    """A record of CUB-style bird parts without people (what this describer is for)."""
    return record.get("points_layout") == "cub" and not record.get("people")


def _parts(record: Record) -> tuple[np.ndarray, np.ndarray]:
    pts, vis = record_points(record)
    if pts.shape != (len(CUB_PARTS), 2):
        return np.full((len(CUB_PARTS), 2), -1.0), np.zeros(len(CUB_PARTS), dtype=bool)
    return pts, visible_mask(pts, vis)


def _facing(pts: np.ndarray, vis: np.ndarray) -> str | None:
    """"left" / "right": where the beak (else the forehead or crown) is against the tail (else the nape/back)."""
    front = next((pts[_IDX[p]] for p in ("beak", "forehead", "crown") if vis[_IDX[p]]), None)
    rear = next((pts[_IDX[p]] for p in ("tail", "back", "nape") if vis[_IDX[p]]), None)
    if front is None or rear is None or abs(front[0] - rear[0]) < 1e-6:
        return None
    return "left" if front[0] < rear[0] else "right"


def _attitude(pts: np.ndarray, vis: np.ndarray) -> str | None:
    """The body axis from tail to head: "level", "tilted" or "upright" (head well above the tail)."""
    head = next((pts[_IDX[p]] for p in ("crown", "forehead", "nape", "beak") if vis[_IDX[p]]), None)
    tail = pts[_IDX["tail"]] if vis[_IDX["tail"]] else None
    if head is None or tail is None or np.linalg.norm(head - tail) < 1e-6:
        return None
    up = math.degrees(math.atan2(tail[1] - head[1], abs(head[0] - tail[0])))  # > 0: head above tail
    return "upright" if up >= 55 else "tilted" if up >= 25 else "level" if up > -25 else "head down"


def _side_shown(vis: np.ndarray) -> str | None:
    left = vis[_IDX["left eye"]] or vis[_IDX["left wing"]]
    right = vis[_IDX["right eye"]] or vis[_IDX["right wing"]]
    if left and not right:
        return "left"
    if right and not left:
        return "right"
    return "both" if left and right else None


def _place(box: np.ndarray, size: tuple[int, int] | None) -> tuple[str | None, str | None]:
    """How much of the picture the box fills and where its centre is, as words (None without a size)."""
    if size is None:
        return None, None
    w, h = size
    share = max(0.0, (box[2] - box[0]) * (box[3] - box[1])) / max(w * h, 1)
    amount = ("most of the picture" if share >= 0.6 else "about half of the picture" if share >= 0.35
              else "a fair part of the picture" if share >= 0.15 else "a small part of the picture")
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    col = "left" if cx < 0.38 else "right" if cx > 0.62 else "centre"
    row = "top" if cy < 0.38 else "bottom" if cy > 0.62 else ""
    where = "in the centre" if (col, row) == ("centre", "") else \
        f"at the {row + ' ' if row else ''}{col if col != 'centre' else 'middle'}".replace("  ", " ")
    return amount, where


def _be(parts: list[str]) -> str:
    """"are" for several parts or a plural one ("legs", "wings", "eyes"), else "is"."""
    return "are" if len(parts) > 1 or parts[0].endswith("s") else "is"


def _size(record: Record) -> tuple[int, int] | None:
    w, h = record.get("width"), record.get("height")
    return (int(w), int(h)) if w and h else None


def describe_bird(record: Record, seed: int = 0, species: bool = True) -> str:
    """A deterministic description of a bird record (module docstring); phrasing varies by record id."""
    key = f"{seed}:{record_id(record)}:"

    def pick(options: tuple[str, ...], slot: str) -> str:
        return pick_variant(options, key + slot)

    pts, vis = _parts(record)
    name = (record.get("labels") or {}).get("species") if species else None
    subject = f"{article(name)} {name}" if name else "a bird"
    sentences = [pick((f"A photo of {subject}.", f"This is a picture of {subject}.", f"The image shows {subject}."),
                      "open")]
    facing, attitude, side = _facing(pts, vis), _attitude(pts, vis), _side_shown(vis)
    pose = []
    if facing:
        pose.append(pick((f"faces to the {facing}", f"is turned to the {facing}", f"looks to the {facing}"), "facing"))
    if attitude and attitude != "tilted":
        pose.append({"upright": "holds its body upright", "level": "holds its body level",
                     "head down": "has its head lower than its tail"}[attitude])
    if pose:
        sentences.append(f"The bird {join_words(pose)}.")
    if side in ("left", "right"):
        sentences.append(f"We see its {side} side.")
    elif side == "both":
        sentences.append(pick(("Both of its eyes or wings can be seen.", "It is seen from the front or back."), "side"))
    shown = [label for label, parts in _NAMED_GROUPS if any(vis[_IDX[p]] for p in parts)]
    hidden = [label for label, parts in _NAMED_GROUPS if not any(vis[_IDX[p]] for p in parts)]
    if shown:
        sentences.append(f"Its {join_words(shown)} {_be(shown)} visible"
                         + (f"; its {join_words(hidden)} {_be(hidden)} hidden." if hidden else "."))
    else:
        sentences.append("None of its parts are marked.")
    boxes = record_boxes(record)
    amount, where = _place(boxes[0], _size(record)) if len(boxes) else (None, None)
    if amount:
        sentences.append(pick((f"The bird fills {amount}, {where}.", f"It takes up {amount}, {where}."), "place"))
    return " ".join(sentences)


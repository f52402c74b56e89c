"""Real photos with several people, made from the portraits that ship inside packages: scikit-image's
``astronaut`` and ``camera`` (when scikit-image is installed) and matplotlib's ``grace_hopper``, pasted side
by side at different scales and heights on different backgrounds. Each pasted portrait is one person whose
box (where it was pasted) is the truth. Used by tests/test_detect.py and benchmarks/detect.py.

``score_people`` matches detections to the truth: a detected person belongs to the pasted portrait that
holds its head (upper neck, else head top, else the middle of its visible joints); the first one there is *found*, any other one there or outside
every portrait is *invented* (a duplicate or a person that is not there)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image


def portrait_names() -> list[str]:
    """The portraits available here: ``hopper`` always, ``astronaut`` and ``camera`` with scikit-image."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return ["hopper"]
    return ["astronaut", "camera", "hopper"]


def portrait(name: str) -> Image.Image:
    """One packaged portrait as an RGB image (astronaut 512x512, camera 512x512 grey, hopper 512x600)."""
    if name == "hopper":
        from matplotlib import cbook

        return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def texture(kind: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A background without people: ``grey``, ``gradient``, ``noise``, or a scikit-image texture
    (``grass``, ``brick``, ``gravel``; noise without scikit-image)."""
    w, h = size
    rng = np.random.default_rng(seed)
    if kind == "grey":
        return Image.new("RGB", size, (128, 128, 128))
    if kind == "gradient":
        x = np.linspace(0, 1, w)[None, :, None]
        y = np.linspace(0, 1, h)[:, None, None]
        arr = 40 + 180 * np.concatenate([x * np.ones_like(y), y * np.ones_like(x), (1 - x) * (1 - y)], axis=2)
        return Image.fromarray(arr.astype(np.uint8))
    if kind in ("grass", "brick", "gravel"):
        try:
            import skimage.data

            tile = Image.fromarray(getattr(skimage.data, kind)()).convert("RGB")
            out = Image.new("RGB", size)
            for y0 in range(0, h, tile.height):
                for x0 in range(0, w, tile.width):
                    out.paste(tile, (x0, y0))
            return out
        except ImportError:
            pass
    noise = rng.normal(128, 40, size=(h // 8 + 1, w // 8 + 1, 3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(noise).resize(size, Image.BILINEAR)


@dataclass
class Composite:
    image: Image.Image
    boxes: list[tuple[float, float, float, float]]  #: where each portrait (one person) was pasted, xyxy
    names: list[str]


def composite(names: Sequence[str], heights: Sequence[int], tops: Sequence[int], background: str = "grey",
              gap: int = 24, margin: int = 16, seed: int = 0) -> Composite:
    """The portraits ``names`` side by side, each resized to ``heights[i]`` pixels high and pasted ``tops[i]``
    pixels below the top margin, ``gap`` pixels apart, on ``background`` (:func:`texture`)."""
    tiles = []
    for name, height in zip(names, heights, strict=True):
        im = portrait(name)
        tiles.append(im.resize((round(im.width * height / im.height), height), Image.BICUBIC))
    width = 2 * margin + sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    height = 2 * margin + max(t.height + top for t, top in zip(tiles, tops, strict=True))
    canvas = texture(background, (width, height), seed)
    boxes, x = [], margin
    for tile, top in zip(tiles, tops, strict=True):
        canvas.paste(tile, (x, margin + top))
        boxes.append((float(x), float(margin + top), float(x + tile.width), float(margin + top + tile.height)))
        x += tile.width + gap
    return Composite(canvas, boxes, list(names))


def composites(count: int | None = None) -> list[Composite]:
    """A fixed set of 2- and 3-person composites: every order of the available portraits, different
    scales, vertical offsets and backgrounds (deterministic)."""
    from itertools import permutations

    names = portrait_names()
    if len(names) == 1:  # the same portrait several times, mirrored in turn
        groups = [("hopper", "hopper"), ("hopper", "hopper", "hopper")]
    else:
        groups = [p for k in (2, 3) for p in permutations(names, k)]
    backgrounds = ["grey", "grass", "gradient", "brick", "noise", "gravel"]
    out = []
    for i, group in enumerate(groups):
        heights = [(300, 380, 460, 340, 420)[(i + j) % 5] for j in range(len(group))]
        tops = [(0, 60, 25, 90, 10)[(i * 2 + j) % 5] for j in range(len(group))]
        out.append(composite(group, heights, tops, backgrounds[i % len(backgrounds)], gap=8 + 16 * (i % 3), seed=i))
    return out[:count] if count is not None else out


def singles() -> list[Composite]:
    """Each available portrait alone, as shipped."""
    out = []
    for name in portrait_names():
        im = portrait(name)
        out.append(Composite(im, [(0.0, 0.0, float(im.width), float(im.height))], [name]))
    return out


def person_head(joints: np.ndarray, visible: np.ndarray, box: Sequence[float]) -> tuple[float, float]:
    """Where a person's head is: the upper neck, else the head top, else the middle of the visible joints
    (of the box when none is visible)."""
    from focusclip.skeleton import HEAD_TOP, UPPER_NECK

    vis = np.asarray(visible) > 0
    for j in (UPPER_NECK, HEAD_TOP):
        if vis[j]:
            return float(joints[j][0]), float(joints[j][1])
    if vis.any():
        x, y = np.median(np.asarray(joints)[vis], axis=0)
        return float(x), float(y)
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def score_people(people: Sequence, truth: Sequence[tuple[float, float, float, float]]) -> dict[str, int]:
    """``{"true": T, "found": F, "invented": I, "joints": J, "joints_outside": O}`` for detected ``people``
    (with ``joints``, ``visible``, ``box``) against the pasted boxes (module docstring); ``J``: the visible
    joints of the people found, ``O``: how many of them lie outside their own portrait."""
    taken: set[int] = set()
    invented = joints = outside = 0
    for p in sorted(people, key=lambda p: -float(getattr(p, "score", 0.0))):
        x, y = person_head(p.joints, p.visible, p.box)
        hit = [i for i, (x1, y1, x2, y2) in enumerate(truth) if x1 <= x <= x2 and y1 <= y <= y2]
        if hit and hit[0] not in taken:
            taken.add(hit[0])
            x1, y1, x2, y2 = truth[hit[0]]
            pts = np.asarray(p.joints)[np.asarray(p.visible) > 0]
            joints += len(pts)
            outside += int((~((pts[:, 0] >= x1) & (pts[:, 0] <= x2) & (pts[:, 1] >= y1) & (pts[:, 1] <= y2))).sum())
        else:
            invented += 1
    return {"true": len(truth), "found": len(taken), "invented": invented, "joints": joints, "joints_outside": outside}

"""Real multi-person photos for tests: the portraits that ship inside packages (matplotlib's
``grace_hopper.jpg``, scikit-image's ``astronaut.png`` and ``camera.png``) pasted side by side on a
plain background, with each person's box in the composite's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def portrait(name: str) -> Image.Image:
    """One packaged portrait as an RGB image: ``grace_hopper``, ``astronaut`` or ``camera``."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def composite(names: list[str], height: int = 160, gap: int = 16, background: tuple[int, int, int] = (40, 90, 40),
              scales: list[float] | None = None) -> tuple[Image.Image, list[list[float]]]:
    """The portraits ``names`` side by side (each ``height * scale`` tall, bottom-aligned, ``gap`` apart)
    and each one's box [x1, y1, x2, y2] in the composite."""
    scales = scales or [1.0] * len(names)
    tiles = []
    for name, sc in zip(names, scales):
        im = portrait(name)
        h = int(round(height * sc))
        tiles.append(im.resize((max(1, round(im.width * h / im.height)), h), Image.BICUBIC))
    width = sum(t.width for t in tiles) + gap * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, height + 2 * gap), background)
    boxes, x = [], gap
    for t in tiles:
        y = gap + height - t.height
        canvas.paste(t, (x, y))
        boxes.append([float(x), float(y), float(x + t.width), float(y + t.height)])
        x += t.width + gap
    return canvas, boxes


def write_composite(folder: Path, names: list[str], stem: str = "group", **kwargs) -> tuple[Path, list[list[float]]]:
    """:func:`composite` saved as ``folder/<stem>.png``; (path, boxes)."""
    image, boxes = composite(names, **kwargs)
    path = Path(folder) / f"{stem}.png"
    image.save(path)
    return path, boxes


def noise_image(path: Path, size: tuple[int, int] = (100, 80), seed: int = 0) -> Path:
    """A random RGB image of ``size`` (W, H) saved at ``path``."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path

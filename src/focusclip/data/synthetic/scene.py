"""Scene pieces: cluttered backgrounds, ground line, props (chairs) and distractor objects."""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from focusclip.data.synthetic.figures import Color, Figure
from focusclip.skeleton import L_KNEE, PELVIS, R_KNEE


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def random_color(
    rng: np.random.Generator, sat: tuple[float, float] = (0.2, 0.9), val: tuple[float, float] = (0.25, 0.95)
) -> Color:
    return _hsv(rng.random(), rng.uniform(*sat), rng.uniform(*val))


def draw_background(rng: np.random.Generator, size: int, horizon: float) -> Image.Image:
    """A wall/sky gradient above ``horizon`` (pixels), a floor gradient below, low-frequency blotches.

    The background is smooth, so it is computed at a quarter of the pixels and upsampled.
    """
    hue = rng.random()
    top = np.array(_hsv(hue, rng.uniform(0.05, 0.5), rng.uniform(0.55, 0.95)), dtype=np.float32)
    mid = np.array(
        _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.4), rng.uniform(0.45, 0.9)), dtype=np.float32
    )
    fhue = rng.random()
    f1 = np.array(_hsv(fhue, rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.7)), dtype=np.float32)
    f2 = np.array(_hsv(fhue, rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.6)), dtype=np.float32)
    small = max(size // 2, 8)
    hz = horizon * small / size
    y = np.arange(small, dtype=np.float32)[:, None] + 0.5
    t_sky = np.clip(y / max(hz, 1.0), 0, 1)
    t_floor = np.clip((y - hz) / max(small - hz, 1.0), 0, 1)
    col = np.where(
        y < hz, top[None] * (1 - t_sky) + mid[None] * t_sky, f1[None] * (1 - t_floor) + f2[None] * t_floor
    )  # (small, 3)
    low = rng.normal(0.0, rng.uniform(8, 22), size=(8, 8, 3)).astype(np.float32)
    blotch = (
        np.asarray(
            Image.fromarray(np.clip(low + 128, 0, 255).astype(np.uint8)).resize(
                (small, small), Image.BILINEAR
            ),
            dtype=np.int16,
        )
        - 128
    )
    img = col.astype(np.int16)[:, None, :] + blotch
    np.clip(img, 0, 255, out=img)
    return Image.fromarray(img.astype(np.uint8)).resize((size, size), Image.BILINEAR)


def draw_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, count: int) -> None:
    """Random rectangles, ellipses, polygons and lines all over the canvas."""
    for _ in range(count):
        kind = int(rng.integers(4))
        color = random_color(rng)
        cx, cy = rng.uniform(-0.1, 1.1, size=2) * size
        w, h = rng.uniform(0.03, 0.3, size=2) * size
        if kind == 0:
            draw.rectangle([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=color)
        elif kind == 1:
            draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=color)
        elif kind == 2:
            n = int(rng.integers(3, 7))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = rng.uniform(0.4, 1.0, n) * max(w, h) / 2
            pts = [(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(ang, rad)]
            draw.polygon(pts, fill=color)
        else:
            x2, y2 = cx + rng.uniform(-0.3, 0.3) * size, cy + rng.uniform(-0.3, 0.3) * size
            draw.line(
                [(float(cx), float(cy)), (float(x2), float(y2))],
                fill=color,
                width=max(int(size * rng.uniform(0.004, 0.02)), 1),
            )


def draw_object(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, ground: float, scale: float
) -> None:
    """One distractor object standing on ``ground`` at ``x``: tree, lamp post, ball, crate, cone or plant."""
    kind = int(rng.integers(6))
    s = scale
    dark = (35, 30, 30)
    if kind == 0:  # tree
        draw.rectangle([x - 0.04 * s, ground - 0.5 * s, x + 0.04 * s, ground], fill=(95, 65, 35))
        g = random_color(rng, sat=(0.4, 0.9), val=(0.25, 0.6))
        draw.ellipse([x - 0.25 * s, ground - 0.95 * s, x + 0.25 * s, ground - 0.4 * s], fill=g)
    elif kind == 1:  # lamp post
        draw.rectangle([x - 0.015 * s, ground - 0.9 * s, x + 0.015 * s, ground], fill=dark)
        draw.ellipse([x - 0.06 * s, ground - 0.98 * s, x + 0.06 * s, ground - 0.86 * s], fill=(250, 235, 160))
    elif kind == 2:  # ball
        r = 0.08 * s
        draw.ellipse([x - r, ground - 2 * r, x + r, ground], fill=random_color(rng), outline=dark)
    elif kind == 3:  # crate
        w, h = rng.uniform(0.12, 0.3) * s, rng.uniform(0.1, 0.3) * s
        draw.rectangle(
            [x - w / 2, ground - h, x + w / 2, ground],
            fill=random_color(rng),
            outline=dark,
            width=max(int(0.01 * s), 1),
        )
    elif kind == 4:  # cone
        h = rng.uniform(0.12, 0.25) * s
        draw.polygon([(x - 0.06 * s, ground), (x + 0.06 * s, ground), (x, ground - h)], fill=(240, 110, 20))
    else:  # potted plant
        draw.rectangle([x - 0.05 * s, ground - 0.1 * s, x + 0.05 * s, ground], fill=(150, 80, 50))
        g = random_color(rng, sat=(0.5, 0.9), val=(0.3, 0.7))
        for dx in (-0.06, 0.0, 0.06):
            draw.ellipse(
                [x + (dx - 0.06) * s, ground - 0.3 * s, x + (dx + 0.06) * s, ground - 0.08 * s], fill=g
            )


def draw_ground_line(draw: ImageDraw.ImageDraw, size: int, ground: float, color: Color) -> None:
    draw.line([(0.0, ground), (float(size), ground)], fill=color, width=max(int(size * 0.008), 1))


def draw_shadow(draw: ImageDraw.ImageDraw, fig: Figure, ground: float) -> None:
    """A flat dark ellipse on the ground under the figure (shows the gap when it is in the air)."""
    x = float(np.mean(fig.joints[:, 0]))
    w, h = fig.height * 0.22, fig.height * 0.03
    draw.ellipse([x - w, ground - h, x + w, ground + h], fill=(40, 40, 45))


def draw_chair(draw: ImageDraw.ImageDraw, fig: Figure, ground: float, color: Color) -> None:
    """A chair under a sitting figure: seat at hip height, behind the knees, backrest behind the hips."""
    j, hgt = fig.joints, fig.height
    pelvis = j[PELVIS]
    knee_x = (j[R_KNEE, 0] + j[L_KNEE, 0]) / 2
    back = -1.0 if knee_x > pelvis[0] else 1.0  # the side away from the knees
    seat_y = pelvis[1] + fig.limb_width * 0.7
    front_x = pelvis[0] - back * 0.16 * hgt
    back_x = pelvis[0] + back * 0.12 * hgt
    x1, x2 = min(front_x, back_x), max(front_x, back_x)
    t = max(hgt * 0.03, 2.0)
    outline = (30, 25, 25)
    draw.rectangle([x1, seat_y, x2, seat_y + t], fill=color, outline=outline)
    for lx in (x1 + t / 2, x2 - t / 2):
        draw.rectangle([lx - t / 2, seat_y, lx + t / 2, ground], fill=color, outline=outline)
    draw.rectangle([back_x - t / 2, seat_y - 0.3 * hgt, back_x + t / 2, seat_y], fill=color, outline=outline)


def draw_occluder(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, center: np.ndarray, radius: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Draw a foreground object (bush, ball, crate) over ``center``; return a test of which points it hides.

    The returned function maps points (N, 2) to a boolean mask (N,) of points under the object.
    """
    x, y = float(center[0]), float(center[1])
    color = random_color(rng, sat=(0.3, 0.9), val=(0.2, 0.7))
    if rng.random() < 0.5:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color, outline=(25, 25, 25))
        return lambda p: np.hypot(p[:, 0] - x, p[:, 1] - y) <= radius
    draw.rectangle([x - radius, y - radius, x + radius, y + radius], fill=color, outline=(25, 25, 25))
    return lambda p: (np.abs(p[:, 0] - x) <= radius) & (np.abs(p[:, 1] - y) <= radius)

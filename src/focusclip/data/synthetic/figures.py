"""Drawing posed figures with PIL: thick outlined limbs, clothing colours and a cartoon face.

Coordinates are in the pixels of the canvas being drawn on (the renderer draws at a multiple of the
output size and downsamples, see :mod:`focusclip.data.synthetic.world`).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from focusclip.data.synthetic.classes import EXPRESSIONS
from focusclip.data.synthetic.pose import Pose, Proportions
from focusclip.errors import UsageError
from focusclip.skeleton import (
    HEAD_TOP,
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    PELVIS,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    THORAX,
    UPPER_NECK,
)

Color = tuple[int, int, int]

# fmt: off
SKIN_TONES: tuple[Color, ...] = ((255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                                 (141, 85, 36), (92, 56, 33))
HAIR_COLORS: tuple[Color, ...] = ((30, 20, 10), (80, 50, 20), (150, 100, 40), (225, 195, 120),
                                  (70, 70, 70), (165, 45, 20))
# fmt: on
FEATURE_COLOR: Color = (25, 15, 15)
OUTLINE_COLOR: Color = (20, 20, 25)


@dataclass
class Figure:
    """A posed person ready to draw: joints in canvas pixels plus looks."""

    joints: np.ndarray  # (16, 2) canvas pixels
    height: float  # standing height in canvas pixels
    props: Proportions
    pose: Pose
    expression: str
    colors: dict[str, Color]
    long_sleeves: bool = True
    long_pants: bool = True

    @property
    def head_radius(self) -> float:
        return float(np.linalg.norm(self.joints[HEAD_TOP] - self.joints[UPPER_NECK]) / 2)

    @property
    def head_center(self) -> np.ndarray:
        return (self.joints[HEAD_TOP] + self.joints[UPPER_NECK]) / 2

    @property
    def limb_width(self) -> float:
        return self.props.limb * self.height


def _random_cloth(rng: np.random.Generator) -> Color:
    h, s, v = rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.35, 0.95)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _mix(c: Color, to: Color, t: float) -> Color:
    return tuple(int(round(a * (1 - t) + b * t)) for a, b in zip(c, to))  # type: ignore[return-value]


def sample_looks(
    rng: np.random.Generator, fade: float = 0.0, fade_to: Color = (128, 128, 128)
) -> tuple[dict[str, Color], bool, bool]:
    """Skin, hair and clothing colours (``fade`` > 0 blends them towards ``fade_to`` for far-away people)."""
    colors = {
        "skin": SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        "hair": HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))],
        "shirt": _random_cloth(rng),
        "pants": _random_cloth(rng),
        "shoes": _mix(_random_cloth(rng), (0, 0, 0), 0.6),
        "outline": OUTLINE_COLOR,
        "feature": FEATURE_COLOR,
    }
    long_sleeves, long_pants = bool(rng.random() < 0.5), bool(rng.random() < 0.7)
    if fade > 0:
        colors = {k: _mix(v, fade_to, fade) for k, v in colors.items()}
    return colors, long_sleeves, long_pants


def figure_extent(fig: Figure) -> tuple[float, float, float, float]:
    """Box (x1, y1, x2, y2) around everything drawn for ``fig``: joints, head circle, limb thickness, feet."""
    j = fig.joints
    pad = fig.limb_width * 0.75 + 0.04 * fig.height
    c, r = fig.head_center, fig.head_radius + fig.limb_width * 0.2
    x1 = min(j[:, 0].min() - pad, c[0] - r)
    y1 = min(j[:, 1].min() - pad, c[1] - r)
    x2 = max(j[:, 0].max() + pad, c[0] + r)
    y2 = max(j[:, 1].max() + pad * 0.6, c[1] + r)
    return float(x1), float(y1), float(x2), float(y2)


def _pt(p: np.ndarray) -> tuple[float, float]:
    return float(p[0]), float(p[1])


def _disc(draw: ImageDraw.ImageDraw, p: np.ndarray, r: float, fill: Color) -> None:
    draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=fill)


def _limb(
    draw: ImageDraw.ImageDraw,
    a: np.ndarray,
    b: np.ndarray,
    width: float,
    fill: Color,
    outline: Color,
    ow: float,
) -> None:
    """A thick segment with round caps and a dark outline."""
    w = max(int(round(width)), 1)
    o = max(int(round(width + 2 * ow)), w + 1)
    draw.line([_pt(a), _pt(b)], fill=outline, width=o)
    _disc(draw, a, o / 2, outline)
    _disc(draw, b, o / 2, outline)
    draw.line([_pt(a), _pt(b)], fill=fill, width=w)
    _disc(draw, a, w / 2, fill)
    _disc(draw, b, w / 2, fill)


def _shade(c: Color, f: float) -> Color:
    return tuple(int(v * f) for v in c)  # type: ignore[return-value]


def _forward(fig: Figure) -> np.ndarray:
    """Unit vector the figure faces (side view), rotated with the body."""
    t = math.radians(90.0 + fig.pose.rot)
    v = np.array([math.sin(t), math.cos(t)])
    if fig.pose.mirror:
        v[0] = -v[0]
    return v


def _draw_arm(draw: ImageDraw.ImageDraw, fig: Figure, s: int, e: int, w: int, shade: float) -> None:
    j, lw, c = fig.joints, fig.limb_width, fig.colors
    ow = max(lw * 0.12, 1.0)
    sleeve = _shade(c["shirt"], shade)
    fore = sleeve if fig.long_sleeves else _shade(c["skin"], shade)
    _limb(draw, j[e], j[w], lw * 0.85, fore, c["outline"], ow)
    _limb(draw, j[s], j[e], lw, sleeve, c["outline"], ow)
    _disc(draw, j[w], lw * 0.55, c["outline"])
    _disc(draw, j[w], lw * 0.45, _shade(c["skin"], shade))


def _draw_leg(draw: ImageDraw.ImageDraw, fig: Figure, h: int, k: int, a: int, shade: float) -> None:
    j, lw, c = fig.joints, fig.limb_width, fig.colors
    ow = max(lw * 0.12, 1.0)
    pants = _shade(c["pants"], shade)
    shin = pants if fig.long_pants else _shade(c["skin"], shade)
    if fig.pose.view == "side":
        shin_dir = j[a] - j[k]
        perp = np.array([-shin_dir[1], shin_dir[0]])
        perp /= max(np.linalg.norm(perp), 1e-6)
        if perp @ _forward(fig) < 0:
            perp = -perp
        _limb(
            draw, j[a], j[a] + perp * fig.height * 0.05, lw * 0.8, _shade(c["shoes"], shade), c["outline"], ow
        )
    else:
        _limb(
            draw,
            j[a],
            j[a] + np.array([0.0, lw * 0.2]),
            lw * 1.0,
            _shade(c["shoes"], shade),
            c["outline"],
            ow,
        )
    _limb(draw, j[k], j[a], lw * 0.95, shin, c["outline"], ow)
    _limb(draw, j[h], j[k], lw * 1.15, pants, c["outline"], ow)


def _draw_torso(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    j, lw, c = fig.joints, fig.limb_width, fig.colors
    ow = max(lw * 0.12, 1.0)
    _limb(draw, j[PELVIS], j[PELVIS], lw * 1.6, c["pants"], c["outline"], ow)
    _limb(draw, j[PELVIS], j[THORAX], lw * 2.0, c["shirt"], c["outline"], ow)
    quad = [_pt(j[R_SHOULDER]), _pt(j[L_SHOULDER]), _pt(j[L_HIP]), _pt(j[R_HIP])]
    draw.polygon(quad, fill=c["shirt"], outline=c["outline"])
    for s in (R_SHOULDER, L_SHOULDER):
        _disc(draw, j[s], lw * 0.6, c["shirt"])
    _limb(draw, j[THORAX], j[UPPER_NECK], lw * 0.8, c["skin"], c["outline"], ow)


def draw_figure(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """Draw a posed figure: limbs, torso, head with hair and a face showing ``fig.expression``."""
    if fig.pose.view == "side":
        _draw_arm(draw, fig, L_SHOULDER, L_ELBOW, L_WRIST, 0.75)
        _draw_leg(draw, fig, L_HIP, L_KNEE, L_ANKLE, 0.75)
        _draw_torso(draw, fig)
        _draw_leg(draw, fig, R_HIP, R_KNEE, R_ANKLE, 1.0)
        _draw_head(draw, fig)
        _draw_arm(draw, fig, R_SHOULDER, R_ELBOW, R_WRIST, 1.0)
    else:
        _draw_leg(draw, fig, R_HIP, R_KNEE, R_ANKLE, 1.0)
        _draw_leg(draw, fig, L_HIP, L_KNEE, L_ANKLE, 1.0)
        _draw_torso(draw, fig)
        _draw_arm(draw, fig, R_SHOULDER, R_ELBOW, R_WRIST, 1.0)
        _draw_arm(draw, fig, L_SHOULDER, L_ELBOW, L_WRIST, 1.0)
        _draw_head(draw, fig)


def _draw_head(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    c, r = fig.head_center, fig.head_radius
    up = fig.joints[HEAD_TOP] - fig.joints[UPPER_NECK]
    up = up / max(float(np.linalg.norm(up)), 1e-6)
    ow = max(r * 0.08, 1.0)
    box = [c[0] - r, c[1] - r, c[0] + r, c[1] + r]
    draw.ellipse([c[0] - r - ow, c[1] - r - ow, c[0] + r + ow, c[1] + r + ow], fill=fig.colors["outline"])
    draw.ellipse(box, fill=fig.colors["skin"])
    ang = math.degrees(math.atan2(up[1], up[0]))
    draw.chord(box, start=ang - 58, end=ang + 58, fill=fig.colors["hair"])
    draw_face(draw, c, up, r, fig.expression, fig.colors["feature"])


def draw_face(
    draw: ImageDraw.ImageDraw,
    center: np.ndarray,
    up: np.ndarray,
    r: float,
    expression: str,
    color: Color = FEATURE_COLOR,
) -> None:
    """Eyes, brows and mouth on a head of radius ``r`` whose top points along ``up`` (unit vector).

    happy: open smile; sad: frown, brows raised inside; angry: V brows, tight frown; surprised:
    round open mouth, wide eyes, high brows; neutral: straight mouth, flat brows.
    """
    if expression not in EXPRESSIONS:
        raise UsageError(f"unknown expression {expression!r}; expected one of {list(EXPRESSIONS)}")
    right = np.array([-up[1], up[0]])

    def at(x: float, y: float) -> tuple[float, float]:
        p = center + r * (x * right + y * up)
        return float(p[0]), float(p[1])

    lw = max(int(round(r * 0.13)), 1)
    # eyes
    eye_r = 0.17 if expression == "surprised" else 0.11
    for sx in (-1, 1):
        ex, ey = at(sx * 0.36, 0.1)
        if expression == "surprised":
            draw.ellipse(
                [ex - eye_r * r, ey - eye_r * r, ex + eye_r * r, ey + eye_r * r],
                fill=(250, 250, 250),
                outline=color,
                width=max(lw // 2, 1),
            )
            pr = 0.08 * r
            draw.ellipse([ex - pr, ey - pr, ex + pr, ey + pr], fill=color)
        else:
            draw.ellipse([ex - eye_r * r, ey - eye_r * r, ex + eye_r * r, ey + eye_r * r], fill=color)
    # brows: (inner y, outer y)
    inner, outer = {
        "happy": (0.36, 0.38),
        "sad": (0.44, 0.28),
        "angry": (0.22, 0.42),
        "surprised": (0.5, 0.46),
        "neutral": (0.33, 0.33),
    }[expression]
    for sx in (-1, 1):
        draw.line([at(sx * 0.14, inner), at(sx * 0.56, outer)], fill=color, width=lw)
    # mouth
    if expression == "surprised":
        cx, cy = at(0.0, -0.45)
        draw.ellipse([cx - 0.15 * r, cy - 0.2 * r, cx + 0.15 * r, cy + 0.2 * r], fill=color)
        return
    xs = np.linspace(-1.0, 1.0, 9)
    if expression == "happy":
        arc = [at(0.34 * x, -0.3 - 0.26 * (1 - x * x)) for x in xs]
        draw.polygon(arc, fill=color)
        return
    if expression == "sad":
        pts = [at(0.3 * x, -0.58 + 0.2 * (1 - x * x)) for x in xs]
    elif expression == "angry":
        pts = [at(0.28 * x, -0.5 + 0.07 * (1 - x * x)) for x in xs]
    else:
        pts = [at(0.26 * x, -0.45) for x in xs]
    draw.line(pts, fill=color, width=lw + (1 if expression == "angry" else 0))

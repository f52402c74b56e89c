"""Body proportions per age group, per-activity joint-angle ranges and 2-D forward kinematics.

A figure is posed in a canonical frame with the pelvis at the origin and a standing height of 1
(image coordinates: x right, y down). Directions are angles ``theta`` in degrees with
``dir(theta) = (sin theta, cos theta)``: 0 points down, 90 right (+x), 180 up, 270 left.

Limb angles are measured from an *axis*: the legs from the body's down axis (``rot``, 0 for an
upright body), the arms from the torso's down axis (or from the world's down axis when
``arms_world``). A positive limb angle points *outward* in the front view (right limbs towards -x,
left limbs towards +x, the person faces the camera) and *forward* (+x) in the side view. Elbows
bend the forearm further in the limb's positive direction; knees bend the shin backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from focusclip.data.synthetic.classes import ACTIVITIES, AGE_GROUPS
from focusclip.errors import UsageError
from focusclip.skeleton import (
    HEAD_TOP,
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    THORAX,
    UPPER_NECK,
)


@dataclass(frozen=True)
class Proportions:
    """Segment lengths and widths as fractions of the standing height."""

    head: float  # upper neck -> head top (the head circle's diameter)
    neck: float  # thorax -> upper neck
    torso: float  # pelvis -> thorax
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shoulder: float  # half the shoulder width
    hip: float  # half the hip width
    limb: float  # limb thickness

    def arm(self) -> float:
        return self.upper_arm + self.forearm


#: Base proportions: kids have big heads and short limbs, adults small heads and long limbs.
# fmt: off
AGE_PROPORTIONS: dict[str, Proportions] = {
    "kid": Proportions(head=0.25, neck=0.03, torso=0.28, upper_arm=0.135, forearm=0.125,
                       thigh=0.19, shin=0.18, shoulder=0.095, hip=0.06, limb=0.065),
    "teenager": Proportions(head=0.185, neck=0.035, torso=0.29, upper_arm=0.16, forearm=0.15,
                            thigh=0.22, shin=0.22, shoulder=0.1, hip=0.055, limb=0.056),
    "adult": Proportions(head=0.15, neck=0.04, torso=0.30, upper_arm=0.17, forearm=0.16,
                         thigh=0.235, shin=0.235, shoulder=0.11, hip=0.06, limb=0.052),
}
# fmt: on

#: Standing height of a main subject as a fraction of the image height (overall size cue).
AGE_HEIGHTS: dict[str, tuple[float, float]] = {
    "kid": (0.42, 0.56),
    "teenager": (0.58, 0.72),
    "adult": (0.72, 0.88),
}


def sample_proportions(rng: np.random.Generator, age: str) -> Proportions:
    """The age group's proportions with a few percent of per-person jitter."""
    if age not in AGE_PROPORTIONS:
        raise UsageError(f"unknown age group {age!r}; expected one of {list(AGE_GROUPS)}")
    base = AGE_PROPORTIONS[age]
    jitter = rng.uniform(0.95, 1.05, size=10)
    values = [getattr(base, f) * j for f, j in zip(Proportions.__dataclass_fields__, jitter)]
    return Proportions(*values)


@dataclass(frozen=True)
class Pose:
    """Joint angles (degrees) and scene hints of one posed figure."""

    view: str = "front"  # "front" | "side"
    rot: float = 0.0  # whole-body rotation (lying down, push-ups)
    lean: float = 0.0  # torso lean forward from the body axis
    neck: float = 0.0  # head tilt forward from the torso axis
    arm_r: float = 10.0
    elbow_r: float = 5.0
    arm_l: float = 10.0
    elbow_l: float = 5.0
    leg_r: float = 5.0
    knee_r: float = 0.0
    leg_l: float = 5.0
    knee_l: float = 0.0
    arms_world: bool = False  # arm angles from the world's down axis instead of the torso's
    width: float = 1.0  # shoulder/hip width factor (narrow in the side view)
    lift: float = 0.0  # gap between the lowest point and the ground, in heights
    prop: str | None = None  # "chair" for sitting
    mirror: bool = False  # flip horizontally (facing left instead of right)


Range = tuple[float, float]

# fmt: off
_STAND_LEGS: dict[str, Range] = {"leg_r": (2, 9), "knee_r": (0, 6), "leg_l": (2, 9), "knee_l": (0, 6)}

#: Per-activity ranges. Keys are Pose fields; ``swap`` swaps right/left limbs half of the time.
POSE_RANGES: dict[str, dict] = {
    "running": dict(view="side", width=0.35, lean=(12, 25), neck=(-5, 10),
                    arm_r=(35, 70), elbow_r=(70, 110), arm_l=(-60, -30), elbow_l=(70, 110),
                    leg_r=(45, 75), knee_r=(60, 110), leg_l=(-40, -20), knee_l=(50, 100), swap=True),
    "walking": dict(view="side", width=0.35, lean=(0, 8), neck=(-5, 10),
                    arm_r=(15, 35), elbow_r=(10, 35), arm_l=(-35, -15), elbow_l=(5, 25),
                    leg_r=(15, 30), knee_r=(0, 15), leg_l=(-28, -12), knee_l=(10, 35), swap=True),
    "jumping": dict(view="front", lean=(-5, 5), neck=(-10, 10),
                    arm_r=(115, 170), elbow_r=(0, 35), arm_l=(115, 170), elbow_l=(0, 35),
                    leg_r=(15, 35), knee_r=(50, 95), leg_l=(15, 35), knee_l=(50, 95), lift=(0.12, 0.28)),
    "sitting": dict(view="side", width=0.35, lean=(-12, 10), neck=(-5, 10),
                    arm_r=(10, 45), elbow_r=(20, 70), arm_l=(10, 45), elbow_l=(20, 70),
                    leg_r=(80, 98), knee_r=(78, 100), leg_l=(78, 96), knee_l=(75, 100), prop="chair"),
    "standing": dict(view="front", lean=(-4, 4), neck=(-8, 8),
                     arm_r=(5, 20), elbow_r=(0, 15), arm_l=(5, 20), elbow_l=(0, 15), **_STAND_LEGS),
    "lying down": dict(view="front", width=0.75, rot=(-93, -87), lean=(-5, 5), neck=(-15, 15),
                       arm_r=(5, 40), elbow_r=(0, 40), arm_l=(5, 40), elbow_l=(0, 40),
                       leg_r=(0, 12), knee_r=(0, 20), leg_l=(0, 12), knee_l=(0, 20)),
    "squatting": dict(view="side", width=0.4, lean=(20, 45), neck=(-15, 5),
                      arm_r=(50, 95), elbow_r=(0, 25), arm_l=(50, 95), elbow_l=(0, 25),
                      leg_r=(78, 110), knee_r=(115, 150), leg_l=(75, 108), knee_l=(115, 150)),
    "waving": dict(view="front", lean=(-4, 4), neck=(-8, 8),
                   arm_r=(70, 115), elbow_r=(50, 100), arm_l=(5, 20), elbow_l=(0, 20), swap=True,
                   **_STAND_LEGS),
    "cheering": dict(view="front", lean=(-4, 4), neck=(-15, 5),
                     arm_r=(125, 170), elbow_r=(0, 25), arm_l=(125, 170), elbow_l=(0, 25),
                     leg_r=(3, 15), knee_r=(0, 8), leg_l=(3, 15), knee_l=(0, 8)),
    "kicking": dict(view="side", width=0.35, lean=(-22, -5), neck=(0, 15),
                    arm_r=(30, 80), elbow_r=(0, 40), arm_l=(-70, -20), elbow_l=(0, 40),
                    leg_r=(65, 105), knee_r=(0, 30), leg_l=(-8, 5), knee_l=(0, 10), swap=True),
    "bending over": dict(view="side", width=0.35, lean=(65, 100), neck=(-35, 0), arms_world=True,
                         arm_r=(-15, 25), elbow_r=(0, 30), arm_l=(-15, 25), elbow_l=(0, 30),
                         leg_r=(-12, -2), knee_r=(0, 12), leg_l=(-12, -2), knee_l=(0, 12)),
    "doing push-ups": dict(view="side", width=0.35, lean=(-3, 3), neck=(-10, 10), arms_world=True,
                           arm_r=(-8, 8), elbow_r=(0, 20), arm_l=(-8, 8), elbow_l=(0, 20),
                           leg_r=(-3, 3), knee_r=(0, 8), leg_l=(-3, 3), knee_l=(0, 8)),
}
# fmt: on

_ANGLE_FIELDS = (
    "rot",
    "lean",
    "neck",
    "arm_r",
    "elbow_r",
    "arm_l",
    "elbow_l",
    "leg_r",
    "knee_r",
    "leg_l",
    "knee_l",
    "lift",
)
_SWAP_PAIRS = (("arm_r", "arm_l"), ("elbow_r", "elbow_l"), ("leg_r", "leg_l"), ("knee_r", "knee_l"))


def sample_pose(rng: np.random.Generator, activity: str, props: Proportions) -> Pose:
    """Sample a pose of ``activity`` from its angle ranges (and a random facing direction)."""
    if activity not in POSE_RANGES:
        raise UsageError(f"unknown activity {activity!r}; expected one of {list(ACTIVITIES)}")
    spec = POSE_RANGES[activity]
    values: dict = {}
    for name in _ANGLE_FIELDS:  # fixed order: same draws for the same seed
        lo, hi = spec.get(name, (0.0, 0.0))
        values[name] = float(rng.uniform(lo, hi))
    for name in ("view", "width", "arms_world", "prop"):
        if name in spec:
            values[name] = spec[name]
    if spec.get("swap") and rng.random() < 0.5:
        for a, b in _SWAP_PAIRS:
            values[a], values[b] = values[b], values[a]
    values["mirror"] = bool(rng.random() < 0.5)
    pose = Pose(**values)
    if activity == "doing push-ups":
        pose = replace(pose, rot=-90.0 + _pushup_tilt(pose, props))
    return pose


def _pushup_tilt(pose: Pose, props: Proportions) -> float:
    """The body tilt (degrees above horizontal) at which hands and toes both touch the ground."""
    best, best_err = 0.0, math.inf
    for tilt in range(0, 50):
        j = forward_kinematics(replace(pose, rot=-90.0 + tilt, mirror=False), props)
        hands = max(j[R_WRIST, 1], j[L_WRIST, 1])
        feet = max(j[R_ANKLE, 1], j[L_ANKLE, 1])
        err = abs(hands - feet)
        if err < best_err:
            best, best_err = float(tilt), err
    return best


def _dir(theta: float) -> np.ndarray:
    t = math.radians(theta)
    return np.array([math.sin(t), math.cos(t)])


def _two_bone_limb(j: np.ndarray, chain: tuple[int, int, int], angle: float, bend: float,
                   upper: float, lower: float) -> None:
    """Place the middle and end joints of ``chain`` (root, middle, end) in ``j``: the upper bone leaves
    the root at ``angle`` degrees, the lower bone turns a further ``bend`` degrees at the middle joint."""
    root, mid, end = chain
    j[mid] = j[root] + upper * _dir(angle)
    j[end] = j[mid] + lower * _dir(angle + bend)


def forward_kinematics(pose: Pose, props: Proportions, height: float = 1.0) -> np.ndarray:
    """The 16 MPII joints (float array (16, 2)) of ``pose``, pelvis at the origin, standing height ``height``."""
    j = np.zeros((16, 2))
    sig_r = -1.0 if pose.view == "front" else 1.0
    th_torso = 180.0 - pose.lean + pose.rot
    th_body = pose.rot
    j[THORAX] = props.torso * _dir(th_torso)
    th_head = th_torso - pose.neck
    j[UPPER_NECK] = j[THORAX] + props.neck * _dir(th_head)
    j[HEAD_TOP] = j[UPPER_NECK] + props.head * _dir(th_head)
    lat_torso = _dir(th_torso - 90.0) * props.shoulder * pose.width
    lat_body = _dir(th_body + 90.0) * props.hip * pose.width
    j[R_SHOULDER], j[L_SHOULDER] = j[THORAX] - lat_torso, j[THORAX] + lat_torso
    j[R_HIP], j[L_HIP] = -lat_body, lat_body
    arm_axis = 0.0 if pose.arms_world else th_torso - 180.0
    arms = (
        (sig_r, R_SHOULDER, R_ELBOW, R_WRIST, pose.arm_r, pose.elbow_r),
        (1.0, L_SHOULDER, L_ELBOW, L_WRIST, pose.arm_l, pose.elbow_l),
    )
    for sig, s, e, w, arm, elbow in arms:
        _two_bone_limb(j, (s, e, w), arm_axis + sig * arm, sig * elbow, props.upper_arm, props.forearm)
    legs = (
        (sig_r, R_HIP, R_KNEE, R_ANKLE, pose.leg_r, pose.knee_r),
        (1.0, L_HIP, L_KNEE, L_ANKLE, pose.leg_l, pose.knee_l),
    )
    for sig, h, k, a, leg, knee in legs:
        _two_bone_limb(j, (h, k, a), th_body + sig * leg, -sig * knee, props.thigh, props.shin)
    j *= height
    if pose.mirror:
        j[:, 0] *= -1.0
    return j

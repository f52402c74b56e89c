"""The skeletons focusclip knows: MPII's 16 human joints (the record schema's joints) and CUB's 15 bird parts.

Everything else imports joint ids, names, part groups and limbs from here, and decides visibility with
:func:`visible_mask`, the one rule of the project:

    A point is visible when its visibility flag (if any) is > 0, both coordinates are finite, and it is
    not the ``[-1, -1]`` "not annotated" marker.

Any other coordinate is a real position, *negative ones included*: MPII annotates joints that lie
just outside the frame (a head top above the upper edge has ``y < 0``), and those still mark where the
person is and how the limbs bend. Heatmaps, the rule-based describer, the LLM prompt, the custom-data
reader and the validator all apply this rule (the validator warns about visible joints outside the
image, it does not hide them).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from focusclip.errors import UsageError

# ------------------------------------------------------------------------------------ MPII joints
#: Joint keys in MPII order (ids 0..15); ``r``/``l`` are the person's own right and left.
MPII_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip
NUM_JOINTS = len(MPII_JOINTS)

R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, THORAX = range(8)
UPPER_NECK, HEAD_TOP, R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = range(8, 16)


def spoken_joint_name(joint: str) -> str:
    """A joint key as words: ``r_ankle`` -> ``right ankle``, ``head_top`` -> ``head top``."""
    side, _, rest = joint.partition("_")
    if side in ("r", "l") and rest:
        joint = ("right " if side == "r" else "left ") + rest
    return joint.replace("_", " ")


#: The joints in MPII order, spelled as words (what the description prompt shows an LLM).
MPII_JOINT_NAMES: tuple[str, ...] = tuple(spoken_joint_name(j) for j in MPII_JOINTS)

#: The ten body-part groups of the body-part heatmap (MPII joint ids), in the reference code's order.
MPII_PART_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "head": (THORAX, UPPER_NECK, HEAD_TOP, R_SHOULDER, L_SHOULDER),
    "torso": (PELVIS, THORAX, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP),
    "left_upper_arm": (L_SHOULDER, L_ELBOW, THORAX),
    "right_upper_arm": (R_SHOULDER, R_ELBOW, THORAX),
    "left_lower_arm": (L_ELBOW, L_WRIST, L_SHOULDER),
    "right_lower_arm": (R_ELBOW, R_WRIST, R_SHOULDER),
    "left_upper_leg": (L_HIP, L_KNEE, PELVIS),
    "right_upper_leg": (R_HIP, R_KNEE, PELVIS),
    "left_lower_leg": (L_KNEE, L_ANKLE, L_HIP),
    "right_lower_leg": (R_KNEE, R_ANKLE, R_HIP),
})

#: The bones of a drawn skeleton (pairs of joint ids).
MPII_LIMBS: tuple[tuple[int, int], ...] = (
    (R_ANKLE, R_KNEE), (R_KNEE, R_HIP), (R_HIP, PELVIS), (L_HIP, PELVIS), (L_HIP, L_KNEE), (L_KNEE, L_ANKLE),
    (PELVIS, THORAX), (THORAX, UPPER_NECK), (UPPER_NECK, HEAD_TOP), (R_WRIST, R_ELBOW), (R_ELBOW, R_SHOULDER),
    (R_SHOULDER, THORAX), (L_SHOULDER, THORAX), (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST),
)  # fmt: skip

#: Hip, knee, ankle and shoulder, elbow, wrist of each side.
LEGS: Mapping[str, tuple[int, int, int]] = MappingProxyType({"left": (L_HIP, L_KNEE, L_ANKLE),
                                                             "right": (R_HIP, R_KNEE, R_ANKLE)})
ARMS: Mapping[str, tuple[int, int, int]] = MappingProxyType({"left": (L_SHOULDER, L_ELBOW, L_WRIST),
                                                             "right": (R_SHOULDER, R_ELBOW, R_WRIST)})

#: The body parts every per-person pose description covers, in the order the template lists them.
BODY_PARTS: tuple[str, ...] = ("left leg", "right leg", "left arm", "right arm", "torso", "head")

# ---------------------------------------------------------------------------------- CUB bird parts
#: CUB-200-2011 parts in the order of ``parts/parts.txt`` (part ids 1..15 -> index 0..14).
CUB_PARTS: tuple[str, ...] = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
    "nape", "right eye", "right leg", "right wing", "tail", "throat",
)  # fmt: skip

# -------------------------------------------------------------------------------------- visibility
NOT_ANNOTATED = (-1.0, -1.0)  #: the coordinates of a joint that was not annotated


def visible_mask(points: Any, visible: Any = None) -> np.ndarray:
    """The project's visibility rule (module docstring) for points ``(..., 2)``: a bool array ``(...)``.

    ``visible`` (flags broadcastable to the points' leading shape, NaN counted as 0) may be ``None``:
    then only the coordinates decide.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1:] != (2,):
        raise UsageError(f"points must have shape (..., 2), got {pts.shape}")
    ok = np.isfinite(pts).all(axis=-1) & ~(pts == NOT_ANNOTATED).all(axis=-1)
    if visible is not None:
        flags = np.nan_to_num(np.asarray(visible, dtype=np.float64), nan=0.0)
        ok &= np.broadcast_to(flags, ok.shape) > 0
    return ok

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

#: CUB parts grouped for the ``parts`` heatmap of a bird (indices into :data:`CUB_PARTS`).
CUB_PART_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "head": (1, 4, 5, 6, 9, 10, 14),   # beak, crown, forehead, eyes, nape, throat
    "body": (0, 2, 3),                 # back, belly, breast
    "left_wing": (8, 0),               # left wing with the back it joins
    "right_wing": (12, 0),
    "tail": (13, 0),
    "legs": (7, 11, 2),                # legs with the belly above them
})

#: Named point layouts a record's free ``points`` may follow (``points_layout``): their part names and the
#: groups of the ``parts`` heatmap.
POINT_LAYOUTS: Mapping[str, tuple[tuple[str, ...], Mapping[str, tuple[int, ...]]]] = MappingProxyType({
    "cub": (CUB_PARTS, CUB_PART_GROUPS),
})

# ------------------------------------------------------------------------ COCO and BlazePose -> MPII
#: COCO's 17 person keypoints, in the order of ``person_keypoints_*.json`` (the person's own left/right).
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)  # fmt: skip
NUM_COCO_KEYPOINTS = len(COCO_KEYPOINTS)

#: MPII joints that are COCO keypoints (MPII id -> COCO index); the other four are derived (see
#: :func:`coco_to_mpii`).
COCO_TO_MPII_DIRECT: Mapping[int, int] = MappingProxyType({
    R_ANKLE: 16, R_KNEE: 14, R_HIP: 12, L_HIP: 11, L_KNEE: 13, L_ANKLE: 15,
    R_WRIST: 10, R_ELBOW: 8, R_SHOULDER: 6, L_SHOULDER: 5, L_ELBOW: 7, L_WRIST: 9,
})

#: Where the neck and head joints sit on the line from the thorax (shoulder midpoint, t) through the head
#: anchor (ear midpoint, else the one ear, else the nose, h): ``t + f * (h - t)``. The ears sit about at
#: the middle of the head; MPII's upper neck is at the base of the head (about half way from the
#: shoulders up to the ears) and its head top as far above the ears as the upper neck is below them.
UPPER_NECK_FRACTION = 0.5
HEAD_TOP_FRACTION = 1.5

#: BlazePose's 33 landmarks (MediaPipe Pose), in its output order.
BLAZEPOSE_LANDMARKS: tuple[str, ...] = (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer", "l_ear", "r_ear",
    "mouth_left", "mouth_right", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip", "l_knee", "r_knee",
    "l_ankle", "r_ankle", "l_heel", "r_heel", "l_foot_index", "r_foot_index",
)  # fmt: skip

#: BlazePose landmark index of each COCO keypoint (BlazePose is a superset of COCO's 17).
BLAZEPOSE_TO_COCO: tuple[int, ...] = tuple(BLAZEPOSE_LANDMARKS.index(k) for k in COCO_KEYPOINTS)


def coco_to_mpii(points: Any, visible: Any) -> tuple[np.ndarray, np.ndarray]:
    """17 COCO keypoints ``(17, 2)`` with visibility flags ``(17,)`` -> MPII joints ``(16, 2)`` and
    visibility ``(16,)`` (float flags in [0, 1]; 0 = invisible, stored as ``[-1, -1]``).

    The twelve limb joints are copied (:data:`COCO_TO_MPII_DIRECT`); pelvis is the midpoint of the hips and
    thorax that of the shoulders (visible when both ends are); upper neck and head top lie on the line
    from the thorax through the head anchor (the ears' midpoint, else the one visible ear, else the nose)
    at :data:`UPPER_NECK_FRACTION` and :data:`HEAD_TOP_FRACTION`. A derived joint's flag is the smallest
    flag of the points it comes from. ``visible`` is any per-point score: COCO's 0/1/2 (pass ``v > 0`` or
    ``v == 2``), a detector's confidence thresholded by the caller, and so on; the project's rule
    (:func:`visible_mask`) is applied to the COCO points first.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(NUM_COCO_KEYPOINTS, 2)
    flags = np.asarray(visible, dtype=np.float64).reshape(NUM_COCO_KEYPOINTS)
    flags = np.where(visible_mask(pts, flags), np.clip(flags, 0.0, 1.0), 0.0)
    joints = np.full((NUM_JOINTS, 2), -1.0)
    vis = np.zeros(NUM_JOINTS)
    for mpii, coco in COCO_TO_MPII_DIRECT.items():
        joints[mpii], vis[mpii] = pts[coco], flags[coco]

    def mid(a: int, b: int) -> tuple[np.ndarray, float]:
        return (pts[a] + pts[b]) / 2, min(flags[a], flags[b])

    (joints[PELVIS], vis[PELVIS]), (joints[THORAX], vis[THORAX]) = mid(11, 12), mid(5, 6)
    anchor, anchor_flag = _head_anchor(pts, flags)
    if anchor is not None and vis[THORAX] > 0:
        t = joints[THORAX]
        for joint, f in ((UPPER_NECK, UPPER_NECK_FRACTION), (HEAD_TOP, HEAD_TOP_FRACTION)):
            joints[joint], vis[joint] = t + f * (anchor - t), min(vis[THORAX], anchor_flag)
    joints[vis <= 0] = NOT_ANNOTATED
    vis[vis <= 0] = 0.0
    return joints, vis


def _head_anchor(pts: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The ears' midpoint, else the one visible ear, else the nose (COCO indices 3, 4 and 0)."""
    ears = [i for i in (3, 4) if flags[i] > 0]
    if ears:
        return pts[ears].mean(axis=0), float(min(flags[ears]))
    if flags[0] > 0:
        return pts[0], float(flags[0])
    return None, 0.0


def blazepose_to_coco(landmarks: Any, visibility: Any) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose's 33 landmarks ``(33, 2)`` and visibility scores ``(33,)`` -> the 17 COCO keypoints."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(len(BLAZEPOSE_LANDMARKS), 2)
    sc = np.asarray(visibility, dtype=np.float64).reshape(len(BLAZEPOSE_LANDMARKS))
    idx = list(BLAZEPOSE_TO_COCO)
    return lm[idx], sc[idx]


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

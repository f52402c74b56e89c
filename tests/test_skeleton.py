"""The skeleton module: MPII joints, part groups and CUB parts, and the one visibility rule."""

from __future__ import annotations

from focusclip import skeleton

PAPER_GROUPS = {
    "head": [7, 8, 9, 12, 13],
    "torso": [6, 7, 12, 13, 2, 3],
    "left upper arm": [13, 14, 7],
    "right upper arm": [12, 11, 7],
    "left lower arm": [14, 15, 13],
    "right lower arm": [11, 10, 12],
    "left upper leg": [3, 4, 6],
    "right upper leg": [2, 1, 6],
    "left lower leg": [4, 5, 3],
    "right lower leg": [1, 0, 2],
}


def test_constants_match_spec():
    assert [list(v) for v in skeleton.MPII_PART_GROUPS.values()] == list(PAPER_GROUPS.values())
    assert [k.replace("_", " ") for k in skeleton.MPII_PART_GROUPS] == list(PAPER_GROUPS)
    assert len(skeleton.MPII_JOINTS) == 16
    assert (
        skeleton.MPII_JOINTS[0] == "r_ankle" and skeleton.MPII_JOINTS[9] == "head_top" and skeleton.MPII_JOINTS[15] == "l_wrist"
    )
    assert skeleton.CUB_PARTS == (
        "back",
        "beak",
        "belly",
        "breast",
        "crown",
        "forehead",
        "left eye",
        "left leg",
        "left wing",
        "nape",
        "right eye",
        "right leg",
        "right wing",
        "tail",
        "throat",
    )

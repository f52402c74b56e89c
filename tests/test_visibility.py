"""One visibility rule: heatmaps, the rule-based describer and the record validator agree on every case.

A joint is invisible when its flag is 0, a coordinate is NaN, or it is the [-1, -1] marker; any other
coordinate is visible, negative ones included (MPII annotates head tops just above the frame).
"""

from __future__ import annotations

import numpy as np
import pytest

from focusclip.data.validate import validate_dataset
from focusclip.describe.rules import describe_record
from focusclip.heatmaps import record_heatmap
from focusclip.skeleton import HEAD_TOP, UPPER_NECK, visible_mask

W, H = 80, 60
BASE = [[30.0, 50.0], [30.0, 40.0], [32.0, 30.0], [48.0, 30.0], [50.0, 40.0], [50.0, 50.0], [40.0, 30.0],
        [40.0, 15.0], [40.0, 10.0], [40.0, 4.0], [25.0, 30.0], [28.0, 22.0], [33.0, 15.0], [47.0, 15.0],
        [52.0, 22.0], [55.0, 30.0]]
CASES = {  # head top as (x, y, flag) -> visible?
    "flag 0": ((40.0, 4.0, 0), False),
    "NaN": ((float("nan"), float("nan"), 1), False),
    "[-1, -1] marker": ((-1.0, -1.0, 1), False),
    "just off the top edge": ((40.0, -6.0, 1), True),
    "plain": ((40.0, 4.0, 1), True),
}


def _record(head_top: tuple[float, float, int]) -> dict:
    joints = [list(p) for p in BASE]
    visible = [1] * 16
    joints[HEAD_TOP] = [head_top[0], head_top[1]]
    visible[HEAD_TOP] = head_top[2]
    return {"image": "x.jpg", "id": "r", "width": W, "height": H, "captions": ["x"],
            "people": [{"joints": joints, "visible": visible}]}


def _without_head_top() -> dict:
    return _record((-1.0, -1.0, 0))


@pytest.mark.parametrize("case", list(CASES))
def test_heatmaps_describer_and_validator_agree(case):
    head_top, expected = CASES[case]
    rec = _record(head_top)
    person = rec["people"][0]
    assert bool(visible_mask(person["joints"], person["visible"])[HEAD_TOP]) is expected

    # heatmap: the head top counts iff the person's box (and so the map) changes with it
    with_it = record_heatmap(rec, (H, W), "person")
    without = record_heatmap(_without_head_top(), (H, W), "person")
    assert (not np.allclose(with_it, without)) is expected

    # rule describer: the head is described (from upper neck to head top) iff the head top is visible
    assert person["visible"][UPPER_NECK] == 1
    assert ("their head is" in describe_record(rec).lower()) is expected

    # validator: it counts the joint as visible, and warns when a visible joint lies outside the image
    report = validate_dataset([rec], check_images=False)
    base = validate_dataset([_without_head_top()], check_images=False).n_visible_joints
    assert report.n_visible_joints == base + int(expected)
    assert ("keypoints outside the image" in report.counts) is (expected and head_top[1] < 0)

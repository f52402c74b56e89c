"""Pictures: heatmap overlays and skeletons."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from focusclip.drawing import draw_skeleton, overlay_heatmap


def test_overlay_size_mode_and_blend():
    img = Image.new("RGB", (40, 30), (0, 128, 0))
    heat = np.zeros((15, 20), np.float32)
    heat[5:10, 5:10] = 1.0
    out = overlay_heatmap(img, heat, alpha=0.5)
    assert out.size == img.size and out.mode == "RGB"
    a = np.asarray(out).astype(int)
    assert (a != np.asarray(img)).any()
    assert a[15, 15, 0] > a[0, 0, 0]  # hot region is red-shifted under "jet", cold one is not
    np.testing.assert_array_equal(
        np.asarray(overlay_heatmap(img.convert("L"), heat, alpha=0.0)),
        np.asarray(img.convert("L").convert("RGB")),
    )
    with pytest.raises(ValueError, match="heatmap"):
        overlay_heatmap(img, np.zeros((2, 3, 4)))


def test_draw_skeleton_draws_limbs_only_between_visible_joints():
    img = Image.new("RGB", (50, 50))
    joints = np.full((16, 2), -1.0)
    joints[7], joints[8] = (10, 10), (40, 10)  # thorax - upper neck is a limb
    out = np.asarray(draw_skeleton(img, joints, width=1, radius=1))
    assert out[10, 25].any()  # on the line
    assert not out[30, 25].any()
    assert np.asarray(img).sum() == 0  # input untouched

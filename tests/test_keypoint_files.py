"""Keypoint and box files for one image: the three accepted forms and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from focusclip.data.keypoint_files import read_boxes_file, read_keypoints_file


def _record() -> dict:
    joints = [[-1, -1] for _ in range(16)]
    joints[7], joints[9], joints[0] = [100, 50], [110, 20], [90, 300]
    vis = [0] * 16
    vis[7] = vis[9] = vis[0] = 1
    return {"image": "a.jpg", "id": "rec-1", "width": 200, "height": 400, "people": [{"joints": joints, "visible": vis}]}


def test_read_keypoints_file_formats(tmp_path):
    rec = _record()
    files = {
        "record.json": rec,
        "people.json": [{"joints": p["joints"], "visible": p["visible"]} for p in rec["people"]],
        "array.json": rec["people"][0]["joints"],
        "batch.json": [rec["people"][0]["joints"]],
    }
    want_j = np.array([rec["people"][0]["joints"]], float)
    for name, obj in files.items():
        (tmp_path / name).write_text(json.dumps(obj))
        kp = read_keypoints_file(tmp_path / name)
        np.testing.assert_array_equal(kp.joints, want_j)
        assert kp.visible.astype(int).tolist() == [rec["people"][0]["visible"]], name
        assert kp.src_size == ((400, 200) if name == "record.json" else None)
    (tmp_path / "bad.json").write_text(json.dumps([[1, 2, 3]]))
    with pytest.raises(ValueError, match="bad.json"):
        read_keypoints_file(tmp_path / "bad.json")


def test_read_boxes_file(tmp_path):
    (tmp_path / "one.json").write_text("[1, 2, 30, 40]")
    (tmp_path / "two.json").write_text("[[1, 2, 30, 40], [5, 5, 9, 9]]")
    assert read_boxes_file(tmp_path / "one.json").tolist() == [[1, 2, 30, 40]]
    assert read_boxes_file(tmp_path / "two.json").shape == (2, 4)
    (tmp_path / "bad.json").write_text("[[1, 2, 3]]")
    with pytest.raises(ValueError, match=r"bad.json: box 0 is \[1, 2, 3\]"):
        read_boxes_file(tmp_path / "bad.json")

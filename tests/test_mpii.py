"""MPII .mat -> records, on a fixture written with scipy.io.savemat in the RELEASE structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from focusclip.data.mpii import SKIP_NO_PERSON, SKIP_NOT_IN_SPLITS, SKIP_TEST, convert_mpii, random_split
from focusclip.data.records import read_records

EMPTY = np.zeros((0, 0))


def _struct_array(items: list[dict], column: bool = False) -> np.ndarray:
    """A MATLAB struct array (1 x N, or N x 1) from dicts; fields missing in an item become []."""
    fields: list[str] = []
    for item in items:
        fields += [k for k in item if k not in fields]
    shape = (len(items), 1) if column else (1, len(items))
    arr = np.zeros(shape, dtype=[(f, "O") for f in fields])
    for k, item in enumerate(items):
        idx = (k, 0) if column else (0, k)
        for f in fields:
            arr[idx][f] = item.get(f, EMPTY)
    return arr


def _cell(values: list, column: bool = False) -> np.ndarray:
    arr = np.empty((len(values), 1) if column else (1, len(values)), dtype=object)
    for k, v in enumerate(values):
        arr[(k, 0) if column else (0, k)] = v
    return arr


def _points(joints: dict[int, tuple[float, float, object]]) -> np.ndarray:
    return _struct_array([{"x": float(x), "y": float(y), "id": float(j), "is_visible": v}
                          for j, (x, y, v) in joints.items()])


def _rect(points=None, objpos=(100.0, 120.0), scale=1.5, head=(10.0, 10.0, 30.0, 40.0)) -> dict:
    r = {"x1": head[0], "y1": head[1], "x2": head[2], "y2": head[3], "scale": scale,
         "objpos": {"x": objpos[0], "y": objpos[1]}}
    if points is not None:
        r["annopoints"] = {"point": points}
    return r


def write_mpii_fixture(root: Path) -> dict:
    """Six images covering the awkward cases; returns the paths."""
    images = root / "images"
    images.mkdir(parents=True)
    names = [f"00000000{i}.jpg" for i in range(1, 7)]
    for k, name in enumerate(names):
        Image.new("RGB", (64 + k, 48), (k * 30, 100, 50)).save(images / name)

    full = {j: (10.0 + j, 20.0 + j, "1") for j in range(16)}
    person_a = _rect(_points(full), objpos=(50.0, 60.0), scale=2.0)
    partial = {0: (5.0, 6.0, "1"), 1: (7.0, 8.0, "0"), 9: (9.0, 10.0, 1), 10: (11.0, 12.0, ""),
               12: (13.0, 14.0, EMPTY), 13: (15.0, 16.0, 0)}
    annolist = [
        # 1: multi-person train image: two annotated people and one rect without joints
        {"image": {"name": names[0]},
         "annorect": _struct_array([person_a, _rect(_points(partial)), {"x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0}]),
         "frame_sec": 5.0, "vididx": 2.0},
        # 2: single-person train image, annorect a single struct (squeezed to mat_struct on load)
        {"image": {"name": names[1]}, "annorect": _rect(_points(partial), objpos=(30.0, 31.0)),
         "frame_sec": EMPTY, "vididx": EMPTY},
        # 3: train image with empty annorect
        {"image": {"name": names[2]}, "annorect": EMPTY, "frame_sec": EMPTY, "vididx": EMPTY},
        # 4: test image: objpos and scale only, no joints
        {"image": {"name": names[3]}, "annorect": _struct_array([{"scale": 3.0, "objpos": {"x": 40.0, "y": 41.0}}]),
         "frame_sec": 1.0, "vididx": 1.0},
        # 5: train image whose annopoints.point is one struct and one person without annopoints
        {"image": {"name": names[4]},
         "annorect": _struct_array([_rect({"x": 3.0, "y": 4.0, "id": 7.0, "is_visible": "1"}), _rect(EMPTY)]),
         "frame_sec": EMPTY, "vididx": EMPTY},
        # 6: train image absent from the mmpose split files
        {"image": {"name": names[5]}, "annorect": _struct_array([person_a]), "frame_sec": EMPTY, "vididx": EMPTY},
    ]
    release = {
        "annolist": _struct_array(annolist),
        "img_train": np.array([[1, 1, 1, 0, 1, 1]], dtype=float),
        "version": "12",
        "single_person": _cell([np.array([[1.0], [2.0]]), 1.0, EMPTY, EMPTY, 1.0, 1.0], column=True),
        "act": _struct_array([
            {"cat_name": "bicycling", "act_name": "bicycling, mountain", "act_id": 1.0},
            {"cat_name": EMPTY, "act_name": EMPTY, "act_id": -1.0},
            {"cat_name": "sports", "act_name": "curling", "act_id": 5.0},
            {"cat_name": EMPTY, "act_name": EMPTY, "act_id": -1.0},
            {"cat_name": "dancing", "act_name": "ballet", "act_id": 9.0},
            {"cat_name": "dancing", "act_name": "ballet", "act_id": 9.0},
        ], column=True),
        "video_list": _cell(["vidAAAA", "vidBBBB"]),
    }
    mat = root / "mpii_human_pose_v1_u12_1.mat"
    savemat(str(mat), {"RELEASE": release})
    split_train = root / "train.json"
    split_val = root / "valid.json"

    def entry(name):
        return {"image": name, "center": [1.0, 2.0], "scale": 1.0, "joints": [[0.0, 0.0]] * 16,
                "joints_vis": [1] * 16}

    split_train.write_text(json.dumps([entry(names[0]), entry(names[0]), entry(names[4])]))
    split_val.write_text(json.dumps([entry(names[1])]))
    return {"mat": mat, "images": images, "train": split_train, "val": split_val, "names": names}


@pytest.fixture()
def mpii(tmp_path):
    return write_mpii_fixture(tmp_path)


def test_convert_with_split_files(mpii):
    by_split, stats = convert_mpii(mpii["mat"], mpii["images"],
                                   split_files={"train": mpii["train"], "val": mpii["val"]})
    names = mpii["names"]
    assert [r["meta"]["name"] for r in by_split["train"]] == [names[0], names[4]]
    assert [r["meta"]["name"] for r in by_split["val"]] == [names[1]]
    assert "test" not in by_split
    assert stats["skipped"] == {SKIP_NO_PERSON: 1, SKIP_TEST: 1, SKIP_NOT_IN_SPLITS: 1}
    assert stats["people"] == {"train": 3, "val": 1}

    multi = by_split["train"][0]
    assert multi["split"] == "train"
    assert multi["activity"] == {"id": 1, "name": "bicycling, mountain", "category": "bicycling"}
    assert multi["meta"]["video_index"] == 2 and multi["meta"]["video_id"] == "vidBBBB"
    assert multi["meta"]["frame_sec"] == 5.0 and multi["meta"]["single_person"] == [1, 2]
    assert (multi["width"], multi["height"]) == (64, 48)
    assert len(multi["people"]) == 2  # the rect without joints is dropped from a train image
    a, b = multi["people"]
    assert a["center"] == [50.0, 60.0] and a["scale"] == 2.0 and a["head_box"] == [10.0, 10.0, 30.0, 40.0]
    assert a["joints"][15] == [25.0, 35.0] and a["visible"] == [1] * 16
    # partial person: annotated joints (any is_visible form) are visible, the rest [-1, -1]
    assert b["joints"][0] == [5.0, 6.0] and b["joints"][2] == [-1.0, -1.0]
    assert [b["visible"][j] for j in (0, 1, 2, 9, 10, 12, 13)] == [1, 1, 0, 1, 1, 1, 1]
    assert [b["occluded"][j] for j in (0, 1, 9, 10, 12, 13)] == [0, 1, 0, 0, 0, 1]

    single = by_split["val"][0]
    assert single["activity"] == {"id": None, "name": None, "category": None}
    assert single["meta"]["video_index"] is None and single["meta"]["frame_sec"] is None
    assert single["people"][0]["center"] == [30.0, 31.0]

    one_point = by_split["train"][1]
    assert len(one_point["people"]) == 1  # the person with empty annopoints is dropped
    assert one_point["people"][0]["joints"][7] == [3.0, 4.0] and sum(one_point["people"][0]["visible"]) == 1


def test_strict_visibility_and_include_test(mpii):
    by_split, stats = convert_mpii(mpii["mat"], mpii["images"], include_test=True, visibility="strict",
                                   val_fraction=0.0)
    assert [r["meta"]["name"] for r in by_split["test"]] == [mpii["names"][3]]
    test_person = by_split["test"][0]["people"][0]
    assert test_person["center"] == [40.0, 41.0] and test_person["scale"] == 3.0
    assert test_person["joints"] == [[-1.0, -1.0]] * 16 and test_person["visible"] == [0] * 16
    assert SKIP_TEST not in stats["skipped"]
    b = by_split["train"][0]["people"][1]
    assert [b["visible"][j] for j in (0, 1, 13)] == [1, 0, 0]
    assert len(by_split["train"]) == 4  # val_fraction 0: all four usable train images


def test_random_split_is_deterministic_and_disjoint(mpii):
    runs = [convert_mpii(mpii["mat"], mpii["images"], val_fraction=0.5, seed=s, read_sizes=False)[0]
            for s in (3, 3)]
    names = [{k: sorted(r["meta"]["name"] for r in v) for k, v in run.items()} for run in runs]
    assert names[0] == names[1]
    assert len(names[0]["val"]) == 2 and len(names[0]["train"]) == 2
    assert not set(names[0]["val"]) & set(names[0]["train"])
    many = [f"{i:09d}.jpg" for i in range(100)]
    split = random_split(many, 0.2, seed=3)
    assert split == random_split(list(reversed(many)), 0.2, seed=3)  # independent of input order
    assert sum(v == "val" for v in split.values()) == 20
    assert split != random_split(many, 0.2, seed=4)  # the seed matters


def test_cli_writes_jsonl_with_paths_relative_to_output(mpii, tmp_path, capsys, monkeypatch):
    from focusclip.cli import main

    monkeypatch.chdir(tmp_path)
    rc = main(["data", "mpii", "--annotations", str(mpii["mat"]), "--images", "images", "--out", "out/mpii",
               "--split-train", str(mpii["train"]), "--split-val", str(mpii["val"])])
    assert rc == 0
    out = capsys.readouterr().out
    assert "train: 2 images, 3 people" in out and f"{SKIP_TEST}: 1" in out
    train = read_records(tmp_path / "out/mpii/train.jsonl")
    val = read_records(tmp_path / "out/mpii/val.jsonl")
    assert len(train) == 2 and len(val) == 1
    assert train[0]["image"] == "../../images/000000001.jpg"
    assert (tmp_path / "out/mpii" / train[0]["image"]).is_file()


def test_bad_inputs_have_clear_errors(tmp_path, mpii):
    with pytest.raises(FileNotFoundError, match="not found"):
        convert_mpii(tmp_path / "missing.mat", tmp_path)
    savemat(str(tmp_path / "other.mat"), {"foo": np.ones(3)})
    with pytest.raises(ValueError, match="no variable 'RELEASE'"):
        convert_mpii(tmp_path / "other.mat", tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps([{"center": [1, 2]}]))
    with pytest.raises(ValueError, match=r"bad.json: entry 0 has no 'image'"):
        convert_mpii(mpii["mat"], mpii["images"], split_files={"train": tmp_path / "bad.json"})

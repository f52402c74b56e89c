"""COCO person keypoints + captions in the release's JSON layout -> records with MPII joints and captions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from focusclip import skeleton
from focusclip.cli import main
from focusclip.data.coco import CocoError, convert_coco
from focusclip.data.records import read_records
from focusclip.describe.prompt import annotation_payload
from focusclip.describe.rules import describe_record

NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
         "right_knee", "left_ankle", "right_ankle"]

# a standing person (COCO order): head at the top, ankles at the bottom, 640x480 frame
STANDING = [(320, 60, 2), (330, 50, 2), (310, 50, 2), (345, 60, 2), (295, 60, 1), (370, 120, 2), (270, 120, 2),
            (380, 190, 2), (260, 190, 2), (385, 250, 2), (255, 250, 1), (350, 260, 2), (290, 260, 2),
            (352, 350, 2), (288, 350, 2), (354, 440, 2), (286, 440, 0)]


def _kp(triples):
    out = []
    for x, y, v in triples:
        out += [x, y, v] if v else [0, 0, 0]
    return out


def make_coco(root, split="val"):
    """A COCO folder: annotations/person_keypoints_<split>2017.json, captions_<split>2017.json, <split>2017/."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images_dir = root / f"{split}2017"
    images_dir.mkdir(exist_ok=True)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in (139, 285, 632, 724)]
    for im in images:
        Image.new("RGB", (640, 480), (90, 120, 150)).save(images_dir / im["file_name"])
    anns = [
        {"id": 1, "image_id": 139, "category_id": 1, "iscrowd": 0, "area": 30000.0, "bbox": [250, 40, 140, 410],
         "num_keypoints": 16, "keypoints": _kp(STANDING)},
        {"id": 2, "image_id": 139, "category_id": 1, "iscrowd": 1, "area": 50000.0, "bbox": [0, 0, 200, 300],
         "num_keypoints": 0, "keypoints": [0] * 51},
        {"id": 3, "image_id": 285, "category_id": 1, "iscrowd": 0, "area": 400.0, "bbox": [10, 10, 20, 20],
         "num_keypoints": 2, "keypoints": _kp([(15, 15, 2), (18, 15, 2)] + [(0, 0, 0)] * 15)},
        {"id": 4, "image_id": 632, "category_id": 1, "iscrowd": 0, "area": 9000.0, "bbox": [100, 100, 90, 100],
         "num_keypoints": 0, "keypoints": [0] * 51},
    ]
    cats = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": NAMES, "skeleton": [[16, 14]]}]
    (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(
        json.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}))
    caps = [{"id": 10 + k, "image_id": 139, "caption": f"A person standing in a room {k}. \n"} for k in range(5)]
    caps.append({"id": 99, "image_id": 285, "caption": "A tiny figure far away."})
    (root / "annotations" / f"captions_{split}2017.json").write_text(
        json.dumps({"info": {}, "images": images, "annotations": caps}))
    return root


def test_coco_to_mpii_mapping_on_recorded_keypoints():
    pts = np.array([(x, y) for x, y, _ in STANDING], float)
    v = np.array([v for *_, v in STANDING], float)
    joints, vis = skeleton.coco_to_mpii(np.where((v > 0)[:, None], pts, -1), v > 0)
    # limbs copied: MPII r_knee is COCO right_knee (14), l_wrist is left_wrist (9)
    assert joints[skeleton.R_KNEE].tolist() == [288, 350] and joints[skeleton.L_WRIST].tolist() == [385, 250]
    assert joints[skeleton.PELVIS].tolist() == [320, 260] and joints[skeleton.THORAX].tolist() == [320, 120]
    # ears' midpoint (320, 60): upper neck half way up from the thorax, head top as far above the ears
    assert joints[skeleton.UPPER_NECK].tolist() == [320, 90] and joints[skeleton.HEAD_TOP].tolist() == [320, 30]
    # the unlabelled right ankle stays invisible under the project's rule
    assert vis[skeleton.R_ANKLE] == 0 and joints[skeleton.R_ANKLE].tolist() == [-1, -1]
    assert vis.sum() == 15
    # no shoulders -> no thorax, so no neck and head either
    v2 = (v > 0).astype(float)
    v2[[5, 6]] = 0
    j2, vis2 = skeleton.coco_to_mpii(pts, v2)
    assert vis2[[skeleton.THORAX, skeleton.UPPER_NECK, skeleton.HEAD_TOP]].tolist() == [0, 0, 0]
    assert (j2[skeleton.HEAD_TOP] == -1).all()


def test_convert_coco_keeps_people_captions_and_counts_skips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = make_coco(tmp_path / "coco")
    records, counts = convert_coco("coco", "val", relative_to="out")
    assert [r["id"] for r in records] == ["000000000139"]  # 285: small person, 632: no keypoints, 724: none
    rec = records[0]
    assert rec["image"] == "../coco/val2017/000000000139.jpg" and (rec["width"], rec["height"]) == (640, 480)
    assert rec["captions"] == [f"A person standing in a room {k}." for k in range(5)]
    person = rec["people"][0]
    assert person["box"] == [250, 40, 390, 450] and person["num_keypoints"] == 16
    assert person["visible"][skeleton.R_WRIST] == 1 and person["occluded"][skeleton.R_WRIST] == 1
    assert person["joints"][skeleton.R_ANKLE] == [-1, -1] and person["visible"][skeleton.R_ANKLE] == 0
    assert counts.skipped == {"crowd region (iscrowd)": 1, "person below min_area": 1,
                              "person below min_keypoints": 1, "image without a kept person": 3}
    strict, _ = convert_coco(root, "val", visibility="strict")
    assert strict[0]["people"][0]["visible"][skeleton.R_WRIST] == 0
    loose, c2 = convert_coco(root, "val", min_area=0, include_empty=True)
    assert [r["id"] for r in loose] == ["000000000139", "000000000285", "000000000632", "000000000724"]
    assert loose[1]["captions"] == ["A tiny figure far away."] and loose[3]["people"] == []


def test_describers_work_on_coco_records(tmp_path):
    records, _ = convert_coco(make_coco(tmp_path / "coco"), "val")
    text = describe_record(records[0])
    assert text.startswith("There is one person in image.") and "standing" in text
    payload = annotation_payload(records[0])
    assert payload["count"] == 1 and len(payload["people"][0]["keypoints"]) == 16
    assert payload["people"][0]["center"] == [320, 245]


def test_cli_data_coco_writes_splits(tmp_path, capsys):
    root = make_coco(tmp_path / "coco", "val")
    make_coco(root, "train")
    assert main(["data", "coco", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "crowd region (iscrowd): 2" in out and "val records: 1" in out
    recs = read_records(tmp_path / "out" / "train.jsonl")
    assert (tmp_path / "out" / recs[0]["image"]).is_file()
    assert main(["data", "validate", str(tmp_path / "out" / "val.jsonl")]) == 0
    # a second run does not replace what is there unless asked to
    assert main(["data", "coco", "--root", str(root), "--out", str(tmp_path / "out")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["data", "coco", "--root", str(root), "--out", str(tmp_path / "out"), "--overwrite"]) == 0


def test_bad_coco_file_is_one_clear_error(tmp_path):
    root = make_coco(tmp_path / "coco")
    path = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["keypoints"] = [1, 2, 3]
    path.write_text(json.dumps(data))
    with pytest.raises(CocoError, match=r"annotation 0 \(id 1\).*17 x \(x, y, v\)"):
        convert_coco(root, "val")
    assert main(["data", "coco", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1


def test_annotation_of_an_unknown_image_is_counted_not_dropped(tmp_path, capsys):
    """Issue 21 item 7: a person (or caption) whose image_id is not among the images was dropped
    without a number; now it is a skip reason with the ids as examples, in the command's report too."""
    root = make_coco(tmp_path / "coco")
    path = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(path.read_text())
    stray = dict(data["annotations"][0], id=50, image_id=999)
    data["annotations"] += [stray, dict(stray, id=51)]
    path.write_text(json.dumps(data))
    cap_path = root / "annotations" / "captions_val2017.json"
    caps = json.loads(cap_path.read_text())
    caps["annotations"].append({"id": 77, "image_id": 555, "caption": "Nobody's photo."})
    cap_path.write_text(json.dumps(caps))
    records, counts = convert_coco(root, "val")
    assert [r["id"] for r in records] == ["000000000139"]
    assert counts.skipped["person whose image_id is not among the images"] == 2
    assert counts.skipped["caption whose image_id is not among the images"] == 1
    assert counts.examples["person whose image_id is not among the images"] == ["image_id 999"]
    assert main(["data", "coco", "--root", str(root), "--out", str(tmp_path / "out"), "--splits", "val"]) == 0
    out = capsys.readouterr().out
    assert "person whose image_id is not among the images: 2 (e.g. image_id 999)" in out

"""The dataset validator: real broken files (corrupt and truncated JPEGs), bad joints, captions, heatmaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from focusclip.data import validate as V
from focusclip.data.validate import validate_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom"


def _person(n: int = 16, x: float = 10.0) -> dict:
    return {"joints": [[x, 10.0]] * n, "visible": [1] * n}


def write_broken_dataset(root: Path) -> Path:
    """A records folder (train.jsonl + val.jsonl) with one instance of each problem."""
    img = root / "images"
    img.mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(img / "good.jpg", quality=95)
    Image.effect_noise((64, 64), 50).convert("RGB").save(img / "big.jpg", quality=95)
    data = (img / "big.jpg").read_bytes()
    (img / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (img / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    Image.new("L", (40, 30), 128).save(root / "hm.png")
    train = [
        {"image": "images/good.jpg", "id": "ok", "width": 40, "height": 30, "captions": ["fine"],
         "people": [_person()], "heatmap": "hm.png"},
        {"image": "images/missing.jpg", "id": "missing", "captions": ["x"]},
        {"image": "images/truncated.jpg", "id": "trunc", "captions": ["x"]},
        {"image": "images/corrupt.jpg", "id": "corrupt", "captions": ["x"]},
        {"image": "images/good.jpg", "id": "outside", "captions": ["x"], "people": [_person(x=55.0)]},
        {"image": "images/good.jpg", "id": "joints15", "captions": ["x"], "people": [_person(n=15)]},
        {"image": "images/good.jpg", "id": "emptycap", "captions": ["  "]},
        {"image": "images/good.jpg", "id": "nohm", "captions": ["x"], "heatmap": "nope.png"},
        {"image": "images/good.jpg", "id": "nocap"},
        {"image": "images/good.jpg", "id": "ok", "captions": ["dup"], "width": 41, "height": 30},
    ]
    lines = [json.dumps(r) for r in train]
    lines.insert(3, "{not json")
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    (root / "val.jsonl").write_text(json.dumps({"captions": ["no image"]}) + "\n")
    return root


def test_report_counts_each_problem(tmp_path):
    report = validate_dataset(write_broken_dataset(tmp_path / "ds"))
    c = report.counts
    assert report.n_records == 12 and report.n_images_checked == 10
    assert c[V.MISSING_IMAGE] == 1 and c[V.BAD_IMAGE] == 2 and c[V.OUT_OF_IMAGE] == 1
    assert c[V.JOINT_COUNT] == 1 and c[V.EMPTY_CAPTION] == 1 and c[V.MISSING_HEATMAP] == 1
    assert c[V.INVALID] == 2 and c[V.NO_CAPTION] == 1 and c[V.DUPLICATE_ID] == 1 and c[V.SIZE_MISMATCH] == 1
    assert report.n_errors == 8 and report.n_warnings == 4 and not report.ok
    bad = {i.id for i in report.examples[V.BAD_IMAGE]}
    assert bad == {"trunc", "corrupt"}
    where = {i.id: i.where for i in report.examples[V.BAD_IMAGE]}
    assert where["trunc"].endswith("train.jsonl:3") and where["corrupt"].endswith("train.jsonl:5")
    assert report.examples[V.INVALID][0].where.endswith("train.jsonl:4")
    assert report.examples[V.INVALID][1].where.endswith("val.jsonl:1")
    text = report.format()
    assert "unreadable or truncated image: 2" in text and "[trunc]" in text and "ERRORS" in text
    assert json.loads(json.dumps(report.to_dict()))["problems"][V.BAD_IMAGE]["count"] == 2


def test_require_captions_and_skip_image_checks(tmp_path):
    root = write_broken_dataset(tmp_path / "ds")
    report = validate_dataset(root / "train.jsonl", check_images=False, require_captions=True, workers=1)
    assert report.severities[V.NO_CAPTION] == V.ERROR
    assert V.BAD_IMAGE not in report.counts and report.counts[V.MISSING_IMAGE] == 1
    assert report.n_images_checked == 0


def test_example_dataset_and_record_lists_are_clean(tmp_path):
    for name in ("data.csv", "data.jsonl"):
        report = validate_dataset(EXAMPLE / name, require_captions=True)
        assert report.ok and report.n_warnings == 0 and report.n_records == 3, report.format()
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    records = [{"image": "a.png", "captions": ["x"], "people": [_person(x=5.0)]}]
    assert validate_dataset(records, root=tmp_path).ok
    assert not validate_dataset([{"image": "a.png", "captions": "x"}], root=tmp_path).ok


def test_custom_file_rows_with_errors_are_all_reported(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "a.jpg")
    (tmp_path / "d.csv").write_text("image,caption,keypoints\na.jpg,x,\"[[1, 2]]\"\n,y,\nb.jpg,z,\na.jpg,w,\n")
    report = validate_dataset(tmp_path / "d.csv")
    assert report.counts[V.JOINT_COUNT] == 1 and report.counts[V.INVALID] == 1
    assert report.counts[V.MISSING_IMAGE] == 1 and report.n_records == 4
    assert report.examples[V.INVALID][0].where.endswith("d.csv:3")


def test_cli_validate(tmp_path, capsys):
    from focusclip.cli import main

    root = write_broken_dataset(tmp_path / "ds")
    assert main(["data", "validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "missing image file: 1" in out and "train.jsonl:2 [missing]" in out
    assert main(["data", "validate", str(EXAMPLE / "data.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.jsonl / val.jsonl"):
        validate_dataset(tmp_path)


def test_malformed_people_are_reported_not_crashes(tmp_path):
    from focusclip.data.records import RecordError, validate_record

    for people, match in (([[1, 2]], "people\\[0\\] must be an object"), ({"joints": []}, "must be a list"),
                          ([{"joints": [1] * 16}], "pairs of numbers"),
                          ([{"joints": [[None, None]] * 16}], "pairs of numbers")):
        with pytest.raises(RecordError, match=match):
            validate_record({"image": "a.jpg", "people": people}, "f.jsonl:1")
    Image.new("RGB", (20, 20)).save(tmp_path / "a.jpg")
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"image": "a.jpg", "captions": ["x"], "people": [{"joints": [[None, None]] * 16}]}) + "\n")
    report = validate_dataset(tmp_path / "train.jsonl")
    assert not report.ok and report.n_errors == 1

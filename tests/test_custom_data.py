"""Custom CSV/JSONL data -> records, including the shipped example and rows with errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focusclip.data.custom import CustomDataError
from focusclip.data.records import RecordError, read_records
from focusclip.data.sources import read_dataset_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom"
STAND = [[56, 90], [57, 75], [58, 60], [70, 60], [71, 75], [72, 90], [64, 60], [64, 34], [64, 28],
         [64, 14], [50, 56], [53, 45], [56, 34], [72, 34], [75, 45], [78, 56]]


def load_custom(path: Path) -> list[dict]:
    return read_dataset_file(path)[0]


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["data.csv", "data.jsonl"])
def test_shipped_example_loads_the_same_from_csv_and_jsonl(name):
    records = load_custom(EXAMPLE / name)
    assert [r["image"] for r in records] == ["images/standing.jpg", "images/two_people.jpg", "images/legs_hidden.jpg"]
    assert all((EXAMPLE / r["image"]).is_file() for r in records)
    assert records[0]["captions"] == ["A person stands upright with arms at their sides.", "One person is standing still."]
    assert records[0]["labels"] == {"activity": "standing", "age": "adult"}
    assert len(records[1]["people"]) == 2 and records[1]["boxes"] == [[20.0, 8.0, 56.0, 94.0], [70.0, 4.0, 110.0, 94.0]]
    hidden = records[2]["people"][0]
    assert hidden["visible"][:2] == [0, 0] and hidden["joints"][0] == [-1.0, -1.0] and hidden["visible"][2] == 1
    assert records[2]["heatmap"] == "heatmaps/legs_hidden.png" and records[2]["split"] == "val"


def test_csv_forms(tmp_path):
    kp = json.dumps([[[1, 2]] * 16, [None] + [[3, 4, 0]] * 15])
    path = _csv(tmp_path / "d.csv",
                "image,caption,captions,keypoints,boxes,label_emotion,notes\n"
                f"a.jpg,First.,\"[\"\"x\"\", \"\"y\"\"]\",\"{json.dumps(STAND).replace(chr(34), chr(34) * 2)}\",,happy,hello\n"
                f"b.jpg,,p | q |,\"{kp.replace(chr(34), chr(34) * 2)}\",\"[1, 2, 5, 6]\",,\n")
    recs = load_custom(path)
    assert recs[0]["captions"] == ["First.", "x", "y"]
    assert recs[0]["people"][0]["joints"][9] == [64.0, 14.0] and recs[0]["labels"] == {"emotion": "happy"}
    assert recs[0]["meta"] == {"notes": "hello"}
    assert recs[1]["captions"] == ["p", "q"]
    assert [p["visible"] for p in recs[1]["people"]] == [[1] * 16, [0] * 16]  # null and v=0 are invisible
    assert recs[1]["boxes"] == [[1.0, 2.0, 5.0, 6.0]] and "labels" not in recs[1]


@pytest.mark.parametrize(("row", "message"), [
    (",cap,,", r"d.csv:3: missing 'image'"),
    ("c.jpg,cap,\"[[1, 2]]\",", r"d.csv:3: 'keypoints' person 0 has 1 joints; expected JSON 16 x \[x, y\]"),
    ("c.jpg,cap,\"[[1, 2\",", r"d.csv:3: 'keypoints' is not valid JSON"),
    ("c.jpg,cap,,\"[[5, 5, 1, 1]]\"", r"d.csv:3: 'boxes' box 0 is \[5, 5, 1, 1\]; expected .*x2 > x1"),
    ("c.jpg,cap,,,extra", r"d.csv:3: more cells than header columns"),
])
def test_csv_errors_name_file_line_and_expectation(tmp_path, row, message):
    path = _csv(tmp_path / "d.csv", "image,caption,keypoints,boxes\nok.jpg,fine,,\n" + row + "\n")
    with pytest.raises(CustomDataError, match=message):
        load_custom(path)


def test_jsonl_errors_and_missing_header(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"image": "a.jpg", "caption": "x"}\n\n{"image": "b.jpg", "captions": 5}\n')
    with pytest.raises(CustomDataError, match=r"d.jsonl:3: 'captions' must be a list of strings"):
        load_custom(p)
    p.write_text('{"image": "a.jpg"}\n[1, 2]\n')
    with pytest.raises(RecordError, match=r"d.jsonl:2: expected a JSON object, got list"):
        load_custom(p)
    bad = _csv(tmp_path / "h.csv", "file,caption\na.jpg,x\n")
    with pytest.raises(CustomDataError, match=r"h.csv:1: the header must have an 'image' column"):
        load_custom(bad)
    with pytest.raises(ValueError, match="expected a .jsonl or .csv"):
        load_custom(_csv(tmp_path / "x.txt", "image\n"))


def test_read_dataset_file_tells_records_from_custom_jsonl(tmp_path):
    records, root = read_dataset_file(EXAMPLE / "data.jsonl")
    assert root == EXAMPLE and records[0]["captions"][0].startswith("A person stands")
    rec_file = tmp_path / "train.jsonl"
    rec_file.write_text(json.dumps({"image": "a.jpg", "captions": ["x"], "people": []}) + "\n")
    records, root = read_dataset_file(rec_file)
    assert records == read_records(rec_file) and root == tmp_path

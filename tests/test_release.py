"""Released MPII Pose Descriptions: loading, joining, records, the paper's LLM/split setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focusclip.data.release import (
    PAPER_SETTING,
    available,
    join_descriptions,
    load_descriptions,
    paper_records,
    release_to_records,
)


def _person(pid: int, shift: float, vis: list[int] | None = None) -> dict:
    p = {"id": pid, "center": [100.0 + shift, 80.0], "scale": 1.7,
         "kpts": [[10.0 + j + shift, 20.0 + j] if (vis is None or vis[j]) else [-1, -1] for j in range(16)]}
    if vis is not None:
        p["kpts_vis"] = vis
    return p


def write_release(root: Path) -> Path:
    """A release folder for two LLMs in the published layout (one JSON list per LLM and split)."""
    vis = [1] * 16
    vis[3] = 0
    gpt4_train = [
        {"image": "000000001.jpg", "video_id": "vidA", "video_frame": 12, "activity_id": 7,
         "activity": "bicycling, mountain", "count": 2, "people": [_person(0, 0, vis), _person(1, 50)],
         "description": "There are two people in image who are riding bicycles."},
        {"image": "000000002.jpg", "activity_id": -1, "count": 1, "people": [_person(0, 5)],
         "description": "There is one person in image who is standing."},
        {"image": "000000003.jpg", "description": ""},  # no text
    ]
    gpt35_train = [
        {"image": "000000001.jpg", "description": "Two cyclists ride."},
        {"image": "000000004.jpg", "activity": {"category": "sports", "name": "curling"},
         "description": "A person slides a stone."},
    ]
    gpt35_val = [
        {"image": "000000009.jpg", "activity": {"category": "dancing", "name": "ballet", "id": 3},
         "people": [_person(0, 0)], "description": "A dancer stands on one leg."},
    ]
    for llm, split, entries in [("gpt-4-0613", "train", gpt4_train), ("gpt-3.5-turbo-0613", "train", gpt35_train),
                                ("gpt-3.5-turbo-0613", "val", gpt35_val)]:
        (root / llm).mkdir(parents=True, exist_ok=True)
        (root / llm / f"{split}.json").write_text(json.dumps(entries, indent=1))
    return root


@pytest.fixture()
def release(tmp_path):
    return write_release(tmp_path / "mpii-pose-descriptions")


def test_load_descriptions_keeps_llm_order_and_skips_empty(release):
    d = load_descriptions(release, ["gpt-4-0613", "gpt-3.5-turbo-0613"], split="train")
    assert [x["llm"] for x in d["000000001.jpg"]] == ["gpt-4-0613", "gpt-3.5-turbo-0613"]
    assert d["000000001.jpg"][1]["text"] == "Two cyclists ride."
    assert "000000003.jpg" not in d
    assert d["000000004.jpg"] == [{"llm": "gpt-3.5-turbo-0613", "text": "A person slides a stone."}]


def test_missing_llm_split_is_an_error_listing_what_exists(release):
    # GPT-4 has no val split in the release: never fall back to GPT-3.5 silently
    with pytest.raises(FileNotFoundError) as e:
        load_descriptions(release, ["gpt-4-0613"], split="val")
    msg = str(e.value)
    assert "gpt-4-0613" in msg and "gpt-3.5-turbo-0613/val" in msg and "gpt-4-0613/train" in msg
    assert available(release) == ["gpt-3.5-turbo-0613/train", "gpt-3.5-turbo-0613/val", "gpt-4-0613/train"]


def test_join_all_one_and_missing(release):
    records = [{"image": "../images/000000001.jpg", "meta": {"name": "000000001.jpg"}},
               {"image": "images/000000002.jpg"},
               {"image": "images/000000777.jpg"}]
    d = load_descriptions(release, ["gpt-4-0613", "gpt-3.5-turbo-0613"], split="train")
    joined, stats = join_descriptions(records, d, mode="all")
    assert stats["joined"] == 2 and stats["missing"] == 1 and stats["missing_examples"] == ["000000777.jpg"]
    assert len(joined) == 2
    assert joined[0]["captions"] == ["There are two people in image who are riding bicycles.", "Two cyclists ride."]
    assert joined[0]["caption_sources"] == ["gpt-4-0613", "gpt-3.5-turbo-0613"]
    one, _ = join_descriptions(records, d, mode="one", drop_missing=False)
    assert len(one) == 3 and one[0]["captions"] == ["There are two people in image who are riding bicycles."]
    assert "captions" not in one[2]
    assert "captions" not in records[0]  # inputs are not modified


def test_release_to_records(release, tmp_path):
    recs = release_to_records(release, "gpt-4-0613", "train", "images", relative_to="data/out")
    assert [r["id"] for r in recs] == ["000000001", "000000002", "000000003"]
    r0 = recs[0]
    assert r0["image"] == "../../images/000000001.jpg" and r0["split"] == "train"
    assert r0["activity"] == {"id": 7, "name": "bicycling, mountain", "category": None}
    assert r0["meta"] == {"name": "000000001.jpg", "video_id": "vidA", "video_frame": 12, "count": 2}
    assert len(r0["people"]) == 2
    p0 = r0["people"][0]
    assert p0["joints"][3] == [-1.0, -1.0] and p0["visible"][3] == 0 and p0["visible"][4] == 1
    assert p0["joints"][4] == [14.0, 24.0] and p0["center"] == [100.0, 80.0] and p0["scale"] == 1.7
    assert r0["people"][1]["visible"] == [1] * 16  # no kpts_vis: derived from coordinates
    assert recs[1]["activity"]["id"] is None
    assert recs[2]["captions"] == [] and recs[2]["people"] == []
    assert r0["captions"] and r0["caption_sources"] == ["gpt-4-0613"]


def test_paper_setting_uses_gpt4_train_and_gpt35_val(release):
    assert PAPER_SETTING == {"train": "gpt-4-0613", "val": "gpt-3.5-turbo-0613"}
    recs = paper_records(release, "/data/mpii/images")
    assert {r["caption_sources"][0] for r in recs["train"] if r["captions"]} == {"gpt-4-0613"}
    assert recs["val"][0]["caption_sources"] == ["gpt-3.5-turbo-0613"]
    assert recs["val"][0]["image"] == "/data/mpii/images/000000009.jpg"
    assert recs["val"][0]["activity"] == {"id": 3, "name": "ballet", "category": "dancing"}


def test_bad_release_entries(tmp_path):
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "train.json").write_text(json.dumps([{"description": "x"}]))
    with pytest.raises(ValueError, match=r"train.json: entry 0 has no 'image'"):
        load_descriptions(tmp_path, "llm")
    (tmp_path / "llm" / "train.json").write_text(json.dumps([{"image": "a.jpg", "people": [{"kpts": [[1, 2]] * 15}]}]))
    with pytest.raises(ValueError, match=r"entry 0 \(a.jpg\) people\[0\]: 'kpts' must be 16"):
        release_to_records(tmp_path, "llm", "train", "images")


def test_cli_release_writes_paper_setting(release, tmp_path, capsys):
    from focusclip.cli import main
    from focusclip.data.records import read_records

    out = tmp_path / "out"
    assert main(["data", "release", "--root", str(release), "--images", str(tmp_path / "images"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train: 3 records from gpt-4-0613 (1 without a description)" in printed
    assert [r["caption_sources"] for r in read_records(out / "val.jsonl")] == [["gpt-3.5-turbo-0613"]]
    assert main(["data", "release", "--root", str(release), "--images", "images", "--out", str(out),
                 "--val-llm", "gpt-4-0613"]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err  # never replaces earlier output silently
    assert main(["data", "release", "--root", str(release), "--images", "images", "--out", str(out),
                 "--val-llm", "gpt-4-0613", "--overwrite"]) == 1
    assert "gpt-4-0613" in capsys.readouterr().err

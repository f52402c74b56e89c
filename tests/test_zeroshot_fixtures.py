"""The zero-shot benchmark loaders, on tiny fixtures in each dataset's distributed layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark_layouts import (
    EMOTIC_PEOPLE,
    FAIRFACE_AGES,
    FAIRFACE_RACES,
    FER_KEYS,
    LEVELS,
    STANFORD_ACTIONS,
    SYNTH_CLASSES,
    write_cub,
    write_emotic,
    write_fairface,
    write_fer2013,
    write_ferplus,
    write_kinetics400,
    write_lagenda,
    write_stanford40,
    write_synthetic,
    write_utkface,
)
from focusclip.zeroshot.datasets import DatasetAbsent, DatasetLayoutError, load_benchmark
from focusclip.zeroshot.images import open_sample


# ========================================================================================= tests
def _labels(loaded) -> list[tuple[str, ...]]:
    return [s.labels for s in loaded.samples]


def test_stanford40_reads_test_split_and_class_order(tmp_path):
    write_stanford40(tmp_path)
    d = load_benchmark("stanford40", tmp_path, "test")
    assert d.classes == STANFORD_ACTIONS  # actions.txt order, header dropped
    assert len(d.samples) == 8 and all(s.box is None for s in d.samples)
    assert {s.labels[0] for s in d.samples} == set(STANFORD_ACTIONS)
    assert not any(s.id.endswith("_001.jpg") for s in d.samples)  # train images excluded


def test_stanford40_crop_uses_the_xml_person_box(tmp_path):
    write_stanford40(tmp_path)
    d = load_benchmark("stanford40", tmp_path, "test", crop=True)
    s = next(s for s in d.samples if s.id == "cooking_002.jpg")
    assert s.box == (12.0, 8.0, 42.0, 40.0)
    assert open_sample(s).size == (30, 32)


def test_kinetics_reads_videos_frames_and_counts_missing_clips(tmp_path):
    write_kinetics400(tmp_path)
    d = load_benchmark("kinetics400", tmp_path, "test")
    assert d.classes == ["abseiling", "air drumming", "playing bagpipes"]
    assert len(d.samples) == 4 and d.skipped == {"missing clip": 1}
    pix = {s.id: int(np.median(np.asarray(open_sample(s))[..., 0])) for s in d.samples}
    assert abs(pix["aaa_000010_000020"] - LEVELS[0]) < 8  # the middle frame of the mp4
    assert abs(pix["bbb_000000_000010"] - LEVELS[1]) < 8  # the middle extracted frame
    first = load_benchmark("kinetics400", tmp_path, "test", frame="first").samples[0]
    assert int(np.median(np.asarray(open_sample(first)))) < 10


def test_kinetics_videos_without_pyav_fail_with_a_clear_error(tmp_path, monkeypatch):
    from focusclip.zeroshot.datasets import actions

    write_kinetics400(tmp_path)
    monkeypatch.setattr(actions, "have_pyav", lambda: False)
    with pytest.raises(ValueError, match="pip install av"):
        load_benchmark("kinetics400", tmp_path, "test")
    for p in (tmp_path / "test").glob("*.m*"):  # frames only: no PyAV needed
        p.unlink()
    assert len(load_benchmark("kinetics400", tmp_path, "test").samples) == 2


@pytest.mark.parametrize("layout", ["mat", "csv"])
def test_emotic_people_crops_and_labels(tmp_path, layout):
    write_emotic(tmp_path, layout)
    emo = load_benchmark("emotic", tmp_path, "test", target="emotion")
    assert [set(lab) for lab in _labels(emo)] == [set(p[2]) for p in EMOTIC_PEOPLE]
    age = load_benchmark("emotic", tmp_path, "test", target="age")
    assert [lab[0] for lab in _labels(age)] == ["adult", "kid", "teenager", "adult"]
    assert emo.samples[1].box == (34.0, 4.0, 60.0, 40.0)
    assert int(np.median(np.asarray(open_sample(emo.samples[1])))) == LEVELS[1]


def test_lagenda_bins_and_skips_missing_boxes_and_ages(tmp_path):
    write_lagenda(tmp_path)
    body = load_benchmark("lagenda", tmp_path, "all", crop="body")
    face = load_benchmark("lagenda", tmp_path, "all", crop="face")
    assert [s.labels[0] for s in body.samples] == ["kid", "kid", "teenager", "teenager", "adult", "adult"]
    assert body.skipped == {"no age": 1, "no body box": 1}
    assert len(face.samples) == 6 and face.skipped == {"no age": 1, "no face box": 1}
    assert face.samples[0].box == (16.0, 6.0, 30.0, 20.0)


def test_utkface_bins_and_counts_malformed_names(tmp_path):
    write_utkface(tmp_path)
    d = load_benchmark("utkface", tmp_path, "all")
    assert d.skipped == {"malformed name": 2}
    got = sorted((int(Path(s.id).name.split("_")[0]), s.labels[0]) for s in d.samples)
    assert got == [(1, "baby"), (2, "baby"), (3, "child"), (9, "child"), (10, "teenager"), (19, "teenager"),
                   (20, "young adult"), (29, "young adult"), (30, "adult"), (85, "adult")]


def test_fairface_race_and_age_from_val_csv(tmp_path):
    write_fairface(tmp_path)
    race = load_benchmark("fairface", tmp_path, "val", attribute="race")
    assert [s.labels[0] for s in race.samples] == FAIRFACE_RACES
    assert race.samples[0].source == tmp_path / "fairface-img-margin025-trainval/val/1.jpg"
    assert [s.labels[0] for s in load_benchmark("fairface", tmp_path, "val", attribute="age").samples] == FAIRFACE_AGES


def test_fer2013_csv_never_reads_training_rows(tmp_path):
    write_fer2013(tmp_path)
    d = load_benchmark("fer2013", tmp_path, "test")
    assert len(d.samples) == 14
    assert sorted({s.labels[0] for s in d.samples}) == sorted(FER_KEYS)
    assert d.samples[0].source.shape == (48, 48)
    assert len(load_benchmark("fer2013", tmp_path, "PrivateTest").samples) == 7


def test_fer2013_image_folders(tmp_path):
    write_fer2013(tmp_path, "folders")
    d = load_benchmark("fer2013", tmp_path, "test")
    assert len(d.samples) == 14 and d.samples[0].labels == ("angry",)


def test_ferplus_majority_vote_drops_unknown_noface_ties(tmp_path):
    write_ferplus(tmp_path)
    d = load_benchmark("ferplus", tmp_path, "PrivateTest")
    assert [s.labels[0] for s in d.samples] == ["happy", "contempt", "neutral", "sad"]
    assert sum(d.skipped.values()) == 4
    strict = load_benchmark("ferplus", tmp_path, "PrivateTest", vote="majority")
    assert [s.labels[0] for s in strict.samples] == ["happy", "contempt", "neutral"]  # 5 of 10 is no majority


def test_ferplus_finds_fer2013_in_the_sibling_root_or_an_explicit_option(tmp_path, capsys):
    from focusclip.cli import main

    data = tmp_path / "data"
    write_ferplus(data / "ferplus")
    (data / "fer2013").mkdir()
    (data / "ferplus" / "fer2013.csv").rename(data / "fer2013" / "fer2013.csv")
    want = ["happy", "contempt", "neutral", "sad"]
    assert [s.labels[0] for s in load_benchmark("ferplus", data / "ferplus", "PrivateTest").samples] == want
    elsewhere = tmp_path / "downloads" / "kaggle.csv"
    elsewhere.parent.mkdir()
    (data / "fer2013" / "fer2013.csv").rename(elsewhere)
    with pytest.raises(DatasetLayoutError) as e:
        load_benchmark("ferplus", data / "ferplus", "PrivateTest")
    for place in (data / "ferplus" / "fer2013.csv", data / "ferplus" / "fer2013" / "fer2013.csv",
                  data / "fer2013" / "fer2013.csv"):
        assert str(place) in str(e.value)
    assert "ferplus.fer2013_csv" in str(e.value)
    got = load_benchmark("ferplus", data / "ferplus", "PrivateTest", fer2013_csv=elsewhere)
    assert [s.labels[0] for s in got.samples] == want
    # the same option from the command line
    assert main(["eval", "--model", "focusclip-tiny", "--tasks", "ferplus", "--data-root", str(data / "{dataset}"),
                 "--out", str(tmp_path / "r.json"), "--workers", "0", "--device", "cpu", "--no-confusion",
                 "--dataset-option", f"ferplus.fer2013_csv={elsewhere}"]) == 0
    assert "ferplus" in capsys.readouterr().out


def test_cub_test_split_clean_names_and_boxes(tmp_path):
    write_cub(tmp_path)
    d = load_benchmark("cub", tmp_path, "test")
    assert d.classes == ["Black footed Albatross", "Laysan Albatross", "Cardinal"]
    assert len(d.samples) == 6
    c = load_benchmark("cub", tmp_path / "CUB_200_2011", "test", crop=True)
    assert c.samples[0].box == (4.0, 2.0, 60.0, 46.0)
    assert int(np.median(np.asarray(open_sample(c.samples[0])))) == LEVELS[1]


def test_synthetic_records_and_class_lists(tmp_path):
    write_synthetic(tmp_path)
    d = load_benchmark("synthetic", tmp_path, "eval", attribute="expression")
    assert d.classes == SYNTH_CLASSES["expression"]
    assert [s.labels[0] for s in d.samples] == ["happy", "sad", "neutral", "happy", "sad"]


@pytest.mark.parametrize("name", ["stanford40", "kinetics400", "emotic", "lagenda", "fairface", "fer2013",
                                  "ferplus", "cub", "synthetic"])
def test_wrong_root_names_the_expected_files(tmp_path, name):
    (tmp_path / "empty").mkdir()
    split = {"stanford40": "test", "kinetics400": "test", "emotic": "test", "lagenda": "all",
             "fairface": "val", "fer2013": "test", "ferplus": "PrivateTest", "cub": "test", "synthetic": "eval"}
    with pytest.raises(DatasetLayoutError, match="expected") as e:
        load_benchmark(name, tmp_path / "empty", split[name])
    assert str(tmp_path / "empty") in str(e.value)


def test_absent_root_is_reported_as_absent(tmp_path):
    with pytest.raises(DatasetAbsent):
        load_benchmark("utkface", tmp_path / "nope", "all")

"""The built-in synthetic world: poses, rendering, records on disk, determinism and the CLI."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focusclip.cli import main
from focusclip.data.records import read_records, resolve_image, validate_record
from focusclip.data.synthetic import (
    ACTIVITIES,
    ACTIVITY_CATEGORIES,
    AGE_GROUPS,
    EXPRESSIONS,
    contact_sheet,
    forward_kinematics,
    generate_world,
    render_sample,
    sample_pose,
    sample_proportions,
    sample_rng,
)
from focusclip.skeleton import (
    HEAD_TOP,
    L_ANKLE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    PELVIS,
    R_ANKLE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    THORAX,
    UPPER_NECK,
)

SIZE = 96  # small images keep the tests fast; geometry scales with the size


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "world"
    info = generate_world(out, n=40, seed=7, image_size=SIZE, eval_n=24, workers=1, show_progress=False)
    assert info["train"] + info["val"] == 40 and info["eval"] == 24
    return out


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------ poses
def _poses(activity: str, age: str = "adult", n: int = 25) -> list[np.ndarray]:
    out = []
    for i in range(n):
        rng = np.random.default_rng([11, i])
        props = sample_proportions(rng, age)
        pose = sample_pose(rng, activity, props)
        out.append((pose, forward_kinematics(pose, props)))
    return out


def _angle_from_vertical(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) between segment a->b and the vertical."""
    d = b - a
    return math.degrees(math.atan2(abs(d[0]), abs(d[1])))


def _bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Bend at b in degrees (0 = straight)."""
    u, v = b - a, c - b
    cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def test_forward_kinematics_keeps_segment_lengths() -> None:
    rng = np.random.default_rng(0)
    props = sample_proportions(rng, "adult")
    for activity in ACTIVITIES:
        pose = sample_pose(rng, activity, props)
        j = forward_kinematics(pose, props, height=100.0)
        assert j.shape == (16, 2)
        assert np.allclose(j[PELVIS], 0)
        assert np.linalg.norm(j[THORAX] - j[PELVIS]) == pytest.approx(100 * props.torso)
        assert np.linalg.norm(j[HEAD_TOP] - j[UPPER_NECK]) == pytest.approx(100 * props.head)
        assert np.linalg.norm(j[R_KNEE] - j[R_HIP]) == pytest.approx(100 * props.thigh)
        assert np.linalg.norm(j[L_WRIST] - j[14]) == pytest.approx(100 * props.forearm)


@pytest.mark.parametrize("activity", ["standing", "waving", "cheering", "walking"])
def test_upright_activities_have_vertical_torso_and_head_on_top(activity: str) -> None:
    for _, j in _poses(activity):
        assert _angle_from_vertical(j[PELVIS], j[THORAX]) < 10
        assert j[HEAD_TOP, 1] < j[UPPER_NECK, 1] < j[THORAX, 1] < j[PELVIS, 1]


def test_activity_poses_are_distinctive() -> None:
    for _, j in _poses("lying down"):  # horizontal torso
        assert _angle_from_vertical(j[PELVIS], j[THORAX]) > 80
    for _, j in _poses("doing push-ups"):  # body near horizontal, straight arms down to the ground
        assert _angle_from_vertical(j[PELVIS], j[THORAX]) > 55
        for s, e, w in ((R_SHOULDER, 11, R_WRIST), (L_SHOULDER, 14, L_WRIST)):
            assert j[w, 1] > j[s, 1] and _bend(j[s], j[e], j[w]) <= 21
        hands, feet = max(j[R_WRIST, 1], j[L_WRIST, 1]), max(j[R_ANKLE, 1], j[L_ANKLE, 1])
        assert abs(hands - feet) < 0.06
    for _, j in _poses("cheering"):  # both wrists above the head's base
        assert j[R_WRIST, 1] < j[UPPER_NECK, 1] and j[L_WRIST, 1] < j[UPPER_NECK, 1]
    for _, j in _poses("waving"):  # exactly one hand up
        up = [j[w, 1] < j[s, 1] for s, w in ((R_SHOULDER, R_WRIST), (L_SHOULDER, L_WRIST))]
        assert sum(up) == 1
    for _, j in _poses("standing"):  # hands down, legs straight
        assert j[R_WRIST, 1] > j[R_SHOULDER, 1] and j[L_WRIST, 1] > j[L_SHOULDER, 1]
        assert _bend(j[R_HIP], j[R_KNEE], j[R_ANKLE]) < 10
    for _, j in _poses("squatting"):  # deep knee bend
        assert _bend(j[R_HIP], j[R_KNEE], j[R_ANKLE]) > 100
        assert _bend(j[L_HIP], j[L_KNEE], j[L_ANKLE]) > 100
    for pose, j in _poses("sitting"):  # thighs horizontal, on a chair
        assert pose.prop == "chair"
        assert _angle_from_vertical(j[R_HIP], j[R_KNEE]) > 70
        assert _angle_from_vertical(j[L_HIP], j[L_KNEE]) > 70
    for _, j in _poses("kicking"):  # one leg raised forward
        thighs = [_angle_from_vertical(j[h], j[k]) for h, k in ((R_HIP, R_KNEE), (L_HIP, L_KNEE))]
        assert max(thighs) > 60 and min(thighs) < 15
    for _, j in _poses("bending over"):  # torso forward > 60 degrees
        assert _angle_from_vertical(j[PELVIS], j[THORAX]) > 60
    for pose, j in _poses("jumping"):  # in the air, knees bent, arms up
        assert pose.lift > 0.1
        assert _bend(j[R_HIP], j[R_KNEE], j[R_ANKLE]) > 45
        assert j[R_WRIST, 1] < j[R_SHOULDER, 1] and j[L_WRIST, 1] < j[L_SHOULDER, 1]
    for _, j in _poses("running"):  # forward lean, bent knees and elbows
        assert 10 < _angle_from_vertical(j[PELVIS], j[THORAX]) < 27


def test_age_groups_differ_in_proportions() -> None:
    rng = np.random.default_rng(3)
    heads = {age: np.mean([sample_proportions(rng, age).head for _ in range(20)]) for age in AGE_GROUPS}
    legs = {age: np.mean([sample_proportions(rng, age).thigh for _ in range(20)]) for age in AGE_GROUPS}
    assert heads["kid"] > heads["teenager"] > heads["adult"]
    assert legs["kid"] < legs["teenager"] < legs["adult"]


# ---------------------------------------------------------------------------------- rendering
def test_render_sample_labels_and_people() -> None:
    for i in range(12):
        s = render_sample(
            sample_rng(5, 0, i), image_size=SIZE, activity=ACTIVITIES[i], age="kid", expression="sad"
        )
        assert s.image.size == (SIZE, SIZE) and s.image.mode == "RGB"
        assert s.labels == {"activity": ACTIVITIES[i], "age": "kid", "expression": "sad"}
        assert 1 <= len(s.people) <= 2  # distractor figures are never annotated
        assert float(np.asarray(s.image, dtype=np.float32).std()) > 10  # not blank


def test_expression_is_drawn_on_the_face_of_the_annotated_people() -> None:
    """Same seed, different expression: pixels change only inside the annotated people's head boxes."""
    size = 224
    for i in range(4):
        a = render_sample(sample_rng(2, 0, i), image_size=size, expression="happy")
        b = render_sample(sample_rng(2, 0, i), image_size=size, expression="surprised")
        diff = np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).max(axis=2)
        assert diff.max() > 60
        inside = np.zeros_like(diff, dtype=bool)
        for person in a.people:
            x1, y1, x2, y2 = person["head_box"]
            inside[max(int(y1) - 1, 0) : int(y2) + 2, max(int(x1) - 1, 0) : int(x2) + 2] = True
        assert diff[~inside].max() == 0
        x1, y1, x2, y2 = a.people[0]["head_box"]
        assert y2 - y1 >= 16  # the main subject's face is big enough to read at 224 px


def test_render_sample_rejects_unknown_classes() -> None:
    with pytest.raises(ValueError, match="flying"):
        render_sample(np.random.default_rng(0), activity="flying")
    with pytest.raises(ValueError, match="elderly"):
        render_sample(np.random.default_rng(0), age="elderly")


# ------------------------------------------------------------------------------------ the world
def test_world_files_and_classes(world: Path) -> None:
    assert json.loads((world / "classes.json").read_text()) == {
        "activity": list(ACTIVITIES),
        "age": list(AGE_GROUPS),
        "expression": list(EXPRESSIONS),
    }
    for name in ("train.jsonl", "val.jsonl", "eval.jsonl", "world.json"):
        assert (world / name).is_file()
    n_images = len(list((world / "images").glob("*.jpg")))
    assert n_images == 40 + 24


def test_records_follow_the_schema(world: Path) -> None:
    for split in ("train", "val", "eval"):
        records = read_records(world / f"{split}.jsonl")  # validates every line
        assert records
        for rec in records:
            where = rec["id"]
            validate_record(rec, where)
            assert rec["split"] == split and rec["width"] == rec["height"] == SIZE
            assert "captions" not in rec
            act = rec["activity"]
            assert ACTIVITIES[act["id"]] == act["name"] == rec["labels"]["activity"]
            assert act["category"] == ACTIVITY_CATEGORIES[act["name"]]
            assert rec["labels"]["age"] in AGE_GROUPS and rec["labels"]["expression"] in EXPRESSIONS
            assert 1 <= len(rec["people"]) <= 2
            with Image.open(resolve_image(rec, world)) as im:
                assert im.size == (SIZE, SIZE)
            for person in rec["people"]:
                assert len(person["joints"]) == 16 and len(person["visible"]) == 16
                assert person["scale"] > 0 and len(person["center"]) == 2
                x1, y1, x2, y2 = person["box"]
                assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
                assert sum(person["visible"]) >= 2
                for (x, y), v in zip(person["joints"], person["visible"]):
                    assert v in (0, 1)
                    if v:
                        assert 0 <= x < SIZE and 0 <= y < SIZE, where
                        assert x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1, where
                    else:
                        assert [x, y] == [-1, -1], where


def test_class_coverage_and_balance(world: Path) -> None:
    train = read_records(world / "train.jsonl") + read_records(world / "val.jsonl")
    counts = {a: 0 for a in ACTIVITIES}
    for rec in train:
        counts[rec["labels"]["activity"]] += 1
    assert min(counts.values()) >= 3 and max(counts.values()) <= 4  # 40 images over 12 activities
    every = train + read_records(world / "eval.jsonl")
    assert {r["labels"]["age"] for r in every} == set(AGE_GROUPS)
    assert {r["labels"]["expression"] for r in every} == set(EXPRESSIONS)
    assert {r["labels"]["activity"] for r in read_records(world / "eval.jsonl")} == set(ACTIVITIES)


def test_val_split_and_eval_are_disjoint_from_train(world: Path) -> None:
    train = read_records(world / "train.jsonl")
    val = read_records(world / "val.jsonl")
    ev = read_records(world / "eval.jsonl")
    assert len(val) == 4 and len(train) == 36
    names = [{r["image"] for r in recs} for recs in (train, val, ev)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    digest = {
        split: {hashlib.sha256(resolve_image(r, world).read_bytes()).hexdigest() for r in recs}
        for split, recs in (("train", train + val), ("eval", ev))
    }
    assert len(digest["train"]) == 40 and len(digest["eval"]) == 24
    assert not digest["train"] & digest["eval"]


def test_deterministic_across_runs_and_worker_counts(world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_world(again, n=40, seed=7, image_size=SIZE, eval_n=24, workers=2, show_progress=False)
    assert _files(again) == _files(world)
    other = tmp_path / "other"
    generate_world(other, n=40, seed=8, image_size=SIZE, eval_n=24, workers=1, show_progress=False)
    assert (other / "train.jsonl").read_bytes() != (world / "train.jsonl").read_bytes()


def test_generate_world_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_world(tmp_path, n=0, seed=0)
    with pytest.raises(ValueError, match="image_size"):
        generate_world(tmp_path, n=4, seed=0, image_size=8)


def test_contact_sheet(world: Path, tmp_path: Path) -> None:
    records = read_records(world / "train.jsonl")
    path = contact_sheet(records, world, tmp_path / "sheet.png", n=6, skeleton=True)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] == 4 * 192 and im.size[1] == 2 * (192 + 28)
    with pytest.raises(FileNotFoundError, match=records[0]["id"]):
        contact_sheet(records, tmp_path / "nowhere", tmp_path / "x.png", n=1)


# -------------------------------------------------------------------------------------- the CLI
def test_cli_data_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(
        [
            "data",
            "synth",
            "--out",
            str(out),
            "--n",
            "24",
            "--seed",
            "3",
            "--size",
            "64",
            "--eval-n",
            "12",
            "--workers",
            "2",
        ]
    )
    assert rc == 0
    assert "train=22 val=2 eval=12" in capsys.readouterr().out
    assert len(read_records(out / "train.jsonl")) == 22
    assert len(read_records(out / "eval.jsonl")) == 12
    assert (out / "contact_sheet.png").is_file()
    with Image.open(out / "images" / "synth_000000.jpg") as im:
        assert im.size == (64, 64)
    assert main(["data", "synth", "--out", str(out), "--n", "0"]) == 2  # usage error, no traceback
    assert "argument --n: must be at least 1" in capsys.readouterr().err

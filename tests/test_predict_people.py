"""`focusclip predict` / `embed` / `eval` with people (issue 20, sections 2 and 3 on the command line): one
answer per person in the table, --json and --csv, --person, --focus, the numbered overlay, per-person
embedding rows, and eval --focus boxes --focus-mode, on real multi-person photos made of the packaged
portraits."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.predict import ZeroShotClassifier
from focusclip.subjects import subjects_from_boxes
from portraits import write_composite

LABELS = ["an astronaut", "a navy officer", "a photographer"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved random-init clip-tiny, a real three-person photo with its boxes file, and the classifier."""
    root = tmp_path_factory.mktemp("people")
    photo, boxes = write_composite(root, ["astronaut", "grace_hopper", "camera"], stem="three")
    (root / "boxes.json").write_text(json.dumps(boxes))
    torch.manual_seed(0)
    clf = ZeroShotClassifier(focusclip.create_model("clip-tiny").eval(), focusclip.get_tokenizer("clip-tiny"), LABELS,
                             device="cpu")
    focusclip.save_model(clf.model, root / "model", focusclip.get_tokenizer("clip-tiny"))
    return root, photo, boxes, clf


def _predict(root, photo, *extra):
    return ["predict", str(photo), "--model", str(root / "model"), "--labels", ",".join(LABELS), "--device", "cpu",
            "--overlay-dir", str(root / "overlays"), "--overwrite", *extra]


def test_predict_gives_one_answer_per_person_in_json_csv_and_table(setup, capsys):
    root, photo, boxes, clf = setup
    (root / "overlays").mkdir(exist_ok=True)
    assert main(_predict(root, photo, "--boxes", str(root / "boxes.json"), "--focus", "blur", "--json", "--csv",
                         str(root / "answers.csv"))) == 0
    text = capsys.readouterr().out
    out = json.loads(text)
    assert len(out) == 1 and [p["person"] for p in out[0]["people"]] == [1, 2, 3]
    assert [p["box"] for p in out[0]["people"]] == boxes and all(p["focus"] == "blur" for p in out[0]["people"])
    want = clf.predict_people([str(photo)], [subjects_from_boxes(boxes)], focus="blur")[0]
    for got, ref in zip(out[0]["people"], want["people"]):
        assert [q["label"] for q in got["predictions"]] == [q["label"] for q in ref["predictions"]]
        assert got["predictions"][0]["score"] == pytest.approx(ref["predictions"][0]["score"], abs=1e-5)
    assert out[0]["whole"][0]["score"] == pytest.approx(want["whole"][0]["score"], abs=1e-5)
    rows = list(csv.DictReader((root / "answers.csv").read_text().splitlines()))
    assert len(rows) == 4 * 3  # the whole image and three people, three ranks each
    assert [r["person"] for r in rows[::3]] == ["0", "1", "2", "3"] and rows[3]["focus"] == "blur"
    assert float(rows[3]["x1"]) == boxes[0][0] and rows[0]["source"] == "whole"
    # the overlay numbers the people: each box outlined in its colour with a dark number tag at its corner
    overlay = np.asarray(Image.open(out[0]["overlay"]).convert("RGB"))
    from focusclip.drawing import PERSON_COLORS

    for k, (x1, y1, x2, y2) in enumerate(boxes):
        edge = overlay[int((y1 + y2) / 2), int(x2) - 1 if x2 >= overlay.shape[1] else int(x2)]
        assert tuple(edge) == PERSON_COLORS[k], k
        assert (overlay[int(y1) + 2: int(y1) + 8, int(x1) + 1: int(x1) + 4] < 40).all(axis=-1).any(), k
    # the table: a block per person with its id, box and mode, after the whole image
    assert main(_predict(root, photo, "--boxes", str(root / "boxes.json"), "--focus", "blur")) == 0
    table = capsys.readouterr().out
    assert "whole image" in table and "person 2 [192, 16, 329, 176] boxes, focus blur" in table
    assert table.index("whole image") < table.index("person 1") < table.index("person 3")


def test_predict_an_roi_that_marks_nothing_gives_valid_json(setup, capsys, tmp_path):
    root, photo, boxes, _ = setup
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([boxes[0], [0, 0, 1e308, 1e308], [9000, 0, 9100, 50]]))
    assert main(_predict(root, photo, "--boxes", str(bad), "--json")) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    people = json.loads(text)[0]["people"]
    assert [p["focused"] for p in people] == [True, False, False]
    assert people[1]["predictions"] == json.loads(text)[0]["whole"] and "person 2" in people[1]["note"]
    assert "outside" in people[2]["note"]


def test_predict_one_person_keypoints_and_errors(setup, capsys, tmp_path):
    root, photo, boxes, _ = setup
    assert main(_predict(root, photo, "--boxes", str(root / "boxes.json"), "--person", "2", "--json",
                         "--focus", "attention")) == 0
    people = json.loads(capsys.readouterr().out)[0]["people"]
    assert [p["person"] for p in people] == [2] and people[0]["focus"] == "attention"
    joints = np.full((16, 2), -1.0)
    x1, y1, x2, y2 = boxes[2]
    joints[[9, 8, 6, 0, 5]] = [[(x1 + x2) / 2, y1 + 5], [(x1 + x2) / 2, y1 + 40], [(x1 + x2) / 2, y2 - 60],
                               [x1 + 10, y2 - 5], [x2 - 10, y2 - 5]]
    kp = tmp_path / "kp.json"
    kp.write_text(json.dumps([{"joints": joints.tolist()}]))
    assert main(_predict(root, photo, "--keypoints", str(kp), "--json")) == 0
    people = json.loads(capsys.readouterr().out)[0]["people"]
    assert len(people) == 1 and people[0]["source"] == "keypoints" and people[0]["focused"]
    assert people[0]["focus"] == "attention"  # auto on a ViT without its own mechanism
    for args, message in (((["--focus", "alpha", "--boxes", str(root / "boxes.json")]), "needs a model trained"),
                          ((["--focus", "glow", "--boxes", str(root / "boxes.json")]), "choose one of auto"),
                          ((["--person", "2"]), "--person asks about people"),
                          ((["--person", "7", "--boxes", str(root / "boxes.json")]), "there is no person 7"),
                          ((["--boxes", str(root / "boxes.json"), "--keypoints", str(kp)]), "one way")):
        assert main(_predict(root, photo, *args)) == 2, args
        assert message in capsys.readouterr().err, args


def test_embed_writes_one_row_per_person(setup, tmp_path):
    root, photo, boxes, clf = setup
    out = tmp_path / "people.npy"
    assert main(["embed", str(photo), "--model", str(root / "model"), "--boxes", str(root / "boxes.json"),
                 "--focus", "crop", "--out", str(out), "--device", "cpu"]) == 0
    emb = np.load(out)
    rows = list(csv.DictReader(out.with_suffix(".csv").read_text().splitlines()))
    assert emb.shape == (3, clf.model.embed_dim) and len(rows) == 3
    assert [(r["image"], r["person"], r["focus"], r["focused"]) for r in rows] == [
        (str(photo), str(k), "crop", "True") for k in (1, 2, 3)]
    assert len({tuple(np.round(e, 5)) for e in emb}) == 3  # three people, three embeddings
    assert main(["embed", str(photo), "--model", str(root / "model"), "--boxes", str(root / "boxes.json"),
                 "--out", str(out)]) == 1  # no --overwrite


def test_eval_focus_boxes_with_an_inference_mode(tmp_path, capsys):
    from focusclip.data.synthetic import generate_world

    world = tmp_path / "world"
    generate_world(world, n=4, seed=0, image_size=64, eval_n=8, show_progress=False)
    base = ["eval", "--model", "clip-tiny", "--tasks", "synth-age", "--data-root", str(world), "--workers", "0",
            "--no-confusion"]
    assert main([*base, "--focus", "boxes", "--focus-mode", "blur", "--out", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["model"].endswith("+focus-boxes-blur")
    assert data["results"][f"synth-age@{data['model']}"]["focus_mode"] == "blur"
    capsys.readouterr()
    assert main([*base, "--focus-mode", "blur", "--out", str(tmp_path / "x.json")]) == 2
    assert "--focus-mode needs --focus boxes" in capsys.readouterr().err
    assert main([*base, "--focus", "boxes", "--focus-mode", "pool", "--out", str(tmp_path / "y.json")]) == 2
    assert "needs a model trained with roi.mode pool" in capsys.readouterr().err

"""`focusclip serve` asks about each person: the JSON API takes boxes (or person ids) and a focus mode and
answers per person beside the whole image, exactly as ZeroShotClassifier.predict_people does. The photos
are real: the portraits that ship inside packages pasted side by side (tests/portraits.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from focusclip.predict import ZeroShotClassifier
from focusclip.serve.app import ServeConfig
from focusclip.subjects import subjects_from_boxes, subjects_from_boxes_file
from portraits import write_composite
from serve_sites import ATTENTION_ID, FOCUS_ID, add_attention_model, make_models_root, serving

LABELS = ["a scientist", "an astronaut", "a photographer", "a dancer"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = add_attention_model(make_models_root(tmp_path_factory.mktemp("models")))
    folder = tmp_path_factory.mktemp("photos")
    group, boxes = write_composite(folder, ["grace_hopper", "astronaut", "camera"], scales=[1.0, 0.8, 0.9])
    with serving(models_root=root, registered=False, default_model=FOCUS_ID) as (_, client):
        yield client, root, group, boxes


def _image(path, name=None):
    return ("images", (name or path.name, path.read_bytes(), "image/png"))


def _same(got, want, atol=1e-5):
    assert [p["label"] for p in got] == [p["label"] for p in want]
    np.testing.assert_allclose([p["prob"] for p in got], [p["prob"] for p in want], atol=atol)
    np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in want], atol=atol)


@pytest.mark.parametrize("focus", ["auto", "crop", "circle"])
def test_boxes_sent_are_answered_per_person_as_predict_people_answers(site, focus):
    client, root, group, boxes = site
    r = client.post("/api/predict", files=[_image(group)],
                    data={"labels": ",".join(LABELS), "subjects": json.dumps(boxes), "focus": focus, "topk": "4"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["focus"] == focus and out["person"] is None
    (res,) = out["results"]
    clf = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu")
    (want,) = clf.predict_people([group], subjects=[subjects_from_boxes(boxes, source="click")], focus=focus, topk=4)
    assert res["image"] == "group.png" and res["size"] == want["size"] == list(Image.open(group).size)
    _same(res["whole"], want["whole"])
    assert res["predictions"] == res["whole"]
    assert [p["person"] for p in res["people"]] == [1, 2, 3]
    for got, exp in zip(res["people"], want["people"]):
        assert {k: got[k] for k in ("person", "box", "source", "focus", "focused", "note")} == \
            {k: exp[k] for k in ("person", "box", "source", "focus", "focused", "note")}
        _same(got["predictions"], exp["predictions"])
    assert res["people"][0]["focus"] == ("dim" if focus == "auto" else focus)  # auto: a highlight model dims
    assert any(abs(q["predictions"][0]["prob"] - res["whole"][0]["prob"]) > 1e-4 for q in res["people"])


def test_one_person_by_id(site):
    client, root, group, boxes = site
    r = client.post("/api/predict", files=[_image(group)],
                    data={"labels": ",".join(LABELS), "subjects": json.dumps(boxes), "focus": "crop", "person": "2"})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    clf = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu")
    (want,) = clf.predict_people([group], subjects=[subjects_from_boxes(boxes, source="click")], focus="crop",
                                 person=2)
    assert r.json()["person"] == 2 and [p["person"] for p in res["people"]] == [2]
    _same(res["people"][0]["predictions"], want["people"][0]["predictions"])
    r = client.post("/api/predict", files=[_image(group)],
                    data={"labels": ",".join(LABELS), "subjects": json.dumps(boxes), "focus": "crop", "person": "4"})
    assert r.status_code == 400 and r.json()["error"] == "group.png has people 1, 2, 3; person 4 is not one of them"
    r = client.post("/api/predict", files=[_image(group)], data={"labels": "a, b", "person": "1"})  # implies auto
    assert r.status_code == 400 and r.json()["error"] == "group.png has no people; person 1 is not one of them"
    r = client.post("/api/predict", files=[_image(group)], data={"labels": "a, b", "person": "0"})
    assert r.status_code == 400 and r.json()["error"].startswith("person: input should be greater than or equal to 1")


def test_the_people_of_an_roi_file_with_a_model_focusing_by_attention(site, tmp_path):
    """``focus=true`` is ``auto``: the attention-trained model's own mechanism for each person of the file."""
    client, root, group, boxes = site
    boxes_file = tmp_path / "group.json"
    boxes_file.write_text(json.dumps(boxes[:2]))
    r = client.post("/api/predict", files=[_image(group), ("rois", ("group.json", boxes_file.read_bytes(), "application/json"))],
                    data={"labels": ",".join(LABELS), "focus": "true", "model": ATTENTION_ID})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["roi"] == {"kind": "boxes", "source": "group.json"} and r.json()["focus"] == "auto"
    clf = ZeroShotClassifier.from_pretrained(root / ATTENTION_ID, LABELS, device="cpu")
    (want,) = clf.predict_people([group], subjects=[subjects_from_boxes_file(boxes_file)], focus="auto")
    assert [(p["person"], p["source"], p["focus"]) for p in res["people"]] == [(1, "boxes", "attention"),
                                                                               (2, "boxes", "attention")]
    for got, exp in zip(res["people"], want["people"]):
        _same(got["predictions"], exp["predictions"])


def test_a_box_that_marks_nothing_gets_the_whole_answer_and_a_note(site):
    client, _, group, _ = site
    w, h = Image.open(group).size
    sent = [[w + 10, 0, w + 50, 40], [0, 0, 1e308, 1e308], [5, 5, 5, 60]]
    r = client.post("/api/predict", files=[_image(group)],
                    data={"labels": ",".join(LABELS), "subjects": json.dumps(sent), "focus": "blur"})
    assert r.status_code == 200, r.text
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))  # valid JSON, nothing non-finite
    (res,) = r.json()["results"]
    notes = [p["note"] for p in res["people"]]
    assert [p["focused"] for p in res["people"]] == [False, False, False]
    assert "lies outside" in notes[0] and "person 3" in notes[2] and "no area" in notes[2]
    assert all(p["predictions"] == res["whole"] for p in res["people"])


def test_boxes_and_sizes_are_in_the_pixels_of_the_photo_file(site):
    """A large JPEG is decoded at a reduced scale; boxes are still given and returned in the file's pixels."""
    client, root, _, _ = site
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (1536, 2048, 3), dtype=np.uint8)).save(buf, format="JPEG")
    box = [1024.0, 512.0, 1536.0, 1280.0]
    r = client.post("/api/predict", files=[("images", ("big.jpg", buf.getvalue(), "image/jpeg"))],
                    data={"labels": ",".join(LABELS), "subjects": json.dumps({"big.jpg": [box]}), "focus": "crop"})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["size"] == [2048, 1536] and res["people"][0]["box"] == box and res["people"][0]["focused"]


@pytest.mark.parametrize("subjects, message", [
    ("{not json", "subjects: not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "subjects: JSON nested too deeply"),
    ('{"other.png": [[0, 0, 10, 10]]}', "subjects: no photo called 'other.png' was uploaded (photos: group.png)"),
    ('{"group.png": [[0, 0, 10]]}', "subjects of group.png: expected a non-empty list of boxes [x1, y1, x2, y2]"),
    ('{"group.png": [["a", 0, 10, 10]]}', "subjects of group.png: expected a non-empty list of boxes"),
    ('"a box"', 'subjects: expected {"photo.jpg": [[x1, y1, x2, y2], ...]} or a list of boxes'),
])
def test_bad_subjects_are_one_line_400s(site, subjects, message):
    client, _, group, _ = site
    r = client.post("/api/predict", files=[_image(group)], data={"labels": "a, b", "subjects": subjects})
    assert r.status_code == 400 and r.json() == {"error": r.json()["error"]} and r.json()["error"].startswith(message)


def test_a_list_of_boxes_is_for_one_photo(site):
    client, _, group, boxes = site
    r = client.post("/api/predict", files=[_image(group), _image(group, "again.png")],
                    data={"labels": "a, b", "subjects": json.dumps(boxes)})
    assert r.status_code == 400 and "a list of boxes is for one photo; with 2 photos give" in r.json()["error"]
    r = client.post("/api/predict", files=[_image(group), _image(group, "again.png")],
                    data={"labels": "a, b", "subjects": json.dumps({"again.png": boxes[:1]})})
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert r.json()["focus"] == "auto"  # boxes sent are asked about
    assert first["people"] == [] and "no people" in first["roi_note"] and [p["person"] for p in second["people"]] == [1]


def test_without_focus_the_answer_is_the_whole_image_only(site):
    client, _, group, boxes = site
    r = client.post("/api/predict", files=[_image(group)], data={"labels": "a, b", "focus": "false"})
    (res,) = r.json()["results"]
    assert r.json()["focus"] is False and "people" not in res and "whole" not in res and res["size"] == list(Image.open(group).size)


def test_the_detector_numbers_the_people_it_finds(tmp_path):
    """With the server's detector, the people it finds in the composite are asked about, numbered in its order,
    as predict_people answers for the same detector's people."""
    pytest.importorskip("mediapipe")
    from focusclip.detect import create_detector
    from focusclip.subjects import subjects_from_detection

    root = make_models_root(tmp_path / "models")
    group, _ = write_composite(tmp_path, ["grace_hopper", "astronaut"])
    with serving(models_root=root, registered=False, detector="auto") as (_, client):
        r = client.post("/api/predict", files=[_image(group)],
                        data={"labels": ",".join(LABELS), "detect": "true", "focus": "crop"})
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    detector = create_detector("mediapipe")
    try:
        found = subjects_from_detection(detector.detect(Image.open(group).convert("RGB")))
    finally:
        getattr(detector, "close", lambda: None)()
    assert len(found) >= 1 and [p["person"] for p in res["people"]] == list(range(1, len(found) + 1))
    assert all(p["source"] == "detector" for p in res["people"]) and res["roi"]["kind"] == "detector"
    clf = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu")
    (want,) = clf.predict_people([group], subjects=[found], focus="crop")
    for got, exp in zip(res["people"], want["people"]):
        assert got["box"] == exp["box"]
        _same(got["predictions"], exp["predictions"])


def test_the_page_offers_the_focus_modes_the_model_can_use(site, tmp_path):
    import focusclip
    from focusclip.serve.app import build_service
    from focusclip.serve.page import _focus_choices

    _, root, _, _ = site
    service = build_service(ServeConfig(models_root=root, registered=False))
    values = [v for _, v in _focus_choices(service, FOCUS_ID)]
    assert values == ["off", "auto", "attention", "crop", "blur", "circle", "dim"]  # a ViT: attention too
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "alpha"})
    focusclip.save_model(model, tmp_path / "alpha" / "model-final", focusclip.get_tokenizer("focusclip-tiny"))
    alpha = build_service(ServeConfig(models_root=tmp_path / "alpha", registered=False))
    assert [v for _, v in _focus_choices(alpha, "model-final")] == ["off", "auto", "attention", "alpha", "crop", "blur",
                                                                   "circle", "dim"]
    assert [v for _, v in _focus_choices(alpha, "no-such-model")] == ["off", "auto", "crop", "blur", "circle", "dim"]

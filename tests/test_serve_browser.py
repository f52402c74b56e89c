"""The `focusclip serve` page in a real browser: headless Chromium (Debian's chromium + chromedriver)
driven by Selenium against a server on 127.0.0.1. Skipped, with the reason, where no browser is installed
(.ci/run installs it); the JSON API tests in test_serve_api.py run either way.
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from focusclip.predict import ZeroShotClassifier

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
_browser = importlib.import_module("_browser")
sys.path.remove(str(BENCH))

from serve_sites import FOCUS_ID, make_models_root, serving, write_photos  # noqa: E402

REASON = _browser.unavailable_reason()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=f"no browser for the page tests: {REASON}"),
              pytest.mark.slow]
LABELS = ["running", "sitting", "jumping"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = make_models_root(tmp_path_factory.mktemp("models"))
    photos = write_photos(tmp_path_factory.mktemp("photos"), n=2)
    with serving(models_root=root, registered=False) as (server, _):
        yield server.url, root, photos


@pytest.fixture(scope="module")
def browser():
    with _browser.Chromium(width=1280, height=1000) as b:
        yield b


@pytest.fixture
def page(site, browser):
    return _browser.ServePage(browser, site[0]).open()


def test_upload_a_photo_type_labels_and_see_the_probabilities(site, page, tmp_path):
    _, root, photos = site
    page.upload_photos(photos[:1])
    assert "1 photo ready: photo0.jpg 80x90" in page.text("fc-upload-status")
    page.set_labels(", ".join(LABELS))
    page.classify(marker="classified")
    cards = page.text("fc-cards")
    want = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu").predict(photos[:1])[0]
    assert "photo0.jpg" in cards
    for p in want["predictions"]:  # every label with its probability, as the classifier computes it
        assert f"{p['label']}\n{100 * p['prob']:.1f}%" in cards
    order = [cards.index(p["label"]) for p in want["predictions"]]
    assert order == sorted(order)  # best first
    assert f"classified by {FOCUS_ID} over 3 labels" in page.text("fc-status")
    table = page.text("fc-table")
    assert all(lab in table for lab in LABELS)
    csv_file = page.download("fc-csv", tmp_path / "downloads", "focusclip-predictions.csv")
    rows = list(csv.reader(csv_file.open(encoding="utf-8")))
    assert rows[0] == ["image", "person", "focus", "rank", "label", "probability", "cosine"] and len(rows) == 4
    assert [r[4] for r in rows[1:]] == [p["label"] for p in want["predictions"]]
    assert float(rows[1][5]) == pytest.approx(want["predictions"][0]["prob"], abs=1e-5)
    json_file = page.download("fc-json", tmp_path / "downloads", "focusclip-predictions.json")
    saved = json.loads(json_file.read_text(encoding="utf-8"))
    assert saved["model"] == FOCUS_ID and saved["labels"] == LABELS and saved["results"][0]["image"] == "photo0.jpg"
    shot = page.screenshot(tmp_path / "page.png")
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 10


def test_a_text_file_named_jpg_gets_a_message_not_a_traceback(page, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is a text file, not a photo\n")
    page.upload_photos([fake])
    assert "holiday.jpg: not an image" in page.text("fc-upload-status")
    page.set_labels("running, sitting")
    page.classify(marker="not an image")
    assert "holiday.jpg: not an image" in page.text("fc-status")
    source = page.driver.page_source
    assert "Traceback" not in source and "UploadError" not in source
    page.screenshot(tmp_path / "error.png")


def test_the_page_refuses_oversized_photos_and_other_file_types(tmp_path, browser):
    from focusclip.serve.uploads import UploadLimits

    root = make_models_root(tmp_path / "models")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(big)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with serving(models_root=root, registered=False, limits=UploadLimits(max_file_bytes=100_000)) as (server, _):
        page = _browser.ServePage(browser, server.url).open()
        try:
            page.choose_files("fc-photos", [big])
            assert any("exceed the maximum allowed size" in t and "big.png" in t for t in page.toasts("big.png"))
            page.open()
            page.choose_files("fc-photos", [notes])
            assert any("Invalid file type: notes.txt" in t for t in page.toasts("notes.txt"))
            assert page.text("fc-upload-status") == ""  # nothing reached the model
        finally:
            page.leave()


def test_roi_overlay_from_a_keypoints_file_and_text_search(site, page, tmp_path):
    _, _, photos = site
    kp = tmp_path / "photo1.json"
    kp.write_text(json.dumps([{"joints": [[20 + 2 * j, 10 + 4 * j] for j in range(16)], "visible": [1] * 16}]))
    page.upload_photos(photos)
    page.upload_rois([kp])
    page.set_labels("running\nsitting")
    page.classify(marker="classified")
    cards = page.text("fc-cards")
    assert "ROI from photo1.json (keypoints)" in cards and cards.count("ROI from") == 1
    page.search("a person jumping", marker="ranked")
    status = page.text("fc-search-status")
    assert "2 photos ranked by similarity to 'a person jumping'" in status
    assert len(page.driver.find_elements("css selector", "#fc-gallery img")) >= 2


def test_the_page_loads_nothing_from_outside_this_machine(page, browser):
    requests = browser.requests()
    local = [u for u in requests if u.startswith(page.url)]
    assert any("/theme.css" in u for u in local) and sum("/assets/" in u for u in local) > 10  # it was logged
    assert browser.external_requests() == []


def test_the_pose_detector_numbers_the_person_it_finds_on_the_page(tmp_path):
    """With mediapipe installed the page offers the detector (on by default): the portrait's card numbers the
    person it found and answers about them beside the whole image."""
    pytest.importorskip("mediapipe")
    from matplotlib import cbook

    root = make_models_root(tmp_path / "models")
    portrait = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with serving(models_root=root, registered=False, detector="auto") as (server, _), \
            _browser.Chromium(width=1280, height=1000) as b:
        page = _browser.ServePage(b, server.url).open()
        assert page.checkbox("fc-detect").is_selected()
        page.upload_photos([portrait])
        page.set_labels(", ".join(LABELS))
        page.classify(marker="classified")
        assert "ROI from mediapipe, 1 person (detector)" in page.text("fc-cards")
        assert len(page.people()) == 1 and set(page.answers()) == {"whole", "1"}
        page.screenshot(tmp_path / "detected.png")
        page.set_checkbox("fc-detect", False)
        page.set_labels(", ".join(LABELS + ["waving"]))
        page.classify(marker="over 4 labels")  # a marker new to the page: the answer of this click
        assert "ROI from" not in page.text("fc-cards")
        page.leave()


def _bars_of(predictions):
    return [f"{p['label']}\n{100 * p['prob']:.1f}%" for p in predictions]


def _shows(column: str, predictions) -> None:
    """The column's bars are these predictions, in this order, with these percentages."""
    bars = _bars_of(predictions)
    assert all(b in column for b in bars), (column, bars)
    assert [column.index(b) for b in bars] == sorted(column.index(b) for b in bars)


def test_click_a_person_drag_a_box_and_choose_the_focus(tmp_path):
    """A composite of the packaged portraits with a boxes file: the card outlines and numbers the three
    people, answers about each beside the whole image; a click on person 2 asks about them alone; a box
    dragged on the photo is asked about; every set of bars is ZeroShotClassifier.predict_people's."""
    from focusclip.subjects import Subject, subjects_from_boxes_file
    from portraits import write_composite

    root = make_models_root(tmp_path / "models")
    group, boxes = write_composite(tmp_path, ["grace_hopper", "astronaut", "camera"], height=200)
    boxes_file = tmp_path / "group.json"
    boxes_file.write_text(json.dumps(boxes))
    clf = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu")
    people = subjects_from_boxes_file(boxes_file)
    with serving(models_root=root, registered=False) as (server, _), \
            _browser.Chromium(width=1400, height=1000) as b:
        page = _browser.ServePage(b, server.url).open()
        page.upload_photos([group])
        page.upload_rois([boxes_file])
        page.set_labels(", ".join(LABELS))
        page.classify(marker="asked about (focus auto)")
        assert [g.get_attribute("data-person") for g in page.people()] == ["1", "2", "3"]
        (want,) = clf.predict_people([group], subjects=[people], focus="auto")
        answers = page.answers()
        assert list(answers) == ["whole", "1", "2", "3"]
        _shows(answers["whole"], want["whole"])
        for q in want["people"]:
            assert f"person {q['person']} ({q['person']}) · focus dim" in answers[str(q["person"])]
            _shows(answers[str(q["person"])], q["predictions"])

        page.click_person(2)
        assert "group.png: asked about person 2 (focus dim)" in page.text("fc-status")
        (want2,) = clf.predict_people([group], subjects=[people], focus="auto", person=2)
        answers = page.answers()
        assert list(answers) == ["whole", "2"] and len(page.people()) == 3  # everyone stays clickable
        _shows(answers["whole"], want2["whole"])
        _shows(answers["2"], want2["people"][0]["predictions"])
        page.screenshot(tmp_path / "person2.png")

        page.drag_box((0.05, 0.1), (0.4, 0.9))
        saved = json.loads(page.download("fc-json", tmp_path / "downloads", "focusclip-predictions.json").read_text())
        (asked,) = saved["results"][0]["people"]
        assert asked["person"] == 4 and asked["source"] == "click" and asked["focused"]
        drawn = Subject(person=4, box=tuple(asked["box"]), source="click")
        (want4,) = clf.predict_people([group], subjects=[[*people, drawn]], focus="auto", person=4)
        answers = page.answers()
        assert list(answers) == ["whole", "4"] and "your box (4)" in answers["4"]
        _shows(answers["4"], want4["people"][0]["predictions"])
        x1, y1, x2, y2 = asked["box"]
        w, h = saved["results"][0]["size"]
        assert x1 < 0.1 * w < 0.35 * w < x2 and y1 < 0.15 * h < 0.85 * h < y2  # where the mouse went

        page.set_dropdown("fc-focus", "circle")
        page.classify(marker="(focus circle)")
        (want_c,) = clf.predict_people([group], subjects=[people], focus="circle")
        answers = page.answers()
        assert "person 3 (3) · focus circle" in answers["3"]
        _shows(answers["3"], want_c["people"][2]["predictions"])
        page.set_dropdown("fc-focus", "whole image only")
        page.set_labels(", ".join(LABELS + ["waving"]))
        page.classify(marker="over 4 labels in")
        assert page.text("fc-status").count("asked about") == 0 and ".fc-person-answer" not in page._html("fc-cards")
        assert b.external_requests() == []
        page.leave()


def test_the_page_asks_for_the_secret(tmp_path):
    root = make_models_root(tmp_path / "models")
    photos = write_photos(tmp_path / "photos", n=1)
    secret = "browser-test-secret-42"
    with serving(models_root=root, registered=False, token=secret) as (server, _), \
            _browser.Chromium(width=1280, height=1000) as b:
        page = _browser.ServePage(b, server.url)
        b.driver.get(server.url)
        page._wait(lambda d: d.find_elements("css selector", "input[type=password]"), "the login form")
        assert not page._present("#fc-labels textarea")
        page.login(secret)
        page.upload_photos(photos)
        page.set_labels(", ".join(LABELS))
        page.classify(marker="classified")
        assert "photo0.jpg" in page.text("fc-cards")
        assert b.external_requests() == []
        page.leave()

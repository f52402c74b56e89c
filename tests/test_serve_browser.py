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
    assert rows[0] == ["image", "focus", "rank", "label", "probability", "cosine"] and len(rows) == 4
    assert [r[3] for r in rows[1:]] == [p["label"] for p in want["predictions"]]
    assert float(rows[1][4]) == pytest.approx(want["predictions"][0]["prob"], abs=1e-5)
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


def test_the_pose_detector_marks_the_person_and_focus_waits_for_a_model_that_can(tmp_path):
    """With mediapipe installed the page offers the detector (on by default): the portrait's card shows the
    detected ROI overlay; the demo's highlight model cannot focus at inference, so its toggle is off."""
    pytest.importorskip("mediapipe")
    from matplotlib import cbook

    root = make_models_root(tmp_path / "models")
    portrait = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with serving(models_root=root, registered=False, detector="auto") as (server, _), \
            _browser.Chromium(width=1280, height=1000) as b:
        page = _browser.ServePage(b, server.url).open()
        assert page.checkbox("fc-detect").is_selected()
        assert not page.checkbox("fc-focus").is_enabled()
        page.upload_photos([portrait])
        page.set_labels(", ".join(LABELS))
        page.classify(marker="classified")
        assert "ROI from mediapipe, 1 person (detector)" in page.text("fc-cards")
        page.screenshot(tmp_path / "detected.png")
        page.set_checkbox("fc-detect", False)
        page.set_labels(", ".join(LABELS + ["waving"]))
        page.classify(marker="over 4 labels")  # a marker new to the page: the answer of this click
        assert "ROI from" not in page.text("fc-cards")
        page.leave()


def test_classify_with_and_without_focus_side_by_side(tmp_path):
    """A model whose focus works at inference: the toggle is usable and each card shows both answers."""
    from serve_sites import ATTENTION_ID, add_attention_model

    root = add_attention_model(make_models_root(tmp_path / "models"))
    photos = write_photos(tmp_path / "photos", n=1)
    boxes = tmp_path / "photo0.json"
    boxes.write_text("[[0, 0, 40, 45]]")
    with serving(models_root=root, registered=False, default_model=ATTENTION_ID) as (server, _), \
            _browser.Chromium(width=1280, height=1000) as b:
        page = _browser.ServePage(b, server.url).open()
        assert page.checkbox("fc-focus").is_enabled()
        page.upload_photos(photos)
        page.upload_rois([boxes])
        page.set_labels(", ".join(LABELS))
        page.set_checkbox("fc-focus", True)
        page.classify(marker="with focus on their ROI")
        cards = page.text("fc-cards")
        assert "without focus" in cards and "with focus on the ROI" in cards
        assert "ROI from photo0.json (boxes)" in cards
        assert "1 of 1 with focus on their ROI" in page.text("fc-status")
        page.screenshot(tmp_path / "focus.png")
        page.leave()

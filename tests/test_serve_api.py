"""`focusclip serve`: the JSON API and the served page, over real HTTP on 127.0.0.1 (uvicorn in a thread).

The models root is laid out as `make demo` leaves it (``demo/runs/<arm>-seed0/model-final``) with tiny
random models; answers are compared with ZeroShotClassifier / embed_images / embed_texts called directly.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.predict import ZeroShotClassifier
from focusclip.serve.app import is_loopback
from focusclip.serve.uploads import UploadLimits
from serve_sites import CLIP_ID, FOCUS_ID, make_models_root, serving, write_photos

LABELS = ["running", "sitting", "jumping", "waving"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = make_models_root(tmp_path_factory.mktemp("models"))
    photos = write_photos(tmp_path_factory.mktemp("photos"))
    with serving(models_root=root) as (_, client):
        yield client, root, photos


@pytest.fixture(scope="module")
def strict_site(tmp_path_factory):
    """A server with small limits: 60 kB per file, 1 Mpx, 2 images, 200 kB per request."""
    root = make_models_root(tmp_path_factory.mktemp("models-strict"))
    limits = UploadLimits(max_file_bytes=60_000, max_pixels=1_000_000, max_images=2, max_request_bytes=200_000)
    with serving(models_root=root, registered=False, limits=limits) as (_, client):
        yield client


def _files(paths, name="images"):
    return [(name, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def _no_traceback(response):
    assert "Traceback" not in response.text and 'File "' not in response.text


# -------------------------------------------------------------------------------------- models
def test_models_lists_the_saved_models_and_registered_configs(site):
    client, root, _ = site
    data = client.get("/api/models").json()
    by_id = {m["id"]: m for m in data["models"]}
    saved = [m["id"] for m in data["models"] if m["kind"] == "saved"]
    assert saved == [CLIP_ID, FOCUS_ID]
    assert data["default"] == FOCUS_ID  # a trained FocusCLIP model over the CLIP baseline
    assert by_id[FOCUS_ID]["roi"] and not by_id[CLIP_ID]["roi"] and by_id[FOCUS_ID]["image_size"] == 64
    registered = [m for m in data["models"] if m["kind"] == "registered"]
    assert [m["id"] for m in registered] == focusclip.list_models()
    assert all("not a trained FocusCLIP model" in m["warning"] for m in registered)
    assert "location" not in by_id[FOCUS_ID] and str(root) not in json.dumps(data)  # no server paths


def test_presets_endpoint(site):
    client, _, _ = site
    presets = {p["id"]: p for p in client.get("/api/presets").json()["presets"]}
    assert presets["synth-activity"]["templates"] == ["a photo of a person {c}"]
    assert "stanford40" in presets and "fer2013" in presets


# ------------------------------------------------------------------------------------- predict
def test_predict_answers_what_the_classifier_answers(site):
    client, root, photos = site
    r = client.post("/api/predict", files=_files(photos),
                    data={"labels": ", ".join(LABELS), "topk": "2", "model": FOCUS_ID})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == FOCUS_ID and out["labels"] == LABELS and out["templates"] == ["a photo of a person {c}"]
    expected = ZeroShotClassifier.from_pretrained(root / FOCUS_ID, LABELS, device="cpu").predict(photos, topk=2)
    assert [res["image"] for res in out["results"]] == ["photo0.jpg", "photo1.jpg"]
    for got, want in zip(out["results"], expected):
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        np.testing.assert_allclose([p["prob"] for p in got["predictions"]],
                                   [p["prob"] for p in want["predictions"]], atol=1e-5)
        np.testing.assert_allclose([p["score"] for p in got["predictions"]],
                                   [p["score"] for p in want["predictions"]], atol=1e-5)


def test_predict_with_a_preset_and_the_default_model(site):
    client, root, photos = site
    r = client.post("/api/predict", files=_files(photos[:1]), data={"preset": "synth-age", "topk": "5"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == FOCUS_ID
    assert out["labels"] == ["kid", "teenager", "adult"] and out["templates"] == ["a photo of a {c} person"]
    assert len(out["results"][0]["predictions"]) == 3  # top-k is capped at the number of labels
    assert sum(p["prob"] for p in out["results"][0]["predictions"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_template_ensemble_and_the_other_model(site):
    client, root, photos = site
    templates = ["a photo of a person {c}", "someone {c}"]
    r = client.post("/api/predict", files=_files(photos[:1]),
                    data={"labels": "running\nsitting", "template": templates, "model": CLIP_ID})
    out = r.json()
    assert r.status_code == 200 and out["model"] == CLIP_ID and out["templates"] == templates
    clf = ZeroShotClassifier.from_pretrained(root / CLIP_ID, ["running", "sitting"], templates, device="cpu")
    want = clf.predict(photos[:1])[0]["predictions"]
    assert [p["label"] for p in out["results"][0]["predictions"]] == [p["label"] for p in want]


@pytest.mark.parametrize("data, message", [
    ({"labels": "running"}, "at least two labels"),
    ({"labels": "a, b", "template": "a photo"}, "no {c} placeholder"),
    ({}, "give labels"),
    ({"preset": "kinetics400"}, "unknown preset"),
])
def test_predict_rejects_bad_labels_with_400(site, data, message):
    client, _, photos = site
    r = client.post("/api/predict", files=_files(photos[:1]), data=data)
    assert r.status_code == 400 and message in r.json()["error"]


@pytest.mark.parametrize("model", ["../outside/model-final", "/etc", "demo/runs/focusclip-seed0",
                                   FOCUS_ID + "/../../clip-seed0/model-final", "demo/runs/focusclip-seed0/checkpoints"])
def test_models_outside_the_list_are_404(site, model):
    client, _, photos = site
    r = client.post("/api/predict", files=_files(photos[:1]), data={"labels": "a, b", "model": model})
    assert r.status_code == 404
    assert r.json()["error"].startswith(f"unknown model {model!r}; available: {CLIP_ID}, {FOCUS_ID}")


# --------------------------------------------------------------------------------------- embed
def test_embed_images_and_texts_match_the_library(site):
    client, root, photos = site
    texts = ["a person running", "a person sitting"]
    r = client.post("/api/embed", files=_files(photos), data={"texts": texts, "model": FOCUS_ID})
    assert r.status_code == 200, r.text
    out = r.json()
    model = focusclip.load_model(root / FOCUS_ID)
    img = focusclip.embed_images(model, photos, device="cpu")
    txt = focusclip.embed_texts(model, focusclip.get_tokenizer(str(root / FOCUS_ID)), texts, device="cpu")
    assert out["dim"] == 64 and [i["name"] for i in out["images"]] == ["photo0.jpg", "photo1.jpg"]
    np.testing.assert_allclose([i["embedding"] for i in out["images"]], img, atol=1e-5)
    assert [t["text"] for t in out["texts"]] == texts
    np.testing.assert_allclose([t["embedding"] for t in out["texts"]], txt, atol=1e-5)


def test_embed_texts_only_and_errors(site):
    client, _, _ = site
    r = client.post("/api/embed", data={"texts": ["a person waving"]})
    assert r.status_code == 200 and "images" not in r.json() and len(r.json()["texts"][0]["embedding"]) == 64
    r = client.post("/api/embed", data={"model": FOCUS_ID})
    assert r.status_code == 400 and "give images and / or texts" in r.json()["error"]
    r = client.post("/api/embed", data={"texts": ["ok", "  "]})
    assert r.status_code == 400 and "text 2 of 2 is empty" in r.json()["error"]


# -------------------------------------------------------------------------------------- limits
def test_a_text_file_named_jpg_is_415_with_its_name(site):
    client, _, photos = site
    files = _files(photos[:1]) + [("images", ("notes.jpg", b"not a photo at all", "image/jpeg"))]
    r = client.post("/api/predict", files=files, data={"labels": "a, b"})
    assert r.status_code == 415 and r.json()["error"].startswith("notes.jpg: not an image")
    _no_traceback(r)
    r = client.post("/api/predict", files=[("images", ("notes.txt", b"hello", "text/plain"))], data={"labels": "a, b"})
    assert r.status_code == 415 and "content type 'text/plain'" in r.json()["error"]


def test_upload_pixel_count_and_request_caps(strict_site):
    client = strict_site
    rng = np.random.default_rng(0)

    def png(w, h, noise=True):
        buf = io.BytesIO()
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8) if noise else np.zeros((h, w, 3), np.uint8)
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    big = png(200, 200)  # ~120 kB of noise: over the 60 kB file cap, under the 200 kB request cap
    r = client.post("/api/predict", files=[("images", ("big.png", big, "image/png"))], data={"labels": "a, b"})
    assert r.status_code == 413 and r.json()["error"].startswith("big.png: ") and "upload limit" in r.json()["error"]
    wide = png(2000, 1000, noise=False)  # 2 Mpx of black: a few kB
    r = client.post("/api/predict", files=[("images", ("wide.png", wide, "image/png"))], data={"labels": "a, b"})
    assert r.status_code == 413 and "2000x1000 = 2,000,000 pixels is over the limit of 1,000,000" in r.json()["error"]
    small = png(20, 20)
    r = client.post("/api/predict", files=[("images", (f"{i}.png", small, "image/png")) for i in range(3)],
                    data={"labels": "a, b"})
    assert r.status_code == 413 and "3 photos uploaded; at most 2" in r.json()["error"]
    r = client.post("/api/predict", files=[("images", ("a.png", big, "image/png")), ("images", ("b.png", big, "image/png"))],
                    data={"labels": "a, b"})
    assert r.status_code == 413 and "request body over the limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        yield (b'--zz\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n'
               b"Content-Type: image/png\r\n\r\n")
        for _ in range(30):
            yield b"x" * 10_000

    r = client.post("/api/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413 and "request body over the limit" in r.json()["error"]
    _no_traceback(r)


# ------------------------------------------------------------------------------- page + Gradio
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//(?!127\.0\.0\.1|localhost)""", re.I)
EXTERNAL_CSS = re.compile(r"""(?:url\(\s*["']?|@import\s+["']?)(?:https?:)?//(?!127\.0\.0\.1|localhost)""", re.I)


def test_page_loads_no_scripts_styles_or_fonts_from_the_internet(site):
    client, _, _ = site
    page = client.get("/")
    assert page.status_code == 200 and "focusclip" in page.text
    assert not EXTERNAL.findall(page.text)
    css = client.get("/theme.css")
    assert css.status_code == 200 and not EXTERNAL_CSS.findall(css.text) and "googleapis" not in css.text
    config = client.get("/config").json()
    text = json.dumps(config)
    assert "fonts.googleapis" not in text and config.get("analytics_enabled") is False
    for path in ("/docs", "/redoc"):  # FastAPI's Swagger / ReDoc pages load scripts from a CDN: off
        assert client.get(path).status_code in (404, 405) or "swagger" not in client.get(path).text.lower()
    assert client.get("/api/openapi.json").json()["paths"].keys() >= {"/api/predict", "/api/embed"}


def test_gradio_does_not_serve_files_of_the_models_root(site):
    client, root, _ = site
    target = root / FOCUS_ID / "config.json"
    r = client.get(f"/gradio_api/file={target}")
    assert r.status_code in (403, 404) and '"format"' not in r.text


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")


# ------------------------------------------------------------------------------------------ CLI
def test_cli_serve_binds_loopback_by_default(monkeypatch, tmp_path):
    import focusclip.serve.app as app_module

    seen = []
    monkeypatch.setattr(app_module, "serve", seen.append)
    assert main(["serve", "--models-root", str(tmp_path), "--max-upload-mb", "5", "--max-images", "4"]) == 0
    config = seen[0]
    assert config.host == "127.0.0.1" and config.port == 7860 and config.models_root == str(tmp_path)
    assert config.limits.max_file_bytes == 5 * 2**20 and config.limits.max_images == 4
    assert config.limits.max_pixels == 40_000_000 and config.registered and config.threads is None
    assert main(["serve", "--threads", "1", "--host", "0.0.0.0", "--no-registered", "--model", "x"]) == 0
    assert (seen[1].threads, seen[1].host, seen[1].registered, seen[1].default_model) == (1, "0.0.0.0", False, "x")
    assert config.detector == "auto" and seen[1].detector == "auto"
    assert main(["serve", "--detect", "none"]) == 0 and seen[2].detector == "none" and seen[2].detector_options == {}
    assert main(["serve", "--detect", "rtmo"]) == 2  # rtmo needs its weights: a one-line usage error
    assert main(["serve", "--detect", "rtmo", "--detector-weights", "r.onnx", "--min-visibility", "0.4"]) == 0
    assert seen[3].detector_options == {"weights": "r.onnx", "min_keypoint_score": 0.4}


def test_cli_serve_without_the_app_extra_says_what_to_install(monkeypatch, capsys):
    import focusclip.serve

    monkeypatch.setattr(focusclip.serve, "missing_app_modules", lambda: ["gradio"])
    assert main(["serve"]) == 1
    assert "pip install 'focusclip[app]'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ benchmark
@pytest.mark.slow
def test_benchmark_script_measures_the_api_and_the_page(tmp_path):
    import importlib
    import sys
    from pathlib import Path

    bench_dir = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench_dir))
    try:
        bench = importlib.import_module("serve")
        browser = importlib.import_module("_browser")
    finally:
        sys.path.remove(str(bench_dir))
    page = browser.unavailable_reason() is None
    out = tmp_path / "serve.json"
    args = ["--arch", "focusclip-tiny", "--image-size", "64", "--repeats", "1", "--photo-sizes", "320x240,1600x1200",
            "--threads", "1", "--json", str(out)] + ([] if page else ["--no-page"])
    result = bench.main(args)
    assert json.loads(out.read_text())["rows"] == result["rows"]
    assert [r["photo"] for r in result["rows"]] == ["320x240", "1600x1200"]
    for row in result["rows"]:
        assert row["api_same_labels_s"] > 0 and row["api_new_labels_s"] > 0 and row["server_seconds"] > 0
        if page:
            assert row["page_s"] > 0 and row["page_upload_s"] > 0 and row["external_requests"] == 0
    assert "focusclip-tiny" in result["model"] and "| photo |" in bench.markdown(result)


# --------------------------------------------------------------------------------------- ROI
def _person_file(name: str, w: int = 80, h: int = 90) -> tuple:
    """A keypoints JSON (one standing person in MPII order) as an upload named ``name``."""
    xs = np.linspace(0.3, 0.7, 16) * w
    ys = np.linspace(0.15, 0.9, 16) * h
    person = {"joints": np.stack([xs, ys], axis=1).round(1).tolist(), "visible": [1] * 16}
    return ("rois", (name, json.dumps([person]).encode(), "application/json"))


def test_predict_takes_roi_files_by_photo_name_and_says_which_photo_has_one(site):
    client, _, photos = site
    files = _files(photos) + [_person_file("photo1.json")]
    r = client.post("/api/predict", data={"labels": ",".join(LABELS)}, files=files)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["roi"] is None and res[1]["roi"] == {"kind": "keypoints", "source": "photo1.json"}
    assert r.json()["focus"] is False and all("focus_predictions" not in x for x in res)
    bad = client.post("/api/predict", data={"labels": "a, b"}, files=_files(photos) + [_person_file("other.json")])
    assert bad.status_code == 400 and "other.json match no photo" in bad.json()["error"]
    junk = [("rois", ("photo0.json", b"{not json", "application/json"))]
    bad = client.post("/api/predict", data={"labels": "a, b"}, files=_files(photos[:1]) + junk)
    assert bad.status_code == 400 and bad.json()["error"].startswith("photo0.json: ")


def test_focus_and_detect_are_refused_where_they_cannot_work(site):
    """The demo's models focus by highlighting (training only); this server was started without a detector."""
    client, _, photos = site
    assert client.get("/api/models").json()["detector"] is None
    focus_model = next(m for m in client.get("/api/models").json()["models"] if m["id"] == FOCUS_ID)
    assert focus_model["focus"] == "highlight" and focus_model["focus_at_inference"] is False
    r = client.post("/api/predict", data={"labels": "a, b", "focus": "true", "model": FOCUS_ID},
                    files=_files(photos[:1]) + [_person_file("photo0.json")])
    assert r.status_code == 400 and "cannot classify with focus" in r.json()["error"] and "highlight" in r.json()["error"]
    r = client.post("/api/predict", data={"labels": "a, b", "focus": "true", "model": CLIP_ID}, files=_files(photos[:1]))
    assert r.status_code == 400 and "no focus mechanism" in r.json()["error"]
    r = client.post("/api/predict", data={"labels": "a, b", "detect": "true"}, files=_files(photos[:1]))
    assert r.status_code == 400 and "no pose detector" in r.json()["error"]


def test_server_with_the_real_pose_detector_finds_the_portrait(tmp_path):
    """`focusclip serve --detect auto` with mediapipe installed: the portrait gets a detected ROI, a blank
    photo gets a note instead (and the same answer as without detection)."""
    pytest.importorskip("mediapipe")
    from matplotlib import cbook

    portrait = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(blank)
    root = make_models_root(tmp_path / "models")
    with serving(models_root=root, detector="auto") as (_, client):
        assert client.get("/api/models").json()["detector"] == "mediapipe"
        files = [("images", ("grace.jpg", Path(portrait).read_bytes(), "image/jpeg")),
                 ("images", ("blank.jpg", blank.read_bytes(), "image/jpeg"))]
        r = client.post("/api/predict", data={"labels": ",".join(LABELS), "detect": "true"}, files=files)
        assert r.status_code == 200, r.text
        grace, empty = r.json()["results"]
        assert grace["roi"] == {"kind": "detector", "source": "mediapipe, 1 person"}
        assert empty["roi"] is None and empty["roi_note"] == "no person found by mediapipe"
        plain = client.post("/api/predict", data={"labels": ",".join(LABELS)}, files=files).json()["results"]
        assert [x["predictions"] for x in plain] == [grace["predictions"], empty["predictions"]]


def test_named_detector_that_cannot_start_stops_the_server_start(monkeypatch):
    from focusclip.detect import DetectorUnavailable
    from focusclip.serve.app import build_people_finder

    def unavailable(*_, **__):
        raise DetectorUnavailable("mediapipe is not installed; pip install 'focusclip[detect]'")

    monkeypatch.setattr("focusclip.detect.create_detector", unavailable)
    with pytest.raises(DetectorUnavailable, match="pip install"):
        build_people_finder("mediapipe")
    assert build_people_finder("none") is None and build_people_finder(None) is None


def test_focus_side_by_side_is_what_the_classifier_answers_with_the_heatmap(tmp_path):
    """An attention-focus model: photos with an ROI get a second answer, focused on it, equal to
    ZeroShotClassifier.predict(..., heatmaps=[the ROI's heatmap]); the others get a note."""
    from focusclip.overlays import overlay_from_files
    from serve_sites import ATTENTION_ID, add_attention_model

    root = add_attention_model(make_models_root(tmp_path / "models"))
    photos = write_photos(tmp_path / "photos")
    boxes = tmp_path / "photo0.json"
    boxes.write_text(json.dumps([[0, 0, 40, 45]]))  # the top-left quarter
    with serving(models_root=root, registered=False) as (_, client):
        entry = next(m for m in client.get("/api/models").json()["models"] if m["id"] == ATTENTION_ID)
        assert entry["focus"] == "attention" and entry["focus_at_inference"] is True
        files = _files(photos) + [("rois", ("photo0.json", boxes.read_bytes(), "application/json"))]
        r = client.post("/api/predict", files=files,
                        data={"labels": ",".join(LABELS), "focus": "true", "model": ATTENTION_ID, "topk": "4"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["focus"] is True
        first, second = out["results"]
        assert "focus_predictions" not in second and second["roi_note"].startswith("no ROI")
    clf = ZeroShotClassifier.from_pretrained(root / ATTENTION_ID, LABELS, device="cpu")
    image = Image.open(photos[0]).convert("RGB")
    heat = overlay_from_files(image, boxes=boxes)[1]
    want_plain = clf.predict([photos[0]], topk=4)[0]["predictions"]
    want_focus = clf.predict([photos[0]], topk=4, heatmaps=[heat])[0]["predictions"]
    got = {p["label"]: p["prob"] for p in first["focus_predictions"]}
    np.testing.assert_allclose([got[p["label"]] for p in want_focus], [p["prob"] for p in want_focus], atol=1e-5)
    np.testing.assert_allclose([p["prob"] for p in first["predictions"]], [p["prob"] for p in want_plain], atol=1e-5)
    assert max(abs(got[p["label"]] - p["prob"]) for p in want_plain) > 1e-4  # focus changed the answer

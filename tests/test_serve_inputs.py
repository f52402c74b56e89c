"""What the page and the API accept: uploads (sizes, pixels, content), labels, templates, presets, ROI
files; and what they give back (CSV / JSON, the escaped result cards)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from focusclip.labels import parse_labels
from focusclip.serve import cards
from focusclip.serve.presets import find_preset, list_presets, parse_templates
from focusclip.serve.results import TABLE_HEADERS, to_csv
from focusclip.serve.roi import match_roi_files, prepare_images, roi_from_file
from focusclip.serve.uploads import UploadError, UploadLimits, read_image, read_image_file


def image_bytes(w: int = 64, h: int = 48, fmt: str = "JPEG", seed: int = 0, **save_kwargs) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ uploads
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt):
    data = image_bytes(fmt=fmt)
    up = read_image(data, f"photo.{fmt.lower()}", UploadLimits())
    assert up.image.mode == "RGB" and up.size == (64, 48) and up.name == f"photo.{fmt.lower()}"
    assert up.digest == read_image(data, "other name", UploadLimits()).digest


def test_text_file_named_jpg_is_not_an_image():
    with pytest.raises(UploadError, match=r"notes\.jpg: not an image") as e:
        read_image(b"just some text, not a photo\n", "notes.jpg", UploadLimits(), "image/jpeg")
    assert e.value.status == 415


@pytest.mark.parametrize("data, ctype, status, message", [
    (b"", None, 400, "the file is empty"),
    (image_bytes(), "text/plain", 415, "content type 'text/plain' is not an accepted image type"),
    (image_bytes(fmt="TIFF"), None, 415, "a TIFF image; accepted"),
    (image_bytes()[:300], "image/jpeg", 415, "not a readable image"),
    (image_bytes(200, 200)[:4000], "image/jpeg", 415, "damaged JPEG image"),
])
def test_bad_uploads_get_a_one_line_reason(data, ctype, status, message):
    with pytest.raises(UploadError, match=message) as e:
        read_image(data, "x.jpg", UploadLimits(), ctype)
    assert e.value.status == status and str(e.value).startswith("x.jpg: ") and "\n" not in str(e.value)


def test_size_cap_is_checked_before_decoding(tmp_path):
    data = image_bytes(200, 200, fmt="PNG")
    limits = UploadLimits(max_file_bytes=len(data) - 1)
    with pytest.raises(UploadError, match="over the upload limit") as e:
        read_image(data, "big.png", limits)
    assert e.value.status == 413
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(UploadError, match="big.png: .* over the upload limit"):
        read_image_file(path, limits)
    assert read_image_file(path, UploadLimits()).size == (200, 200)


def test_pixel_cap_rejects_a_decompression_bomb_from_its_header():
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, format="PNG")  # 81 Mpx in ~10 kB
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(UploadError, match="9000x9000 = 81,000,000 pixels is over the limit") as e:
        read_image(buf.getvalue(), "bomb.png", UploadLimits(max_pixels=40_000_000))
    assert e.value.status == 413


def test_large_jpegs_are_decoded_reduced_and_kept_whole_for_coordinates():
    data = image_bytes(4096, 3072)
    up = read_image(data, "phone.jpg", UploadLimits())
    assert up.original_size == (4096, 3072) and up.size == (1024, 768) and up.reduced  # 1/4: short side >= 512
    assert up.full_image().size == (4096, 3072)
    assert read_image(data, "phone.jpg", UploadLimits(), reduce_to=None).size == (4096, 3072)
    small = read_image(image_bytes(640, 480), "small.jpg", UploadLimits())
    assert small.size == (640, 480) and not small.reduced and small.full_image() is small.image
    png = read_image(image_bytes(2048, 1536, fmt="PNG"), "big.png", UploadLimits())
    assert png.size == (2048, 1536)  # only JPEG has a reduced-scale decode


def test_decoded_uploads_are_reused_until_the_file_changes(tmp_path):
    from focusclip.serve.uploads import DecodedUploads

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        paths[-1].write_bytes(image_bytes(100, 100, fmt="PNG", seed=i))
    cache = DecodedUploads()
    first = cache.read(paths[0], UploadLimits())
    assert cache.read(paths[0], UploadLimits()) is first
    paths[0].write_bytes(image_bytes(50, 50, fmt="PNG"))
    assert cache.read(paths[0], UploadLimits()).size == (50, 50)
    small = DecodedUploads(max_bytes=2 * first.nbytes())  # room for two photos
    a = [small.read(p, UploadLimits()) for p in paths[1:]]
    small.read(paths[0], UploadLimits())
    assert small.read(paths[2], UploadLimits()) is a[1] and small.read(paths[1], UploadLimits()) is not a[0]
    paths[1].write_text("not an image")
    with pytest.raises(UploadError, match="p1.png: not an image"):
        DecodedUploads().read(paths[1], UploadLimits())


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    up = read_image(image_bytes(64, 48, exif=exif), "phone.jpg", UploadLimits())
    assert up.size == (48, 64)


# ------------------------------------------------------------------------------ labels, templates
def test_labels_split_on_commas_and_lines():
    assert parse_labels(" running, sitting\njumping ,\n\n waving ") == ["running", "sitting", "jumping", "waving"]
    with pytest.raises(ValueError, match="at least two labels"):
        parse_labels("running")
    with pytest.raises(ValueError, match="repeated: sitting"):
        parse_labels("sitting, running, sitting")
    with pytest.raises(ValueError, match="at most 3"):
        parse_labels("a,b,c,d", max_labels=3)


def test_templates_one_per_line_each_with_a_placeholder():
    assert parse_templates("", ["a photo of {c}"]) == ["a photo of {c}"]
    assert parse_templates("a {c}\n  an image of {c} \n", ["x {c}"]) == ["a {c}", "an image of {c}"]
    assert parse_templates(["p {c}"], ["x {c}"]) == ["p {c}"]
    with pytest.raises(ValueError, match="no {c} placeholder"):
        parse_templates("a photo of a person", ["x {c}"])


# ------------------------------------------------------------------------------------- presets
def test_presets_cover_the_people_tasks_of_the_registry():
    presets = {p.id: p for p in list_presets()}
    fer = presets["fer2013"]
    assert fer.labels == ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
    assert fer.templates == ("a photo of {a/an} {c} looking face",)
    age = find_preset(list_presets(), "lagenda-body")  # merged: same labels and template
    assert age.id == "emotic-age" and age.tasks == ("emotic-age", "lagenda-body", "lagenda-face", "synth-age")
    assert age.labels == ("kid", "teenager", "adult") and age.templates == ("a photo of a {c} person",)
    s40 = presets["stanford40"]
    assert len(s40.labels) == 40 and "riding a horse" in s40.labels and s40.templates == ("a photo of a person {c}",)
    synth = presets["synth-activity"]
    assert len(synth.labels) == 12 and "doing push-ups" in synth.labels
    assert presets["synth-expression"].templates == ("a photo of a person who is feeling {c}",)
    assert "emotic-emotion" in presets and len(presets["emotic-emotion"].labels) == 26
    for absent in ("kinetics400", "cub200", "fairface-race", "stanford40-crop"):
        assert absent not in presets  # no built-in class list / not about people / same as stanford40
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        find_preset(list_presets(), "nope")


def test_page_preset_fills_labels_and_template():
    from focusclip.serve.page import apply_preset
    from focusclip.serve.service import Service

    service = Service.__new__(Service)  # apply_preset only reads .presets
    service.presets = list_presets()
    labels, template = apply_preset(service, "synth-age")
    assert parse_labels(labels) == ["kid", "teenager", "adult"] and template == "a photo of a {c} person"


# ------------------------------------------------------------------------------------------ ROI
def _person_joints(x0=20.0, y0=10.0):
    return [[x0 + 2 * j, y0 + 4 * j] for j in range(16)]


def test_roi_from_keypoints_and_boxes_files(tmp_path):
    image = Image.new("RGB", (100, 120), (40, 40, 40))
    kp = tmp_path / "me.json"
    kp.write_text(json.dumps([{"joints": _person_joints(), "visible": [1] * 16}]))
    roi = roi_from_file(image, kp)
    assert roi.kind == "keypoints" and roi.source == "me.json"
    assert roi.heatmap.shape == (120, 100) and roi.overlay.size == (100, 120)
    assert roi.heatmap[40, 35] > 0.5 > roi.heatmap[115, 95]  # inside the person's box vs a far corner
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[60, 70, 90, 110]]))
    roi = roi_from_file(image, boxes, "b.json")
    assert roi.kind == "boxes" and roi.heatmap[90, 75] > 0.5 > roi.heatmap[10, 10]


def test_bad_roi_file_names_the_upload_not_the_temp_path(tmp_path):
    bad = tmp_path / "tmp-upload-123" / "pose.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(UploadError) as e:
        roi_from_file(Image.new("RGB", (10, 10)), bad, "pose.json")
    assert str(e.value).startswith("pose.json: not valid JSON") and str(tmp_path) not in str(e.value)
    for content in ([[1, 2, 3]], {"people": "nobody"}):
        bad.write_text(json.dumps(content))
        with pytest.raises(UploadError, match="pose.json: neither keypoints"):
            roi_from_file(Image.new("RGB", (10, 10)), bad, "pose.json")


def test_roi_files_are_matched_to_photos_by_name():
    assert match_roi_files(["a.jpg"], ["whatever.json"]) == {0: 0}
    assert match_roi_files(["a.jpg", "b.png", "c.jpg"], ["c.json", "a.json"]) == {0: 1, 2: 0}
    with pytest.raises(UploadError, match="x.json match no photo"):
        match_roi_files(["a.jpg", "b.jpg"], ["a.json", "x.json"])


def test_roi_of_a_reduced_photo_uses_its_full_resolution_coordinates(tmp_path):
    up = read_image(image_bytes(2048, 2048), "big.jpg", UploadLimits())
    assert up.size == (512, 512)
    boxes = tmp_path / "big.json"
    boxes.write_text(json.dumps([[1500, 1500, 2000, 2000]]))  # bottom-right, in the file's pixels
    (p,) = prepare_images([up], [("big.json", boxes)])
    # computed at full resolution, then scaled to the kept photo (what the model sees with focus)
    assert p.roi.heatmap.shape == (512, 512) and p.roi.heatmap[437, 437] > 0.9 > p.roi.heatmap[125, 125]
    assert p.roi.overlay.size == (512, 512)
    red = np.asarray(p.roi.overlay, dtype=float)
    assert red[437, 437].sum() != red[50, 50].sum()  # the overlay is coloured where the box is


def test_prepare_images_attaches_the_matched_roi(tmp_path):
    ups = [read_image(image_bytes(seed=i), f"p{i}.jpg", UploadLimits()) for i in range(2)]
    kp = tmp_path / "p1.json"
    kp.write_text(json.dumps(_person_joints()))
    prepared = prepare_images(ups, [("p1.json", kp)])
    assert prepared[0].roi is None and prepared[1].roi.kind == "keypoints" and prepared[1].name == "p1.jpg"


# ------------------------------------------------------------------------------------- results
RESULTS = [{"image": "a <b>.jpg", "predictions": [{"label": "run, fast", "prob": 0.75, "score": 0.3},
                                                   {"label": "<script>x</script>", "prob": 0.25, "score": 0.1}]}]


def test_csv_has_one_row_per_image_and_rank():
    rows = list(csv.reader(io.StringIO(to_csv(RESULTS))))
    assert rows[0] == TABLE_HEADERS
    assert rows[1] == ["a <b>.jpg", "none", "1", "run, fast", "0.75", "0.3"]
    assert rows[2][:4] == ["a <b>.jpg", "none", "2", "<script>x</script>"] and len(rows) == 3


def test_csv_rows_of_the_focused_answer_follow_the_plain_ones():
    focused = [{**RESULTS[0], "roi": {"kind": "detector", "source": "mediapipe, 1 person"},
                "focus_predictions": [{"label": "<script>x</script>", "prob": 0.6, "score": 0.2},
                                      {"label": "run, fast", "prob": 0.4, "score": 0.1}]}]
    rows = list(csv.reader(io.StringIO(to_csv(focused))))
    assert [r[1:4] for r in rows[1:]] == [["none", "1", "run, fast"], ["none", "2", "<script>x</script>"],
                                          ["detector", "1", "<script>x</script>"], ["detector", "2", "run, fast"]]
    html = cards.card(focused[0])
    assert html.index("without focus") < html.index("with focus on the ROI")
    assert html.index("with focus on the ROI") < html.index("60.0%")


def test_cards_escape_user_text_and_show_percentages():
    html = cards.cards(RESULTS, [Image.new("RGB", (30, 20))], ["ROI from a.json (keypoints)"])
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &lt;b&gt;.jpg" in html
    assert "75.0%" in html and "25.0%" in html and 'style="width:75.0%"' in html
    assert 'src="data:image/jpeg;base64,' in html and "http" not in html
    assert "ROI from a.json" in html
    assert cards.message("<b>bad</b>", error=True) == ('<div class="fc-message fc-error" role="alert">'
                                                       "&lt;b&gt;bad&lt;/b&gt;</div>")

"""Opening images: EXIF orientation applied once, every PIL mode decoded to correct 8-bit pixels, the pixel
limit named. Each mode is written to a real file in a format that stores it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from focusclip.errors import InputError
from focusclip.images import image_size, open_image, open_image_reduced, open_rgb


def _oriented(tmp_path, orientation: int = 6):
    """A 60x40 stored JPEG with an EXIF orientation tag, and the image as it must be displayed."""
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :, 2] = 90
    arr[2:12, 2:20] = (255, 0, 0)  # a red mark in the stored top-left corner
    stored = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, quality=98, exif=exif.tobytes())
    # EXIF orientation 6: the stored picture is displayed turned 90 degrees clockwise
    return path, Image.open(path).convert("RGB").transpose(Image.Transpose.ROTATE_270)


def _close(a: Image.Image, b: Image.Image, tol: int = 12) -> bool:
    return a.size == b.size and int(np.abs(np.asarray(a, int) - np.asarray(b, int)).max()) <= tol


def test_exif_orientation_is_applied_where_images_are_opened(tmp_path):
    path, displayed = _oriented(tmp_path)
    assert image_size(path) == (40, 60)
    assert _close(open_rgb(path), displayed)
    reduced, factor = open_image_reduced(path, "RGB", min_size=(20, 30))
    assert reduced.size[0] / reduced.size[1] == pytest.approx(40 / 60, rel=0.05)
    assert factor == pytest.approx((reduced.size[0] / 40, reduced.size[1] / 60))


def test_exif_photo_is_seen_upright_by_predict_and_training(tmp_path):
    """embed_images of the tagged file equals that of the upright pixels; a training heatmap from keypoints in
    displayed coordinates lands on the displayed mark."""
    import focusclip
    from focusclip.data.dataset import FocusDataset
    from focusclip.predict import embed_images

    path, displayed = _oriented(tmp_path)
    upright = tmp_path / "upright.png"
    displayed.save(upright)
    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny").eval()
    a, b = embed_images(model, [str(path), str(upright)], device="cpu")
    np.testing.assert_allclose(a, b, atol=0.05)

    mark = np.argwhere(np.asarray(displayed)[..., 0] > 200)  # (row, col) of the red mark as displayed
    (y0, x0), (y1, x1) = mark.min(0), mark.max(0)
    record = {"image": path.name, "id": "r", "captions": ["x"], "boxes": [[float(x0), float(y0), float(x1), float(y1)]]}
    _, _, eval_tf = focusclip.create_model_and_transforms("focusclip-tiny")
    heat = FocusDataset([record], root=tmp_path, transform=eval_tf, heatmap="boxes")[0]["heatmap"][0]
    row, col = np.unravel_index(int(heat.argmax()), heat.shape)
    s = heat.shape[0]
    assert abs(col - (x0 + x1) / 2 * s / 40) <= 2 and abs(row - (y0 + y1) / 2 * s / 60) <= 2


def test_validator_reports_the_displayed_size(tmp_path):
    from focusclip.data.validate import validate_dataset

    path, _ = _oriented(tmp_path)
    report = validate_dataset([{"image": path.name, "width": 40, "height": 60, "captions": ["x"]}], root=tmp_path)
    assert report.ok and "width/height differ from the image" not in report.counts


@pytest.mark.parametrize("case", ["I;16", "I", "F", "P+transparency", "LA", "RGBA", "CMYK", "1"])
def test_every_pil_mode_decodes_to_correct_8bit_rgb(tmp_path, case):
    if case == "I;16":
        img = Image.fromarray(np.array([[0, 65535], [32896, 1000]], np.uint16))
        want = [[0, 255], [128, 4]]
        path = tmp_path / "g16.png"
    elif case == "I":
        img = Image.fromarray(np.array([[0, 65535], [32896, 1000]], np.int32), mode="I")
        want = [[0, 255], [128, 4]]
        path = tmp_path / "g32.tif"
    elif case == "F":
        img = Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.25]], np.float32), mode="F")
        want = [[0, 255], [128, 64]]
        path = tmp_path / "f.tif"
    elif case == "P+transparency":
        img = Image.new("P", (2, 2))
        img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
        img.putdata([0, 1, 1, 0])
        img.info["transparency"] = 0
        want = [[(255, 255, 255), (200, 100, 50)], [(200, 100, 50), (255, 255, 255)]]
        path = tmp_path / "p.png"
    elif case == "LA":
        img = Image.fromarray(np.array([[[50, 255], [50, 0]], [[50, 128], [0, 255]]], np.uint8), mode="LA")
        want = [[50, 255], [np.round(50 * 128 / 255 + 255 * 127 / 255), 0]]
        path = tmp_path / "la.png"
    elif case == "RGBA":
        img = Image.fromarray(np.array([[[255, 0, 0, 255], [0, 0, 255, 0]]], np.uint8), mode="RGBA")
        want = [[(255, 0, 0), (255, 255, 255)]]
        path = tmp_path / "rgba.png"
    elif case == "CMYK":
        img = Image.new("CMYK", (2, 1), (255, 0, 0, 0))  # pure cyan
        want = [[(0, 255, 255), (0, 255, 255)]]
        path = tmp_path / "cmyk.tif"
    else:  # "1"
        img = Image.fromarray(np.array([[0, 1]], bool))
        want = [[0, 255]]
        path = tmp_path / "bits.png"
    img.save(path)
    got = np.asarray(open_rgb(path)).astype(int)
    want = np.asarray(want, dtype=float)
    if want.ndim == 2:  # grey: the same value in every channel
        want = np.repeat(want[..., None], 3, axis=-1)
    np.testing.assert_allclose(got, want, atol=1)
    if case in ("I;16", "I", "F"):
        np.testing.assert_allclose(np.asarray(open_image(path, "L")), want[..., 0], atol=1)  # heatmap files


def test_pixel_limit_names_the_file_and_how_to_raise_it(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setenv("FOCUSCLIP_MAX_IMAGE_PIXELS", "10000")
    try:
        with pytest.raises(InputError, match=r"big.png: .*FOCUSCLIP_MAX_IMAGE_PIXELS"):
            open_rgb(path)
        monkeypatch.setenv("FOCUSCLIP_MAX_IMAGE_PIXELS", "0")
        assert open_rgb(path).size == (300, 300)
    finally:
        Image.MAX_IMAGE_PIXELS = 89_478_485  # PIL's default, for the other tests

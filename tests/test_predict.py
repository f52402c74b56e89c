"""`focusclip predict` / `embed` and the Python ZeroShotClassifier on a saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.predict import ZeroShotClassifier

LABELS = ["running", "sitting", "jumping", "waving"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    torch.manual_seed(3)
    model = focusclip.create_model("focusclip-tiny").eval()
    tok = focusclip.get_tokenizer("focusclip-tiny")
    focusclip.save_model(model, root / "model", tok)
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        p = root / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (80 + 10 * i, 100, 3), dtype=np.uint8)).save(p)
        images.append(str(p))
    return root, model, tok, images


def _expected_scores(model, tok, images, templates):
    tf = focusclip.create_model_and_transforms("focusclip-tiny")[2]
    with torch.no_grad():
        img = model.encode_image(torch.stack([tf(Image.open(p)) for p in images]), normalize=True)
        cls = []
        for lab in LABELS:
            t = model.encode_text(tok([tp.replace("{c}", lab) for tp in templates]), normalize=True).mean(0)
            cls.append(t / t.norm())
    return (img @ torch.stack(cls).T).numpy()


def test_predict_json_matches_an_independent_computation(saved, capsys):
    root, model, tok, images = saved
    rc = main(["predict", *images, "--model", str(root / "model"), "--labels", ",".join(LABELS),
               "--topk", "2", "--json", "--device", "cpu"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    expected = _expected_scores(model, tok, images, ["a photo of a person {c}"])
    assert [r["image"] for r in out] == images
    for r, sims in zip(out, expected):
        order = np.argsort(-sims)[:2]
        assert [p["label"] for p in r["predictions"]] == [LABELS[j] for j in order]
        np.testing.assert_allclose([p["score"] for p in r["predictions"]], sims[order], atol=1e-5)
        scale = 1 / 0.07  # an untrained CLIP-style model: its initial logit scale
        probs = np.exp(scale * sims) / np.exp(scale * sims).sum()
        np.testing.assert_allclose([p["prob"] for p in r["predictions"]], probs[order], atol=1e-4)


def test_probabilities_use_the_models_own_scale(saved, tmp_path, capsys):
    """NT-Xent-trained models (t = 0.5) score with 1/t = 2, not a fixed 100 that makes every answer 100%;
    --scale overrides it."""
    import shutil

    root, model, tok, images = saved
    trained = tmp_path / "ntxent-model"
    shutil.copytree(root / "model", trained)
    cfg = json.loads((trained / "config.json").read_text())
    cfg["training"] = {"loss": {"name": "ntxent", "temperature": 0.5}}
    (trained / "config.json").write_text(json.dumps(cfg))
    sims = _expected_scores(model, tok, images[:1], ["a photo of a person {c}"])[0]
    for extra, scale in (([], 2.0), (["--scale", "30"], 30.0)):
        assert main(["predict", images[0], "--model", str(trained), "--labels", ",".join(LABELS), "--json",
                     "--topk", "4", "--device", "cpu", *extra]) == 0
        got = {p["label"]: p["prob"] for p in json.loads(capsys.readouterr().out)[0]["predictions"]}
        want = np.exp(scale * sims) / np.exp(scale * sims).sum()
        np.testing.assert_allclose([got[lab] for lab in LABELS], want, atol=1e-5)
    assert max(got.values()) < 0.99  # no longer "100%" for everything


def test_template_ensemble(saved):
    root, model, tok, images = saved
    templates = ["a photo of a person {c}", "someone {c}"]
    clf = ZeroShotClassifier.from_pretrained(root / "model", LABELS, template=templates, device="cpu")
    np.testing.assert_allclose(clf.scores(images), _expected_scores(model, tok, images, templates), atol=1e-5)


def test_predict_table_and_overlay(saved, capsys, tmp_path):
    """The overlay is the image's size and hot (red under the jet colour map) around the person's joints,
    cold (blue) far from them."""
    root, _, _, images = saved
    kp = tmp_path / "kp.json"
    joints = [[30 + 2 * j, 10 + 4 * j] for j in range(16)]  # a person spanning x 30..60, y 10..70
    kp.write_text(json.dumps([{"joints": joints, "visible": [1] * 16}]))
    rc = main(["predict", images[0], "--model", str(root / "model"), "--labels", "running,sitting",
               "--keypoints", str(kp), "--overlay-dir", str(tmp_path), "--device", "cpu"])
    assert rc == 0
    text = capsys.readouterr().out
    assert images[0] in text and "1. " in text and "2. " in text
    overlay = np.asarray(Image.open(tmp_path / "img0_roi.png")).astype(int)
    plain = np.asarray(Image.open(images[0]).convert("RGB")).astype(int)
    assert overlay.shape == plain.shape
    shift = overlay - plain // 2  # alpha 0.5: what the colour map added
    inside, corner = shift[25, 55], shift[75, 95]  # inside the joints' box (off the drawn limbs) vs far outside
    assert inside[0] > inside[2] + 40  # hot: red dominates
    assert corner[2] > corner[0] + 40  # cold: blue dominates


def test_predict_errors(saved, capsys):
    root, _, _, images = saved
    assert main(["predict", images[0], "--model", str(root / "model"), "--labels", "only-one"]) == 2  # usage
    assert "at least two labels" in capsys.readouterr().err
    assert main(["predict", "missing.jpg", "--model", str(root / "model"), "--labels", "a,b"]) == 1
    assert "missing.jpg" in capsys.readouterr().err


def test_embed_images_and_texts(saved, tmp_path):
    root, model, tok, images = saved
    assert main(["embed", "--model", str(root / "model"), "--images", *images, "--out",
                 str(tmp_path / "img.npy"), "--device", "cpu"]) == 0
    emb = np.load(tmp_path / "img.npy")
    assert emb.shape == (3, model.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "img.txt").read_text().splitlines() == images
    texts = ["a person running", "a kid sitting"]
    assert main(["embed", "--model", str(root / "model"), "--texts", *texts, "--out", str(tmp_path / "t.npy"),
                 "--device", "cpu"]) == 0
    with torch.no_grad():
        ref = model.encode_text(tok(texts), normalize=True).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), ref, atol=1e-5)

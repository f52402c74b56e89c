"""Focus at inference on any model (issue 20, sections 2 and 3 in Python): encode_image(focus=MODE),
the image-space prompts, per-person answers on real multi-person photos (the packaged portraits pasted
side by side), subjects that mark nothing, and the documented constants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

import focusclip
from focus_arms import CONV_TOWER
from focusclip.errors import UsageError
from focusclip.model.focus import FOCUS_AT_INFERENCE, inference, prompts
from focusclip.predict import ZeroShotClassifier, embed_people
from focusclip.subjects import (
    Subject,
    subjects_from_boxes,
    subjects_from_detection,
    subjects_from_keypoints_file,
)
from portraits import write_composite

LABELS = ["an astronaut", "a navy officer", "a photographer"]
NAMES = ["astronaut", "grace_hopper", "camera"]
IMAGE_MODES = ("crop", "blur", "circle", "dim")


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """A real three-person photo and its people's boxes."""
    return write_composite(tmp_path_factory.mktemp("group"), NAMES)


def _clf(name: str, **over) -> ZeroShotClassifier:
    torch.manual_seed(0)
    model = focusclip.create_model(name, **over).eval()
    tok_name = name.removeprefix("focusclip:") if name.startswith("focusclip:") else name
    return ZeroShotClassifier(model, focusclip.get_tokenizer(tok_name), LABELS, device="cpu")


def _models(request) -> dict[str, str]:
    return {"timm": "clip-tiny", "openclip": f"openclip:local-dir:{request.getfixturevalue('open_clip_dir')}",
            "hfclip": f"hfclip:{request.getfixturevalue('hf_clip_dir')}"}


def _same(a: dict, b: dict) -> bool:
    """Two answers equal up to float rounding (a batch of another size sums in another order)."""
    pa, pb = a["predictions"], b["predictions"]
    return [q["label"] for q in pa] == [q["label"] for q in pb] and all(
        q["score"] == pytest.approx(r["score"], abs=1e-5) for q, r in zip(pa, pb)) and a["box"] == b["box"]


# ------------------------------------------------------------------------------ documented constants
def test_documented_constants():
    assert FOCUS_AT_INFERENCE == ("auto", "attention", "alpha", "pool", "crop", "blur", "circle", "dim")
    assert inference.ATTENTION_STRENGTH == 1.0 and inference.ATTENTION_FLOOR == 0.01
    assert inference.DEFAULT_FOCUS == "blur" and inference.DEFAULT_VIT_FOCUS == "attention"
    assert prompts.CROP_MARGIN == 0.2 and prompts.DIM_FACTOR == 0.5 and prompts.BLUR_SIGMA == 0.05
    assert prompts.CIRCLE_COLOR == (255, 0, 0) and prompts.CIRCLE_WIDTH == 0.01
    assert pytest.approx(math.exp(-0.5)) == prompts.BOX_LEVEL


def test_auto_and_the_modes_each_model_can_use():
    plain = focusclip.create_model("clip-tiny")
    assert inference.resolve_focus(plain, "auto") == "attention"  # a ViT without a mechanism of its own
    assert inference.resolve_focus(focusclip.create_model("clip-tiny", **CONV_TOWER), "auto") == "blur"  # no ViT
    assert inference.focus_modes(plain) == ("auto", "attention", "crop", "blur", "circle", "dim")
    assert inference.resolve_focus(focusclip.create_model("focusclip-tiny"), "auto") == "dim"  # highlight: its a
    for mode in ("attention", "alpha"):
        assert inference.resolve_focus(focusclip.create_model("focusclip-tiny", roi={"mode": mode}), "auto") == mode
    conv = focusclip.create_model("focusclip-tiny", **CONV_TOWER, roi={"mode": "pool"})
    assert inference.resolve_focus(conv, "auto") == "pool"
    with pytest.raises(UsageError, match="'alpha' needs a model trained with roi.mode alpha"):
        inference.resolve_focus(plain, "alpha")
    with pytest.raises(UsageError, match="'attention' needs a ViT vision tower; TimmVisionTower is not one"):
        inference.resolve_focus(conv, "attention")
    with pytest.raises(UsageError, match="unknown focus mode 'glow'"):
        inference.resolve_focus(plain, "glow")
    with pytest.raises(UsageError, match="needs a heatmap"):
        plain.encode_image(torch.zeros(1, 3, 64, 64), focus="blur")


# ------------------------------------------------------------------------------ attention on untouched CLIPs
@pytest.mark.parametrize("tower", ["timm", "openclip", "hfclip"])
def test_attention_on_an_untouched_clip_at_the_default_strength(tower, request, monkeypatch):
    torch.manual_seed(0)
    model = focusclip.create_model(_models(request)[tower]).eval()
    assert not model.roi_enabled
    s = model.image_size
    x, heat = torch.randn(2, 3, s, s), torch.zeros(2, 1, s, s)
    heat[0, :, :, : s // 2] = 1.0
    heat[1, :, :, s // 2:] = 1.0
    with torch.no_grad():
        plain = model.encode_image(x, normalize=True)
        focused = model.encode_image(x, heatmap=heat, focus="attention", normalize=True)
        ref = focusclip.model.focus.AttentionFocus(model.visual, strength_init=1.0)  # the documented default
        want = torch.nn.functional.normalize(model.visual_proj(ref.encode(model.visual, x, heat)), dim=-1)
        torch.testing.assert_close(focused, want, atol=1e-6, rtol=0)
        assert float((focused - plain).abs().max()) > 1e-3
        # two people of photo 0 and one of photo 1: each photo's patch embedding is computed once and
        # shared by its people, with the same features as encoding every person's copy of the photo
        owner, rows = torch.tensor([0, 0, 1]), heat[[0, 1, 1]]
        torch.testing.assert_close(inference.focused_features(model, x, rows, "attention", owner=owner),
                                   model.encode_image(x[owner], heatmap=rows, focus="attention"), atol=1e-5, rtol=0)
        monkeypatch.setattr(inference, "ATTENTION_STRENGTH", 0.0)  # strength 0 is exactly the plain model
        torch.testing.assert_close(model.encode_image(x, heatmap=heat, focus="attention", normalize=True), plain,
                                   atol=1e-6, rtol=0)


def test_a_model_trained_with_attention_uses_its_learned_strengths():
    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "strength_init": 3.0}).eval()
    x, heat = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(x, heatmap=heat, focus="attention"), model.encode_roi(x, heat))
        torch.testing.assert_close(model.encode_image(x, heatmap=heat, focus="auto"), model.encode_roi(x, heat))


# ------------------------------------------------------------------------------ the image-space prompts
def test_the_image_space_prompts_do_what_the_docs_say():
    torch.manual_seed(0)
    model = focusclip.create_model("clip-tiny").eval()
    x = torch.randn(1, 3, 64, 64)
    heat = torch.zeros(1, 1, 64, 64)
    heat[..., 8:40, 16:48] = 1.0  # a box x 16..48, y 8..40
    box = prompts.heatmap_boxes(heat)
    assert box.tolist() == [[16.0, 8.0, 48.0, 40.0]]
    owner = torch.tensor([0])
    # blur: sharp inside the box, torchvision's Gaussian blur outside
    blurred = prompts.blur_inputs(x, box, owner)
    k, px = prompts.blur_sigma(64)
    assert px == pytest.approx(0.05 * 64) and k % 2 == 1
    torch.testing.assert_close(blurred[..., 8:40, 16:48], x[..., 8:40, 16:48])
    torch.testing.assert_close(blurred[..., 50:, :], TF.gaussian_blur(x, [k, k], [px, px])[..., 50:, :])
    # circle: pure red in the normalised input on the ellipse through the box's corners, the rest untouched
    circled = prompts.circle_inputs(x, box, owner, model.image_mean, model.image_std)
    ring = prompts.ellipse_masks(box, (64, 64))[0, 0]
    red = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor(model.image_mean)) / torch.tensor(model.image_std)
    assert ring.any() and torch.allclose(circled[0][:, ring], red[:, None].expand(3, int(ring.sum())))
    torch.testing.assert_close(circled[0][:, ~ring], x[0][:, ~ring])
    # dim: I (a + H (1 - a)) with a = 0.5
    torch.testing.assert_close(prompts.dim_inputs(x, heat, owner), x * (0.5 + heat * 0.5))
    # crop: the box grown by 20 % of its size each side, square, resized
    assert prompts.crop_region([16, 8, 48, 40], (64, 64)) == (1, 9, 46, 46)  # side 32 * 1.4 = 44.8 around (32, 24)
    with torch.no_grad():
        want = {"dim": model.encode_image(x * (0.5 + heat * 0.5)), "blur": model.encode_image(blurred),
                "circle": model.encode_image(circled), "crop": model.encode_image(prompts.crop_inputs(x, box, owner))}
        for mode, feats in want.items():
            torch.testing.assert_close(model.encode_image(x, heatmap=heat, focus=mode), feats)


def test_dim_on_a_highlight_trained_model_uses_its_learned_a():
    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny").eval()
    with torch.no_grad():
        model.focus.alpha.fill_(0.2)
        x, heat = torch.randn(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
        torch.testing.assert_close(model.encode_image(x, heatmap=heat, focus="dim"),
                                   model.encode_image(x * (0.2 + heat * 0.8)))


# ------------------------------------------------------------------------------ one answer per person
@pytest.mark.parametrize("tower", ["timm", "openclip", "hfclip"])
def test_two_people_in_one_photo_get_different_focused_answers(tower, group, request):
    path, boxes = group
    clf = _clf(_models(request)[tower])
    people = [subjects_from_boxes(boxes)]
    for mode in ("attention", *IMAGE_MODES):
        out = clf.predict_people([path], people, focus=mode, topk=3)[0]
        assert out["size"] == [Image.open(path).width, Image.open(path).height]
        assert [p["person"] for p in out["people"]] == [1, 2, 3]
        assert all(p["focused"] and p["focus"] == mode and p["note"] is None for p in out["people"])
        scores = [sorted((q["label"], q["score"]) for q in p["predictions"]) for p in out["people"]]
        whole = sorted((q["label"], q["score"]) for q in out["whole"])
        assert scores[0] != scores[1] and scores[1] != scores[2], mode  # each person their own answer
        assert all(s != whole for s in scores), mode
        assert out["people"][1]["box"] == boxes[1] and out["people"][1]["source"] == "boxes"


def test_the_per_person_answer_is_the_focused_encoding_of_that_person(group):
    """predict_people's batched path equals encoding one person at a time through encode_image(focus=)."""
    path, boxes = group
    clf = _clf("clip-tiny")
    image = Image.open(path).convert("RGB")
    x = clf.transform(image)[None]
    s = clf.model.image_size
    for mode in ("attention", "blur", "circle", "dim"):
        out = clf.predict_people([path], [subjects_from_boxes(boxes)], focus=mode, topk=3)[0]
        for p, box in zip(out["people"], boxes):
            heat = Subject(1, tuple(box)).heatmap((s, s), (image.height, image.width))
            with torch.no_grad():
                f = clf.model.encode_image(x, heatmap=torch.from_numpy(heat)[None, None], focus=mode, normalize=True)
            sims = (f @ clf.class_embeddings.T)[0]
            got = {q["label"]: q["score"] for q in p["predictions"]}
            for j, lab in enumerate(LABELS):
                assert got[lab] == pytest.approx(float(sims[j]), abs=2e-5), (mode, p["person"])
    # crop: from the original photo, the box grown by the margin, then the model's own transform
    out = clf.predict_people([path], [subjects_from_boxes(boxes[:1])], focus="crop")[0]
    top, left, h, w = prompts.crop_region(boxes[0], (image.height, image.width))
    with torch.no_grad():
        f = clf.model.encode_image(clf.transform(image.crop((left, top, left + w, top + h)))[None], normalize=True)
    got = {q["label"]: q["score"] for q in out["people"][0]["predictions"]}
    assert got[LABELS[0]] == pytest.approx(float((f @ clf.class_embeddings.T)[0, 0]), abs=2e-5)


@pytest.mark.parametrize("bad", [[400, 0, 500, 50], [0, 0, 0, 0], [float("nan"), 0, 10, 10], [0, 0, 1e308, 1e308],
                                 [-90, -90, -10, -10]])
def test_a_person_who_marks_nothing_gets_exactly_the_plain_answer(bad, tmp_path):
    from portraits import noise_image

    path = noise_image(tmp_path / "img.png", (100, 80))
    clf = _clf("clip-tiny")
    for mode in ("auto", "attention", "crop"):
        out = clf.predict_people([str(path)], [subjects_from_boxes([[10, 10, 50, 70], bad])], focus=mode)[0]
        nobody = out["people"][1]
        assert nobody["focused"] is False and nobody["note"] and "person 2" in nobody["note"]
        assert nobody["predictions"] == out["whole"]  # exactly the whole image's answer
        assert out["people"][0]["focused"] is True
        text = json.dumps(out, allow_nan=False)  # valid JSON: nothing non-finite
        assert "NaN" not in text and "Infinity" not in text
    assert clf.predict_people([str(path)], [[]])[0]["people"] == []


def test_ask_about_one_person_and_the_detector_and_errors(group):
    path, boxes = group
    clf = _clf("clip-tiny")
    every = clf.predict_people([path], [subjects_from_boxes(boxes)], focus="blur")[0]
    two = clf.predict_people([path], [subjects_from_boxes(boxes)], focus="blur", person=2)[0]
    assert [p["person"] for p in two["people"]] == [2] and _same(two["people"][0], every["people"][1])
    with pytest.raises(UsageError, match="there is no person 5"):
        clf.predict_people([path], [subjects_from_boxes(boxes)], person=5)
    with pytest.raises(UsageError, match="2 subject lists for 1 images"):
        clf.predict_people([path], [[], []])

    class Boxes:  # a detector that finds the three portraits (what focusclip.detect's give: people with boxes)
        def detect(self, image):
            from focusclip.detect import Detection, Person

            return Detection([Person(np.full((16, 2), -1.0), np.zeros(16, int), np.zeros(16), tuple(b), 0.9)
                              for b in boxes])

    found = clf.predict_people([path], focus="blur", detector=Boxes())[0]
    assert [p["source"] for p in found["people"]] == ["detector"] * 3
    assert all(_same(a, b) for a, b in zip(found["people"], every["people"]))
    assert clf.predict_people([path], focus="blur")[0]["people"] == []  # no subjects, no detector: nobody


def test_a_centre_crop_model_still_sees_a_person_at_the_side(tmp_path, open_clip_dir):
    path, boxes = write_composite(tmp_path, ["camera", "astronaut", "grace_hopper"], stem="wide")
    clf = _clf(f"openclip:local-dir:{open_clip_dir}")
    assert clf.transform.resize == "shortest"  # open_clip's own: resize the short side, crop the centre
    out = clf.predict_people([str(path)], [subjects_from_boxes(boxes)], focus="attention")[0]
    assert all(p["focused"] for p in out["people"])  # the outer people lie outside the centre crop


def test_predict_with_a_focus_mode_and_heatmaps(group):
    path, boxes = group
    clf = _clf("clip-tiny")
    im = Image.open(path)
    heat = Subject(1, tuple(boxes[0])).heatmap((im.height, im.width))
    plain = clf.scores([path, path])
    focused = clf.scores([path, path], heatmaps=[heat, None], focus="blur")
    np.testing.assert_allclose(focused[1], plain[1], atol=1e-6)
    assert np.abs(focused[0] - plain[0]).max() > 1e-4
    with pytest.raises(UsageError, match="'pool' needs a model trained"):
        clf.predict([path], heatmaps=[heat], focus="pool")


def test_embed_people_one_row_per_person(group, tmp_path):
    path, boxes = group
    clf = _clf("clip-tiny")
    from portraits import noise_image

    empty = str(noise_image(tmp_path / "nobody.png"))
    emb, rows = embed_people(clf.model, [path, empty], [subjects_from_boxes(boxes), None], focus="circle",
                             device="cpu")
    assert emb.shape == (4, clf.model.embed_dim) and np.isfinite(emb).all()
    assert [(r["image"], r["person"]) for r in rows] == [(str(path), 1), (str(path), 2), (str(path), 3), (empty, 0)]
    assert all(r["focus"] == "circle" and r["focused"] for r in rows[:3])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    people = clf.predict_people([path], [subjects_from_boxes(boxes)], focus="circle")[0]["people"]
    sims = emb[:3] @ clf.class_embeddings.numpy().T
    assert [LABELS[j] for j in sims.argmax(1)] == [p["predictions"][0]["label"] for p in people]


# ------------------------------------------------------------------------------ subjects
def test_subjects_from_files_and_detections(tmp_path):
    joints = np.full((16, 2), -1.0)
    joints[[8, 9, 12, 13]] = [[50, 20], [50, 5], [40, 30], [60, 30]]  # upper neck, head top, shoulders
    f = tmp_path / "kp.json"
    other = np.where(joints >= 0, joints + [100, 0], joints)
    f.write_text(json.dumps({"width": 200, "height": 100, "people": [{"joints": joints.tolist()},
                                                                     {"joints": other.tolist()}]}))
    people = subjects_from_keypoints_file(f, image_size=(50, 100))  # the file's frame is twice the image's
    assert [p.person for p in people] == [1, 2] and all(p.source == "keypoints" and p.uses_joints for p in people)
    assert people[0].box == (20.0, 2.5, 30.0, 15.0) and people[1].box == (70.0, 2.5, 80.0, 15.0)
    heat = people[0].heatmap((50, 100))
    assert heat.dtype == np.float32 and heat.shape == (50, 100) and heat[:, 50:].max() < 1e-3 < heat.max()
    assert people[0].marks_anything((50, 100))
    from focusclip.detect import Detection, Person

    found = subjects_from_detection(Detection([Person(joints, (joints[:, 0] > 0).astype(int), np.ones(16),
                                                      (40.0, 5.0, 60.0, 30.0), 0.9)]))
    assert found[0].source == "detector" and found[0].box == (40.0, 5.0, 60.0, 30.0) and found[0].uses_joints
    assert not Subject(1, (0, 0, 10, 10)).uses_joints
    assert Subject(1, (10, 10, 0, 0)).ordered_box() == (0, 0, 10, 10)  # corners in any order
    nothing = Subject(3, (500, 500, 600, 600))
    assert not nothing.marks_anything((50, 100)) and "lies outside the 100x50 image" in nothing.why_nothing((50, 100))
    assert nothing.heatmap((50, 100)).max() == 0.0
    assert np.isfinite(Subject(1, (0, 0, 1e308, 1e308)).heatmap((50, 100))).all()
    with pytest.raises(UsageError, match="person ids start at 1"):
        Subject(0, (0, 0, 1, 1))


@pytest.mark.parametrize("mode", ["alpha", "pool"])
def test_a_model_trained_with_alpha_or_pool_answers_per_person_with_its_own_mechanism(mode, group):
    from focus_arms import MODE_OVERRIDES

    path, boxes = group
    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny", **MODE_OVERRIDES[mode]).eval()
    with torch.no_grad():  # a mechanism that focuses (fresh ones are exactly plain)
        if mode == "pool":
            model.focus.mix.fill_(1.0)
        else:
            model.focus.alpha_conv.weight.normal_(0, 1.0)
    clf = ZeroShotClassifier(model, focusclip.get_tokenizer("focusclip-tiny"), LABELS, device="cpu")
    out = clf.predict_people([path], [subjects_from_boxes(boxes)], focus="auto")[0]
    assert all(p["focus"] == mode and p["focused"] for p in out["people"])
    image = Image.open(path).convert("RGB")
    x, s = clf.transform(image)[None], model.image_size
    for p, box in zip(out["people"], boxes):
        heat = torch.from_numpy(Subject(1, tuple(box)).heatmap((s, s), (image.height, image.width)))[None, None]
        with torch.no_grad():
            sims = (model.encode_roi(x, heat, normalize=True) @ clf.class_embeddings.T)[0]
        got = {q["label"]: q["score"] for q in p["predictions"]}
        assert [got[lab] for lab in LABELS] == pytest.approx(sims.tolist(), abs=2e-5)
    assert out["people"][0]["predictions"] != out["people"][2]["predictions"]

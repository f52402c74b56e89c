"""Focus mechanisms (roi.mode): plain at initialisation, a marked half pulls the feature, unsupported
towers name their modes, focus at inference through encode_image / predict / eval --focus boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import focusclip
from focus_arms import CONV_TOWER, MODE_OVERRIDES
from focusclip.cli import main
from focusclip.predict import ZeroShotClassifier

ARMS = {mode: ("focusclip-tiny", MODE_OVERRIDES[mode]) for mode in ("attention", "alpha", "pool")}


def _hf(hf_clip_dir) -> str:
    return f"focusclip:hfclip:{hf_clip_dir}"


# ------------------------------------------------------------------------------ plain at initialisation
@pytest.mark.parametrize("mode,tower", [(m, t) for m in ("attention", "alpha") for t in ("timm", "openclip", "hfclip")]
                         + [("pool", "timm")])
def test_a_fresh_or_zero_strength_mechanism_is_the_plain_model(mode, tower, request):
    if mode == "pool":
        name, over = ARMS["pool"]
    else:
        name = {"timm": "focusclip-tiny", "openclip": "focusclip-openclip-tiny"}.get(tower) \
            or _hf(request.getfixturevalue("hf_clip_dir"))
        over = {"roi": {"mode": mode, **({"strength_init": 0.0} if mode == "attention" else {})}}
    torch.manual_seed(0)
    model = focusclip.create_model(name, **over).eval()
    s = model.image_size
    images, heat = torch.randn(2, 3, s, s), torch.rand(2, 1, s, s)
    with torch.no_grad():
        plain = model.encode_image(images, normalize=True)
        torch.testing.assert_close(model.encode_roi(images, heat, normalize=True), plain, atol=1e-6, rtol=0)
        torch.testing.assert_close(model.encode_image(images, heatmap=heat, normalize=True), plain, atol=1e-6,
                                   rtol=0)
    assert model.focus_at_inference


# ------------------------------------------------------------------------------ a marked half
def _half_pairs(s: int, n: int, seed: int):
    """Images whose halves differ (smooth colour vs noise, sides drawn at random), the heatmap of one
    half, and that half alone / the other half alone (the rest at the mean, 0 after normalisation)."""
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.randn(n, 3, 4, 4, generator=g) * 1.5, size=(s, s), mode="bilinear")
    noise = torch.randn(n, 3, s, s, generator=g)
    left = torch.zeros(n, 1, s, s)
    left[..., : s // 2] = 1
    swap = torch.rand(n, 1, 1, 1, generator=g) < 0.5
    image = torch.where(swap, noise, smooth) * left + torch.where(swap, smooth, noise) * (1 - left)
    mark = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, left, 1 - left)
    return image, mark, image * mark, image * (1 - mark)


def _focusing(model, mode: str):
    """The mechanism set to focus (what training moves it towards): attention strength 4; the pooling
    fully heatmap-weighted; the alpha convolution adding one large vector to unmarked patches (a
    constant that drowns their content) and nothing to marked ones."""
    with torch.no_grad():
        if mode == "attention":
            model.focus.strength.fill_(4.0)
        elif mode == "pool":
            model.focus.mix.fill_(1.0)
        else:
            conv = model.focus.alpha_conv
            u = torch.randn(conv.out_channels, generator=torch.Generator().manual_seed(1))
            u = 50.0 * u / u.norm() * u.numel() ** 0.5
            conv.bias.copy_(u)
            conv.weight.copy_((-u / (conv.kernel_size[0] * conv.kernel_size[1])).view(-1, 1, 1, 1).expand_as(conv.weight))
    return model.eval()


@pytest.mark.parametrize("mode", ["attention", "alpha", "pool"])
def test_a_heatmap_on_one_half_pulls_the_feature_to_that_half(mode):
    name, over = ARMS[mode]
    torch.manual_seed(0)
    model = _focusing(focusclip.create_model(name, **over), mode)
    image, mark, own, other = _half_pairs(model.image_size, 24, 7)
    with torch.no_grad():
        f_own, f_other = model.encode_image(own, normalize=True), model.encode_image(other, normalize=True)
        plain = model.encode_image(image, normalize=True)
        focused = model.encode_image(image, heatmap=mark, normalize=True)
        flipped = model.encode_image(image, heatmap=1 - mark, normalize=True)
    margin = lambda f: (f * f_own).sum(-1) - (f * f_other).sum(-1)  # noqa: E731 - closer to own than to other
    gain = margin(focused) - margin(plain)
    assert float(gain.mean()) > 0.02 and float((gain > 0).float().mean()) >= 0.6, gain  # on average, in most pairs
    assert float((focused * f_other).sum(-1).mean()) < float((plain * f_other).sum(-1).mean())  # away from the other
    assert float((margin(flipped) - margin(plain)).mean()) < 0  # the other half marked: the other way


# ------------------------------------------------------------------------------ which towers
def test_a_tower_that_cannot_do_a_mode_names_itself_and_its_modes():
    with pytest.raises(ValueError, match="TimmVisionTower cannot do focus mode 'pool'; it supports: "
                                         "highlight, alpha, attention"):
        focusclip.create_model("focusclip-tiny", roi={"mode": "pool"})
    with pytest.raises(ValueError, match="cannot do focus mode 'attention'; it supports: highlight, pool"):
        focusclip.create_model("focusclip-tiny", **CONV_TOWER, roi={"mode": "attention"})
    with pytest.raises(ValueError, match="roi.last_blocks must be in 0..6"):
        focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "last_blocks": 9})
    with pytest.raises(ValueError, match=r"unknown key.*alpha_init"):  # switching mode inside one override
        focusclip.create_model("focusclip-tiny", roi={"mode": "alpha", "alpha_init": 0.3})


def test_last_blocks_biases_only_the_last_blocks():
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "last_blocks": 2}).eval()
    assert model.focus.strength.shape == (2,)
    seen = []
    hooks = [b.attn.register_forward_pre_hook(lambda m, a, k: seen.append(k.get("attn_mask") is not None),
                                              with_kwargs=True) for b in model.visual.trunk.blocks]
    with torch.no_grad():
        model.encode_image(torch.randn(1, 3, 64, 64), heatmap=torch.rand(1, 1, 64, 64))
    for h in hooks:
        h.remove()
    assert seen == [False] * 4 + [True] * 2  # the attention of the last two blocks got the bias


# ------------------------------------------------------------------------------ focus at inference
def test_without_a_heatmap_or_a_training_only_focus_every_model_is_plain_clip():
    torch.manual_seed(0)
    x, heat = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    for name in ("focusclip-tiny", "clip-tiny"):  # highlight trains a branch only; the baseline has none
        model = focusclip.create_model(name).eval()
        assert not model.focus_at_inference
        with torch.no_grad():
            torch.testing.assert_close(model.encode_image(x, heatmap=heat), model.encode_image(x))
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention"}).eval()
    with torch.no_grad():
        assert not torch.allclose(model.encode_image(x, heatmap=heat), model.encode_image(x))


def test_predict_asks_about_the_marked_person(tmp_path, capsys):
    torch.manual_seed(3)
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "strength_init": 4.0}).eval()
    tok = focusclip.get_tokenizer("focusclip-tiny")
    focusclip.save_model(model, tmp_path / "model", tok)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"img{i}.jpg"))
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(paths[-1])
    labels = ["running", "sitting", "jumping"]
    clf = ZeroShotClassifier(model, tok, labels, device="cpu")
    left = np.zeros((80, 100), np.float32)
    left[:, :50] = 1.0
    plain = clf.scores(paths)
    mixed = clf.scores(paths, heatmaps=[left, None])
    np.testing.assert_allclose(mixed[1], plain[1], atol=1e-6)  # no heatmap: plain
    assert np.abs(mixed[0] - plain[0]).max() > 1e-4             # a heatmap: focused
    assert clf.predict(paths, heatmaps=[left, None])[0]["predictions"][0]["score"] == pytest.approx(mixed[0].max())

    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[0, 0, 50, 80]]))
    assert main(["predict", paths[0], "--model", str(tmp_path / "model"), "--labels", ",".join(labels), "--json",
                 "--boxes", str(boxes), "--overlay-dir", str(tmp_path), "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    person = out["people"][0]
    assert person["focused"] is True and person["focus"] == "attention" and (tmp_path / "img0_roi.png").exists()
    from focusclip.subjects import subjects_from_boxes

    want = clf.predict_people(paths[:1], [subjects_from_boxes([[0, 0, 50, 80]])])[0]["people"][0]["predictions"]
    assert person["predictions"][0]["score"] == pytest.approx(want[0]["score"], abs=1e-5)
    assert out["whole"][0]["score"] == pytest.approx(float(plain[0].max()), abs=1e-5)


def test_eval_focus_boxes_uses_the_subject_boxes_instead_of_crops(tmp_path):
    from focusclip.data.synthetic import generate_world
    from focusclip.model import eval_transform
    from focusclip.zeroshot.datasets.generic import load_synthetic
    from focusclip.zeroshot.evaluate import evaluate
    from focusclip.zeroshot.tasks import resolve_tasks

    world = tmp_path / "world"
    generate_world(world, n=4, seed=0, image_size=64, eval_n=8, show_progress=False)
    samples = load_synthetic(world, "eval").samples
    assert all(s.subject and s.box is None for s in samples)  # the annotated subjects, never a crop
    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny", roi={"mode": "attention", "strength_init": 4.0})
    tok, tf, tasks = focusclip.get_tokenizer("focusclip-tiny"), eval_transform(model), resolve_tasks(["synth-age"])
    out = tmp_path / "r.json"
    plain = evaluate(model, tok, tf, tasks, {"synthetic": str(world)}, workers=0, out=out)
    focused = evaluate(model, tok, tf, tasks, {"synthetic": str(world)}, workers=0, out=out, focus="boxes")
    assert focused["model"] == plain["model"] + "+focus-boxes"
    assert set(focused["results"]) == {f"synth-age@{plain['model']}", f"synth-age@{focused['model']}"}
    assert focused["results"][f"synth-age@{focused['model']}"]["focus"] == "boxes"
    rc = main(["eval", "--model", "focusclip-tiny", "--tasks", "synth-age", "--data-root", str(world), "--focus",
               "boxes", "--workers", "0", "--out", str(tmp_path / "cli.json"), "--no-confusion"])
    assert rc == 0 and "+focus-boxes" in (tmp_path / "cli.json").read_text()

"""Issue 21, "Tests that pin what the docs promise": the documented constants and boundaries that two
surviving mutations showed no test pinned (the attention bias log(f + (1 - f) h), the logit-scale clamp
at log 100), and the others of the same kind (NT-Xent's temperature, the softmax scale 1/t, the highlight
formula, the heatmap's sigma rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import focusclip
from focusclip.model.focus.layout import vit_layout


@pytest.fixture(scope="module")
def attention_model():
    torch.manual_seed(0)
    return focusclip.create_model("focusclip-openclip-tiny", roi={"mode": "attention"}).eval()


# ------------------------------------------------------------------------------ attention bias
def test_attention_bias_is_exactly_zero_where_the_heatmap_is_one_and_log_f_where_zero(attention_model):
    """docs/focus.md, attention.py: b = s log(f + (1 - f) h): 0 at h = 1, log f at h = 0 (f = 0.01)."""
    focus = attention_model.focus
    assert focus.floor == 0.01
    layout = vit_layout(attention_model.visual)
    size = attention_model.image_size
    image = torch.zeros(3, 3, size, size)
    heat = torch.stack([torch.ones(size, size), torch.zeros(size, size), torch.full((size, size), 0.5)])[:, None]
    bias = focus.patch_bias(layout, image, heat)
    assert torch.equal(bias[0], torch.zeros_like(bias[0]))  # log(f + h) would give log 1.01 here
    torch.testing.assert_close(bias[1], torch.full_like(bias[1], math.log(0.01)), atol=1e-6, rtol=0)
    torch.testing.assert_close(bias[2], torch.full_like(bias[2], math.log(0.01 + 0.99 * 0.5)), atol=1e-6, rtol=0)


def test_attention_with_a_full_heatmap_is_the_plain_tower(attention_model):
    """A heatmap of ones biases nothing: the focused features equal the plain ones."""
    torch.manual_seed(1)
    size = attention_model.image_size
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        plain = attention_model.encode_image(images)
        full = attention_model.encode_image(images, heatmap=torch.ones(2, 1, size, size))
        none = attention_model.encode_image(images, heatmap=torch.zeros(2, 1, size, size))
    torch.testing.assert_close(full, plain, atol=1e-6, rtol=0)
    assert not torch.allclose(none, plain, atol=1e-4)  # and an empty one does change them


def test_attention_mask_biases_only_patch_keys_of_the_class_query(attention_model):
    focus = attention_model.focus
    layout = vit_layout(attention_model.visual)
    cols = torch.tensor([[-1.0, -2.0, 0.0, -3.0]])
    mask = focus.attention_mask(layout, cols, torch.tensor(2.0))
    m = mask.reshape(-1, *mask.shape[-2:])[0]
    p = layout.num_prefix
    torch.testing.assert_close(m[0, p:], 2.0 * cols[0])           # strength x bias on the patch keys
    assert torch.equal(m[0, :p], torch.zeros(p)) and torch.equal(m[p:], torch.zeros_like(m[p:]))


# ------------------------------------------------------------------------------ logit scale
@pytest.mark.parametrize("scale,expected", [(1000.0, 100.0), (100.0, 100.0), (50.0, 50.0), (1 / 0.07, 1 / 0.07)])
def test_logit_scale_is_clamped_at_log_100(scale, expected):
    """docs/method.md and CLIP: exp(logit_scale) never exceeds 100, in training and in zero-shot softmax."""
    from focusclip.predict import softmax_scale

    model = focusclip.create_model("clip-tiny")
    with torch.no_grad():
        model.logit_scale.fill_(math.log(scale))
        out = model(torch.zeros(2, 3, model.image_size, model.image_size),
                    focusclip.get_tokenizer("clip-tiny")(["a", "b"]))
    assert float(out["logit_scale"]) == pytest.approx(expected, rel=1e-5)
    assert softmax_scale(model) == pytest.approx(expected, rel=1e-5)


def test_fresh_models_start_at_clips_temperature():
    assert float(focusclip.create_model("clip-tiny").logit_scale) == pytest.approx(math.log(1 / 0.07))


# ------------------------------------------------------------------------------ NT-Xent and 1/t
def test_nt_xent_default_temperature_is_the_papers_half():
    from focusclip.loss import FocusCLIPLoss, nt_xent

    torch.manual_seed(0)
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    u = torch.nn.functional.normalize(torch.cat([a, b]), dim=-1)
    sim = u @ u.T / 0.5
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(4) + 4, torch.arange(4)])
    expected = torch.nn.functional.cross_entropy(sim, targets)
    torch.testing.assert_close(nt_xent(a, b), expected)
    assert FocusCLIPLoss().temperature == 0.5 and FocusCLIPLoss().name == "ntxent"


def test_softmax_scale_of_an_nt_xent_model_is_one_over_t():
    """docs: an NT-Xent-trained model's zero-shot softmax uses 1/t (the paper's t = 0.5: a scale of 2)."""
    from focusclip.predict import softmax_scale

    model = focusclip.create_model("clip-tiny")
    assert softmax_scale(model, {"loss": {"name": "ntxent", "temperature": 0.5}}) == 2.0
    assert softmax_scale(model, {"loss": {"name": "ntxent", "temperature": 0.1}}) == pytest.approx(10.0)


# ------------------------------------------------------------------------------ highlight
def test_highlight_keeps_the_subject_and_dims_the_rest_to_alpha():
    """I * (a + H (1 - a)): unchanged where H = 1, a * I where H = 0; a clamped to [0, 1] with 'clamp'."""
    from focusclip.model.focus.highlight import HighlightFocus

    focus = HighlightFocus(alpha_init=0.5)
    image = torch.full((1, 3, 4, 4), 2.0)
    heat = torch.zeros(1, 1, 4, 4)
    heat[..., :2] = 1.0
    heat[..., 2] = 0.25
    out = focus.highlight(image, heat)
    assert torch.equal(out[..., :2], image[..., :2]) and torch.equal(out[..., 3], torch.full_like(out[..., 3], 1.0))
    torch.testing.assert_close(out[..., 2], torch.full_like(out[..., 2], 2.0 * (0.5 + 0.25 * 0.5)))
    with torch.no_grad():
        focus.alpha.fill_(1.7)
    assert float(focus.mixing_alpha()) == 1.0
    assert float(HighlightFocus(alpha_init=1.7, alpha_constraint="none").mixing_alpha()) == pytest.approx(1.7)


# ------------------------------------------------------------------------------ heatmap sigma rules
def test_heatmap_gaussian_is_the_box_of_visible_points_with_half_sides_as_sigmas():
    """heatmaps.py: centre of the box of the visible points, sigma = half its width / height, at pixel
    centres x = i; fewer than two visible points give nothing; sigmas at least min_sigma (1 px)."""
    from focusclip.heatmaps import points_heatmap

    hm = points_heatmap([[0, 0], [20, 10], [40, 40]], [1, 1, 0], size=(30, 40))
    assert hm[5, 10] == pytest.approx(1.0)                       # the centre (10, 5)
    assert hm[5, 20] == pytest.approx(math.exp(-0.5), rel=1e-5)  # one sigma (10 px) right
    assert hm[10, 10] == pytest.approx(math.exp(-0.5), rel=1e-5)  # one sigma (5 px) down
    assert hm[5, 30] == pytest.approx(math.exp(-2.0), rel=1e-5)
    assert not points_heatmap([[5, 5], [9, 9]], [1, 0], size=(16, 16)).any()  # one visible point: nothing
    thin = points_heatmap([[8, 2], [8, 12]], None, size=(16, 16))             # zero width: sigma_x = 1 px
    assert thin[7, 9] == pytest.approx(math.exp(-0.5), rel=1e-5) and np.isfinite(thin).all()
    scaled = points_heatmap([[0, 0], [40, 20]], None, size=(30, 40), src_size=(60, 80))  # coordinates halved
    assert scaled[5, 10] == pytest.approx(1.0) and scaled[5, 20] == pytest.approx(math.exp(-0.5), rel=1e-5)

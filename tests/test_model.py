"""The FocusCLIP module: encoders, ROI highlighting, pooling, freezing."""

from __future__ import annotations

import pytest
import torch

import focusclip


def test_forward_returns_normalised_features_of_every_branch(tiny_focus):
    model, _, _, tok = tiny_focus
    images = torch.randn(3, 3, 64, 64)
    heat = torch.rand(3, 1, 64, 64)
    out = model(images, tok(["a", "b c", "d e f"]), heatmap=heat)
    assert set(out) == {"image_features", "text_features", "roi_features", "logit_scale", "alpha"}
    for k in ("image_features", "text_features", "roi_features"):
        assert out[k].shape == (3, model.embed_dim)
        torch.testing.assert_close(out[k].norm(dim=-1), torch.ones(3))
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-4)
    assert out["alpha"].item() == pytest.approx(0.5)


def test_encode_normalize_flag(tiny_focus):
    model, _, _, tok = tiny_focus
    model.eval()
    raw = model.encode_text(tok(["a person running"]))
    unit = model.encode_text(tok(["a person running"]), normalize=True)
    torch.testing.assert_close(unit, raw / raw.norm(dim=-1, keepdim=True))


def test_highlight_formula(tiny_focus):
    model, _, _, _ = tiny_focus
    image = torch.full((1, 3, 4, 4), 2.0)
    heat = torch.zeros(1, 4, 4)
    heat[0, 0, 0] = 1.0
    heat[0, 1, 1] = 0.5
    with torch.no_grad():
        model.focus.alpha.fill_(0.25)
        out = model.focus.highlight(image, heat)
        model.focus.alpha.fill_(0.5)
    assert out[0, :, 0, 0].tolist() == [2.0] * 3            # H=1 keeps the pixel
    assert out[0, 0, 1, 1].item() == pytest.approx(2.0 * (0.25 + 0.5 * 0.75))
    assert out[0, 0, 3, 3].item() == pytest.approx(2.0 * 0.25)  # H=0 dims to a


def test_alpha_clamped_by_default_and_free_in_paper_preset():
    model = focusclip.create_model("focusclip-tiny")
    with torch.no_grad():
        model.focus.alpha.fill_(1.7)
    assert model.focus.mixing_alpha().item() == 1.0
    cfg = focusclip.get_model_config("focusclip-vit-b16-bert")
    assert cfg["roi"]["alpha_constraint"] == "none" and cfg["roi"]["shared"] is True


def test_text_padding_does_not_change_the_embedding(tiny_focus):
    """Masked mean pooling: a text alone and padded inside a batch with a longer one embed the same."""
    model, _, _, tok = tiny_focus
    model.eval()
    alone = model.encode_text(tok(["a person"]))
    batch = model.encode_text(tok(["a person", "a person running quickly across a wide green field"]))
    torch.testing.assert_close(alone[0], batch[0], rtol=1e-5, atol=1e-5)
    ids = tok(["a person", "a person running quickly"])
    torch.testing.assert_close(model.encode_text(ids), model.encode_text(ids["input_ids"]))


def test_cls_pooling_option():
    model = focusclip.create_model("clip-tiny", text={"pooling": "cls"}).eval()
    tok = focusclip.get_tokenizer("clip-tiny")
    hidden = model.text.encoder(**tok(["hello world"])).last_hidden_state
    torch.testing.assert_close(model.text(**tok(["hello world"])), hidden[:, 0])


def test_separate_roi_tower_has_its_own_weights():
    model = focusclip.create_model("focusclip-tiny", roi={"shared": False})
    shared = {id(p) for p in model.visual.parameters()}
    assert all(id(p) not in shared for p in model.roi_visual.parameters())
    out = model(torch.randn(2, 3, 64, 64), torch.tensor([[101, 102], [101, 102]]), torch.rand(2, 1, 64, 64))
    out["roi_features"].sum().backward()
    assert model.roi_visual_proj.weight.grad is not None and model.visual_proj.weight.grad is None


def test_clip_baseline_has_no_roi_branch():
    model = focusclip.create_model("clip-tiny")
    out = model(torch.randn(2, 3, 64, 64), torch.tensor([[101, 102], [101, 102]]), torch.rand(2, 1, 64, 64))
    assert "roi_features" not in out
    assert not hasattr(model, "alpha")


def test_lock_towers():
    model = focusclip.create_model("focusclip-tiny")
    model.lock_text_tower(unlocked_layers=1)
    layers = model.text.encoder.encoder.layer
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[-1].parameters())
    assert not model.text.encoder.embeddings.word_embeddings.weight.requires_grad
    model.lock_image_tower()
    assert not any(p.requires_grad for p in model.visual.parameters())
    assert model.visual_proj.weight.requires_grad and model.text_proj.weight.requires_grad


def test_a_model_saved_by_0_1_loads_with_its_highlight_scalar(tmp_path):
    """0.1 kept the highlight scalar on the model (key ``alpha``); it loads into ``focus.alpha``."""
    from safetensors.torch import load_file, save_file

    model = focusclip.create_model("focusclip-tiny")
    with torch.no_grad():
        model.focus.alpha.fill_(0.3)
    focusclip.save_model(model, tmp_path / "old", focusclip.get_tokenizer("focusclip-tiny"))
    weights = tmp_path / "old" / "model.safetensors"
    state = load_file(weights)
    state["alpha"] = state.pop("focus.alpha")
    save_file(state, weights)
    loaded = focusclip.load_model(tmp_path / "old")
    assert loaded.focus.alpha.item() == pytest.approx(0.3)
    state["alpha"] = torch.tensor(0.4)
    state["focus.alpha"] = torch.tensor(0.3)  # both: not an old file, a broken one
    save_file(state, weights)
    with pytest.raises(ValueError, match="alpha"):
        focusclip.load_model(tmp_path / "old")

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


# ------------------------------------------------------------ text batches in length groups (issue 23)
def _padded(lengths: list[int], t: int | None = None) -> torch.Tensor:
    mask = torch.zeros(len(lengths), t or max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return mask


def test_length_groups_cover_every_row_and_cut_only_padding():
    from focusclip.model.towers.hf_text import MIN_GROUP_SAVING, length_groups

    assert MIN_GROUP_SAVING == 0.1
    lengths = [230, 40, 120, 60, 200, 35, 90, 150, 45, 70, 180, 50, 100, 38, 65, 110]
    groups = length_groups(_padded(lengths), 4)
    rows = torch.cat([r for r, _ in groups])
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # every row exactly once
    assert 2 <= len(groups) <= 4 and all(len(r) >= 4 for r, _ in groups)
    for r, end in groups:
        assert end == max(lengths[i] for i in r.tolist())  # cut to the group's longest caption, no further
    assert sum(len(r) * end for r, end in groups) <= 0.9 * len(lengths) * max(lengths)
    # one piece when nothing is saved: equal lengths, left padding, max_groups 1 without extra padding
    assert length_groups(_padded([50] * 8), 4) is None
    assert length_groups(_padded([50, 10, 20, 30]).flip(1), 4) is None
    assert length_groups(_padded(lengths), 1) is None
    # ... but a batch padded beyond its longest caption is cut even in one piece
    ((rows1, end1),) = length_groups(_padded([20, 10, 15, 12], t=64), 1)
    assert end1 == 20 and sorted(rows1.tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("train", [False, True])
def test_length_groups_give_the_same_features_and_gradients(train):
    torch.manual_seed(0)
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    model = focusclip.create_model("clip-tiny", text={"hf_config": {
        **focusclip.get_model_config("clip-tiny")["text"]["hf_config"], **no_dropout}})
    model.train(train)
    tok = focusclip.get_tokenizer("clip-tiny")
    words = ["a", "person", "running", "quickly", "across", "a", "wide", "green", "field", "with", "a", "red", "ball", "in", "hand"]
    texts = [" ".join(words[: 1 + (7 * i) % len(words)]) for i in range(12)]
    batch = tok(texts)
    from focusclip.model.towers.hf_text import length_groups

    assert len(length_groups(batch["attention_mask"], 4)) >= 2  # the batch is really split
    tower = model.text
    results = []
    for groups in (1, 4):
        tower.length_groups = groups
        model.zero_grad(set_to_none=True)
        feats = model.encode_text(batch)
        feats.square().sum().backward()
        results.append((feats.detach(), [p.grad.clone() for p in tower.parameters() if p.grad is not None]))
    (a, ga), (b, gb) = results
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert len(ga) == len(gb) > 0
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)

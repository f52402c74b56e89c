"""Registry, creation of every registered model, offline packaged weights, save/load, tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import focusclip
from focusclip.model.towers import WeightsNotFoundError, load_state_dict_file, package_path

REGISTERED = ["clip-lite0-minilm", "clip-tiny", "clip-vit-b16-bert",
              "focusclip-lite0-minilm", "focusclip-tiny", "focusclip-vit-b16-bert"]


def test_registry_lists_the_documented_models():
    assert set(REGISTERED) <= set(focusclip.list_models())
    with pytest.raises(ValueError, match="Registered"):
        focusclip.get_model_config("no-such-model")


@pytest.mark.slow
@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_model_encodes_and_backpropagates(name):
    model, train_tf, eval_tf = focusclip.create_model_and_transforms(name, pretrained="none")
    tok = focusclip.get_tokenizer(name)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    sample = train_tf.apply(img, heatmap=np.ones((90, 120), np.float32))
    images = torch.stack([eval_tf(img), sample["image"]])
    out = model(images, tok(["a photo of a person running", "two people sitting"]),
                heatmap=torch.stack([sample["heatmap"]] * 2))
    loss = focusclip.FocusCLIPLoss()(out)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert ("roi_features" in out) == name.startswith("focusclip")
    assert model.visual_proj.weight.grad is not None and model.text_proj.weight.grad is not None
    if not name.startswith("focusclip"):
        return
    # the ROI branch really looks at the heatmap: two different heatmaps give two different features, and
    # a heatmap of ones (nothing dimmed) gives exactly the plain image features
    model.eval()
    s = model.image_size
    left, right = torch.zeros(1, 1, s, s), torch.zeros(1, 1, s, s)
    left[..., : s // 2], right[..., s // 2:] = 1.0, 1.0
    image = images[:1]
    with torch.no_grad():
        z_left, z_right = model.encode_roi(image, left), model.encode_roi(image, right)
        assert (z_left - z_right).abs().max() > 1e-3
        torch.testing.assert_close(model.encode_roi(image, torch.ones(1, 1, s, s)), model.encode_image(image))


def test_offline_default_loads_packaged_weights(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = focusclip.create_model("clip-lite0-minilm")
    lite = load_state_dict_file(package_path("package:efficientnet-lite0"))
    torch.testing.assert_close(model.visual.trunk.conv_stem.weight, lite["_conv_stem.weight"])
    torch.testing.assert_close(model.visual.trunk.bn2.running_var, lite["_bn1.running_var"])
    minilm = load_file(str(package_path("package:all-minilm-l6-v2") / "model.safetensors"))
    key = next(k for k in minilm if k.endswith("embeddings.word_embeddings.weight"))
    torch.testing.assert_close(model.text.encoder.embeddings.word_embeddings.weight, minilm[key])


def test_packaged_text_encoder_gives_sentence_similarity():
    """The packaged MiniLM weights are meaningful: paraphrases are closer than unrelated sentences."""
    model = focusclip.create_model("clip-lite0-minilm").eval()
    tok = focusclip.get_tokenizer("clip-lite0-minilm")
    with torch.no_grad():
        f = model.text(**tok(["a person is running", "someone runs fast", "a bowl of soup on a table"]))
    f = torch.nn.functional.normalize(f, dim=-1)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.2


def test_paper_model_offline_without_weights_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="pretrained='none'"):
        focusclip.create_model("clip-vit-b16-bert")


def test_save_and_load_roundtrip(tmp_path, tiny_focus):
    model, _, eval_tf, tok = tiny_focus
    model.eval()
    focusclip.save_model(model, tmp_path / "m", tok)
    loaded = focusclip.load_model(tmp_path / "m")
    assert not loaded.training
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(loaded.encode_image(x), model.encode_image(x))
    tok2 = focusclip.get_tokenizer(tmp_path / "m" if False else str(tmp_path / "m"))
    assert tok2.context_length == tok.context_length
    torch.testing.assert_close(loaded.encode_text(tok2(["a kid jumping"])), model.encode_text(tok(["a kid jumping"])))
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["format"] == "focusclip" and saved["model"]["vision"]["mean"] == list(model.image_mean)


def test_load_is_strict_and_lists_keys(tmp_path, tiny_focus):
    model, _, _, tok = tiny_focus
    path = focusclip.save_model(model, tmp_path / "m", tok)
    state = load_file(str(path / "model.safetensors"))
    state.pop("visual_proj.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError) as e:
        focusclip.load_model(path)
    assert "missing keys (1): visual_proj.weight" in str(e.value)
    assert "unexpected keys (1): extra.weight" in str(e.value)


def test_load_rejects_a_foreign_directory(tmp_path):
    (tmp_path / "config.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a focusclip model"):
        focusclip.load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        focusclip.load_model(tmp_path / "nothing")


def test_add_model_config(tmp_path):
    cfg = focusclip.get_model_config("clip-tiny")
    cfg["embed_dim"] = 16
    (tmp_path / "my-tiny.json").write_text(json.dumps(cfg))
    assert focusclip.add_model_config(tmp_path / "my-tiny.json") == ["my-tiny"]
    assert focusclip.create_model("my-tiny").embed_dim == 16
    (tmp_path / "bad.json").write_text('{"embed_dim": 3}')
    with pytest.raises(ValueError, match="missing 'vision'"):
        focusclip.add_model_config(tmp_path / "bad.json")


def test_tokenizer_pads_to_longest_and_counts_truncation():
    tok = focusclip.get_tokenizer("clip-tiny", context_length=8)
    out = tok(["hi", "a b c"])
    assert out["input_ids"].shape == (2, 5)  # [CLS] a b c [SEP]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    long = tok(["one two three four five six seven eight nine ten", "short"])
    assert long["input_ids"].shape == (2, 8) and tok.num_truncated == 1
    padded = focusclip.get_tokenizer("clip-tiny", context_length=16, pad_to_max=True)(["hi"])
    assert padded["input_ids"].shape == (1, 16)

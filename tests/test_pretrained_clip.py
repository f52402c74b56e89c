"""Whole CLIP models as towers (issue 12): wrapping parity with open_clip and transformers, names and bad
input, save / load, export round trips, long texts, WiSE-FT, and the CLI on untouched CLIPs. Every
checkpoint is a tiny random-init model written locally and loaded through the code path a downloaded one
takes (open_clip's local-dir layout, a file for a built-in architecture, a save_pretrained folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import focusclip
from clip_checkpoints import TINY_OPEN_CLIP, register_open_clip_arch, write_hf_clip_dir, write_open_clip_dir
from focusclip.cli import main
from focusclip.model.long_text import SENTENCE_KEY, slice_texts, stretch_positions
from focusclip.model.merge import ArchitectureMismatchError, interpolate_states, merge_models
from focusclip.model.towers.weights import WeightsMismatchError, WeightsNotFoundError

TEXTS = ["a person running", "a photo of a man sitting on a chair. he waves with his left hand! " * 6]
ATOL = 1e-5


def _perturb(model: torch.nn.Module, seed: int = 1, scale: float = 0.02) -> None:
    """Stand-in for fine-tuning: move every floating-point weight a little."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


# ------------------------------------------------------------------------------ parity
def test_open_clip_local_dir_wrapping_changes_nothing(open_clip_dir):
    import open_clip

    ref, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{open_clip_dir}")
    ref.eval()
    ref_tok = open_clip.get_tokenizer(f"local-dir:{open_clip_dir}")
    model, _, eval_tf = focusclip.create_model_and_transforms(f"openclip:local-dir:{open_clip_dir}")
    model.eval()
    tok = focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}")
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), ref.encode_image(images), atol=ATOL, rtol=0)
        torch.testing.assert_close(model.encode_text(tok(TEXTS)), ref.encode_text(ref_tok(TEXTS)), atol=ATOL, rtol=0)
    # the same ids, the long text cut the way open_clip cuts it
    ids = tok(TEXTS)["input_ids"]
    assert torch.equal(ids[1], ref_tok(TEXTS)[1]) and ids[1, -1] == 49407
    assert torch.equal(ids[0][ids[0] != 0], ref_tok(TEXTS)[0][ref_tok(TEXTS)[0] != 0])
    # the checkpoint's logit scale, preprocessing and projection (no extra layers)
    assert float(model.logit_scale) == pytest.approx(float(ref.logit_scale))
    assert model.image_mean == pytest.approx((0.5, 0.4, 0.3)) and model.image_std == pytest.approx((0.2, 0.25, 0.3))
    assert model.image_size == 32 and eval_tf.resize == "shortest" and model.embed_dim == 32
    assert not any(k.startswith(("visual_proj", "text_proj")) for k in model.state_dict())
    # issue 13's hooks: open_clip's blocks and patch embedding stay reachable
    assert len(model.visual.visual.transformer.resblocks) == 2 and model.visual.visual.conv1.kernel_size == (8, 8)


def test_open_clip_arch_with_checkpoint_file_and_quick_gelu(tmp_path):
    import open_clip

    ckpt = register_open_clip_arch(tmp_path, "fc-test-tiny-a")
    ref = open_clip.create_model("fc-test-tiny-a", pretrained=str(ckpt)).eval()
    model = focusclip.create_model(f"openclip:fc-test-tiny-a@{ckpt}").eval()
    tok = focusclip.get_tokenizer(f"openclip:fc-test-tiny-a@{ckpt}")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), ref.encode_image(images), atol=ATOL, rtol=0)
        torch.testing.assert_close(model.encode_text(tok(TEXTS)),
                                   ref.encode_text(open_clip.get_tokenizer("fc-test-tiny-a")(TEXTS)), atol=ATOL, rtol=0)
    assert model.config["vision"]["resize"] == "shortest" and model.config["text"]["context_length"] == 77


def test_hf_clip_wrapping_changes_nothing(hf_clip_dir):
    from transformers import AutoTokenizer, CLIPModel

    ref = CLIPModel.from_pretrained(str(hf_clip_dir)).eval()
    ref_tok = AutoTokenizer.from_pretrained(str(hf_clip_dir))
    model, _, eval_tf = focusclip.create_model_and_transforms(f"hfclip:{hf_clip_dir}")
    model.eval()
    tok = focusclip.get_tokenizer(f"hfclip:{hf_clip_dir}")
    images = torch.randn(2, 3, 32, 32)
    enc = ref_tok(TEXTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        img = ref.get_image_features(pixel_values=images)
        txt = ref.get_text_features(**enc)
        img, txt = getattr(img, "pooler_output", img), getattr(txt, "pooler_output", txt)
        torch.testing.assert_close(model.encode_image(images), img, atol=ATOL, rtol=0)
        torch.testing.assert_close(model.encode_text(tok(TEXTS)), txt, atol=ATOL, rtol=0)
    assert float(model.logit_scale) == pytest.approx(float(ref.logit_scale))
    assert model.image_mean == pytest.approx((0.5, 0.4, 0.3)) and eval_tf.resolution == 32
    assert len(model.visual.vision_model.encoder.layers) == 2  # issue 13's hook


def test_save_and_load_a_whole_clip_focusclip_offline(open_clip_dir, tmp_path):
    model = focusclip.create_model(f"focusclip:openclip:local-dir:{open_clip_dir}", roi={"shared": False}).eval()
    _perturb(model)
    tok = focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}")
    focusclip.save_model(model, tmp_path / "saved", tok)
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["model"]
    assert saved["clip"]["pretrained"] is None and saved["clip"]["model_cfg"]["embed_dim"] == 32
    loaded = focusclip.load_model(tmp_path / "saved")
    tok2 = focusclip.get_tokenizer(str(tmp_path / "saved"))
    images, heat = torch.randn(2, 3, 32, 32), torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_text(tok2(TEXTS)), model.encode_text(tok(TEXTS)), atol=0, rtol=0)
        torch.testing.assert_close(loaded.encode_roi(images, heat), model.encode_roi(images, heat), atol=0, rtol=0)
    assert loaded.roi_enabled and not loaded.roi_shared


# ------------------------------------------------------------------------------ names and bad input
def test_clip_names_and_their_errors(tmp_path, open_clip_dir):
    with pytest.raises(ValueError, match="Did you mean 'ViT-B-16'"):
        focusclip.create_model("openclip:ViT-B-61/openai")
    with pytest.raises(ValueError, match="Did you mean 'openai'"):
        focusclip.create_model("openclip:ViT-B-16/opnai")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        focusclip.create_model(f"openclip:ViT-B-16@{tmp_path / 'missing.pt'}")
    with pytest.raises(ValueError, match="Did you mean 'focusclip-openclip-vit-b16'"):
        focusclip.create_model("focusclip-openclip-vit-b61")
    # a hub name offline says what to pass instead
    with pytest.raises(WeightsNotFoundError, match="local checkpoint file"):
        focusclip.create_model("openclip:ViT-B-32/openai")
    with pytest.raises(WeightsNotFoundError, match="save_pretrained"):
        focusclip.create_model("hfclip:openai/clip-vit-base-patch16")
    # the generic forms resolve: ROI branch with focusclip:, a CLIP folder by itself
    assert focusclip.create_model(f"focusclip:openclip:local-dir:{open_clip_dir}").roi_enabled
    assert not focusclip.create_model(str(open_clip_dir)).roi_enabled
    assert "focusclip-openclip-vit-b16" in focusclip.list_models()


def test_checkpoint_of_another_architecture_is_a_strict_load_error(tmp_path, hf_clip_dir):
    register_open_clip_arch(tmp_path / "a", "fc-test-tiny-b")
    other = dict(TINY_OPEN_CLIP, text_cfg=dict(TINY_OPEN_CLIP["text_cfg"], layers=3))
    wrong = register_open_clip_arch(tmp_path / "b", "fc-test-tiny-c", model_cfg=other)
    with pytest.raises(WeightsMismatchError) as e:
        focusclip.create_model(f"openclip:fc-test-tiny-b@{wrong}")
    assert "unexpected keys (" in str(e.value) and "transformer.resblocks.2" in str(e.value)
    # a Hugging Face folder whose weights belong to another architecture is refused, not half-initialised
    bad = write_hf_clip_dir(tmp_path / "hf-bad", projection_dim=8)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["projection_dim"] = 16
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsMismatchError, match="do not match"):
        focusclip.create_model(f"hfclip:{bad}")


def test_an_option_the_tower_cannot_do_names_the_tower(monkeypatch, hf_clip_dir):
    from types import MappingProxyType

    import focusclip.model.focus as focus_pkg
    from focusclip.model.focus import HighlightFocus

    class BlocksFocus(HighlightFocus):  # a mechanism that needs open_clip's transformer blocks
        mode = "blocks"

        @classmethod
        def supports(cls, tower):
            return hasattr(getattr(tower, "visual", None), "transformer")

    modes = MappingProxyType({"highlight": HighlightFocus, "blocks": BlocksFocus})
    monkeypatch.setattr(focus_pkg, "FOCUS_MODES", modes)
    monkeypatch.setattr(focusclip.model.factory, "FOCUS_MODES", modes)  # the config check's copy
    assert focusclip.create_model("focusclip-openclip-tiny", roi={"mode": "blocks"}).focus.mode == "blocks"
    with pytest.raises(ValueError, match="HFCLIPVisionTower cannot do focus mode 'blocks'; it supports: highlight"):
        focusclip.create_model(f"focusclip:hfclip:{hf_clip_dir}", roi={"mode": "blocks"})
    with pytest.raises(ValueError, match="HFTextTower cannot do it; it supports: truncate, sentences"):
        focusclip.create_model("focusclip-tiny", text={"long_text": "stretch"})
    with pytest.raises(ValueError, match="unknown long-text strategy 'paragraphs'"):
        focusclip.create_model("focusclip-openclip-tiny", text={"long_text": "paragraphs"})
    with pytest.raises(ValueError, match="holds 77 positions"):
        focusclip.get_tokenizer("focusclip-openclip-tiny", context_length=248)


# ------------------------------------------------------------------------------ export
def test_export_to_open_clip_loads_unchanged(tmp_path):
    import open_clip

    ckpt = register_open_clip_arch(tmp_path / "arch", "fc-test-tiny-d")
    model = focusclip.create_model(f"focusclip:openclip:fc-test-tiny-d@{ckpt}", roi={"shared": False}).eval()
    _perturb(model)
    tok = focusclip.get_tokenizer(f"openclip:fc-test-tiny-d@{ckpt}")
    focusclip.save_model(model, tmp_path / "ft", tok)
    assert main(["export", "--model", str(tmp_path / "ft"), "--out", str(tmp_path / "oc")]) == 0
    weights = tmp_path / "oc" / "open_clip_model.safetensors"
    images = torch.randn(2, 3, 32, 32)
    for name, pretrained in (("fc-test-tiny-d", str(weights)), (f"local-dir:{tmp_path / 'oc'}", None)):
        oc, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained)
        oc.eval()
        with torch.no_grad():
            torch.testing.assert_close(oc.encode_image(images), model.encode_image(images), atol=ATOL, rtol=0)
            torch.testing.assert_close(oc.encode_text(open_clip.get_tokenizer("fc-test-tiny-d")(TEXTS)),
                                       model.encode_text(tok(TEXTS)), atol=ATOL, rtol=0)
        assert float(oc.logit_scale) == pytest.approx(float(model.logit_scale))
    with pytest.raises(ValueError, match="exports as 'open_clip'"):
        focusclip.export_model(model, tmp_path / "x", fmt="hf")
    with pytest.raises(ValueError, match="not built on a whole CLIP"):
        focusclip.export_model(focusclip.create_model("clip-tiny"), tmp_path / "y")


def test_export_to_hugging_face_loads_unchanged(hf_clip_dir, tmp_path):
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = focusclip.create_model(f"focusclip:hfclip:{hf_clip_dir}").eval()
    _perturb(model)
    tok = focusclip.get_tokenizer(f"hfclip:{hf_clip_dir}")
    out = focusclip.export_model(model, tmp_path / "hf", tok)
    hf = CLIPModel.from_pretrained(str(out)).eval()
    enc = AutoTokenizer.from_pretrained(str(out))(TEXTS, padding=True, truncation=True, max_length=77,
                                                  return_tensors="pt")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        img, txt = hf.get_image_features(pixel_values=images), hf.get_text_features(**enc)
        img, txt = getattr(img, "pooler_output", img), getattr(txt, "pooler_output", txt)
        torch.testing.assert_close(img, model.encode_image(images), atol=ATOL, rtol=0)
        torch.testing.assert_close(txt, model.encode_text(tok(TEXTS)), atol=ATOL, rtol=0)
    assert CLIPImageProcessor.from_pretrained(str(out)).image_mean == pytest.approx([0.5, 0.4, 0.3])


# ------------------------------------------------------------------------------ long texts
def test_stretch_keeps_20_positions_and_interpolates_the_rest(open_clip_dir, tmp_path):
    table = torch.randn(77, 8)
    out = stretch_positions(table)
    assert out.shape == (248, 8) and torch.equal(out[:20], table[:20])
    for i in range(56):  # every 4th new row is an original row; the ones between lie on the line
        torch.testing.assert_close(out[20 + 4 * i], table[20 + i])
        torch.testing.assert_close(out[22 + 4 * i], (table[20 + i] + table[21 + i]) / 2)

    name = f"openclip:local-dir:{open_clip_dir}"
    model = focusclip.create_model(name, text={"long_text": "stretch"}).eval()
    plain = focusclip.create_model(name).eval()
    tok = focusclip.get_tokenizer(model.config)
    assert model.text.context_length == 248 and tok.context_length == 248 and model.text.attn_mask.shape == (248, 248)
    torch.testing.assert_close(model.text.positional_embedding[:20], plain.text.positional_embedding[:20])
    long = tok(["word " * 200])
    assert long["input_ids"].shape[1] == 202 and tok.num_truncated == 0
    focusclip.save_model(model, tmp_path / "s", tok)
    again = focusclip.load_model(tmp_path / "s")
    with torch.no_grad():
        torch.testing.assert_close(again.encode_text(long), model.encode_text(long), atol=0, rtol=0)
    # a stretched model exports with its 248 positions in the open_clip config
    import open_clip

    focusclip.export_model(again, tmp_path / "oc")
    oc = open_clip.create_model(f"local-dir:{tmp_path / 'oc'}").eval()
    assert oc.positional_embedding.shape[0] == 248
    with torch.no_grad():
        torch.testing.assert_close(oc.encode_text(torch.nn.functional.pad(long["input_ids"], (0, 46))),
                                   model.encode_text(long), atol=ATOL, rtol=0)


def test_sentences_average_normalised_sentence_embeddings(open_clip_dir):
    name = f"openclip:local-dir:{open_clip_dir}"
    model = focusclip.create_model(name).eval()
    tok = focusclip.get_tokenizer(name, long_text="sentences")
    tokens = tok(["He runs. She waves!", "A person sits"])
    assert tokens[SENTENCE_KEY].tolist() == [0, 0, 1]
    plain = focusclip.get_tokenizer(name)
    with torch.no_grad():
        parts = model.encode_text(plain(["He runs.", "She waves!", "A person sits"]), normalize=True)
        expected = torch.stack([(parts[0] + parts[1]) / 2, parts[2]])
        torch.testing.assert_close(model.encode_text(tokens), expected, atol=ATOL, rtol=0)
    second = slice_texts(tokens, 1, 2)
    assert second[SENTENCE_KEY].tolist() == [0] and second["input_ids"].shape[0] == 1


def test_truncation_is_reported(open_clip_dir):
    tok = focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}")
    report = tok.length_report(["a b c", "word " * 100])  # 5 and 102 tokens with start / end
    assert report["texts"] == 2 and report["truncated"] == 1 and report["tokens"] == 107
    assert report["tokens_cut"] == 25 and report["cut_share"] == pytest.approx(25 / 107, abs=1e-4)
    assert tok.stats.texts == 0  # a report leaves the running statistics alone
    tok(["word " * 100])
    assert tok.num_truncated == 1 and tok.stats.tokens_cut == 25
    by_sentence = focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}", long_text="sentences")
    assert by_sentence.length_report(["A b. " * 40])["truncated"] == 0


# ------------------------------------------------------------------------------ WiSE-FT
def test_merge_interpolates_and_refuses_other_architectures(open_clip_dir, tmp_path):
    name = f"openclip:local-dir:{open_clip_dir}"
    base = focusclip.create_model(name).eval()
    ft = focusclip.create_model(f"focusclip:{name}", roi={"shared": False}).eval()
    _perturb(ft, seed=3, scale=0.1)
    b, f = base.state_dict(), ft.state_dict()
    for alpha in (0.0, 0.5, 1.0):
        merged = merge_models(base, ft, alpha).state_dict()
        key = "visual.visual.conv1.weight"
        torch.testing.assert_close(merged[key], (1 - alpha) * b[key] + alpha * f[key])
        roi_key = "roi_visual.visual.conv1.weight"  # the unshared ROI tower moves towards the base image tower
        torch.testing.assert_close(merged[roi_key], (1 - alpha) * b[key] + alpha * f[roi_key])
        assert torch.equal(merged["focus.alpha"], f["focus.alpha"])
    other = write_open_clip_dir(tmp_path / "other", model_cfg=dict(TINY_OPEN_CLIP, embed_dim=16))
    with pytest.raises(ArchitectureMismatchError, match="not of one architecture"):
        merge_models(focusclip.create_model(f"openclip:local-dir:{other}"), ft, 0.5)
    with pytest.raises(ValueError, match="alpha must be a number in"):
        interpolate_states(b, b, 1.5)

    tok = focusclip.get_tokenizer(name)
    focusclip.save_model(ft, tmp_path / "ft", tok)
    out = tmp_path / "wise"
    assert main(["merge", "--base", name, "--finetuned", str(tmp_path / "ft"), "--alpha", "0.25",
                 "--out", str(out)]) == 0
    written = focusclip.load_model(out).state_dict()
    torch.testing.assert_close(written["visual.visual.proj"], 0.75 * b["visual.visual.proj"] + 0.25 * f["visual.visual.proj"])
    assert json.loads((out / "config.json").read_text())["merge"]["alpha"] == 0.25
    assert main(["merge", "--base", name, "--finetuned", str(tmp_path / "ft"), "--out", str(tmp_path / "ft")]) == 1


# ------------------------------------------------------------------------------ the CLI on untouched CLIPs
@pytest.fixture(scope="module")
def synth_world(tmp_path_factory):
    from focusclip.data.synthetic import generate_world

    root = tmp_path_factory.mktemp("world")
    generate_world(root / "synthetic", n=4, seed=0, image_size=64, eval_n=24, show_progress=False)
    return root


def test_eval_predict_embed_an_untouched_clip_from_the_cli(open_clip_dir, synth_world, tmp_path, capsys):
    import numpy as np

    name = f"openclip:local-dir:{open_clip_dir}"
    out = tmp_path / "results.json"
    assert main(["eval", "--model", name, "--tasks", "synthetic", "--data-root", str(synth_world),
                 "--out", str(out), "--workers", "0", "--no-confusion"]) == 0
    data = json.loads(out.read_text())
    tasks = {e["task"] for e in data["results"].values()}
    assert tasks == {"synth-activity", "synth-age", "synth-expression"}
    assert all(e["n"] == 24 for e in data["results"].values())
    assert "synth-activity" in capsys.readouterr().out

    image = next((synth_world / "synthetic" / "images").glob("*.jpg"))
    assert main(["predict", str(image), "--model", name, "--labels", "running,sitting,waving", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert sum(p["prob"] for p in preds[0]["predictions"]) == pytest.approx(1.0, abs=1e-4)
    assert main(["embed", "--model", name, "--texts", "a person running", "a person sitting",
                 "--out", str(tmp_path / "t.npy")]) == 0
    emb = np.load(tmp_path / "t.npy")
    ref = focusclip.create_model(name).eval()
    with torch.no_grad():
        expected = ref.encode_text(focusclip.get_tokenizer(name)(["a person running", "a person sitting"]),
                                   normalize=True).numpy()
    np.testing.assert_allclose(emb, expected, atol=ATOL)


def test_eval_interpolate_plots_the_wise_ft_path(open_clip_dir, synth_world, tmp_path, capsys):
    name = f"openclip:local-dir:{open_clip_dir}"
    ft = focusclip.create_model(f"focusclip:{name}").eval()
    _perturb(ft, scale=0.2)
    focusclip.save_model(ft, tmp_path / "ft", focusclip.get_tokenizer(name))
    out = tmp_path / "wise.json"
    assert main(["eval", "--model", str(tmp_path / "ft"), "--base", name, "--interpolate", "0,0.5,1",
                 "--tasks", "synth-age", "--data-root", str(synth_world), "--out", str(out),
                 "--workers", "0"]) == 0
    table = capsys.readouterr().out
    assert "| 0.5 |" in table and "synth-age" in table
    assert (tmp_path / "wise_interpolation.png").stat().st_size > 1000
    data = json.loads(out.read_text())
    assert len({e["model"] for e in data["results"].values()}) == 3  # one merged model per alpha
    # alpha 0 is the base model itself
    from focusclip.zeroshot.evaluate import model_fingerprint

    base_fp = model_fingerprint(merge_models(focusclip.create_model(name), ft, 0.0))
    assert any(e["model"] == base_fp for e in data["results"].values())
    assert main(["eval", "--model", str(tmp_path / "ft"), "--interpolate", "0,1", "--tasks", "synth-age"]) == 2  # usage


# ------------------------------------------------------------------------------ fine-tuning recipe
@pytest.mark.slow
def test_synthetic_openclip_recipe_trains_with_focus(tmp_path):
    """configs/synth-openclip-focus.yaml: a small open_clip architecture at random init, with the ROI
    branch, on captioned synthetic records: the loss falls and the ROI branch trains; then the same with
    sentence-level long-text handling and GradCache micro-batches."""
    from focusclip.data.records import read_records
    from focusclip.data.synthetic import generate_world
    from focusclip.describe.results import merge_captions
    from focusclip.describe.rules import RulesDescriber
    from focusclip.describe.run import describe_records
    from focusclip.train import train

    data = tmp_path / "synthetic"
    generate_world(data, n=48, seed=0, image_size=96, eval_n=12, show_progress=False)
    for split in ("train", "val"):
        describe_records(read_records(data / f"{split}.jsonl"), data / f"{split}.desc.jsonl", RulesDescriber(seed=0),
                         fsync=False)
        merge_captions(data / f"{split}.jsonl", data / f"{split}.desc.jsonl", data / f"{split}.captioned.jsonl")
    recipe = Path(__file__).resolve().parents[1] / "configs" / "synth-openclip-focus.yaml"
    common = [f"data.train={data / 'train.captioned.jsonl'}", f"data.val={data / 'val.captioned.jsonl'}",
              "data.num_workers=0", "batch_size=8", "epochs=3", "eval.tasks=[]", "log.every_steps=1",
              "log.tensorboard=false", "checkpoint.keep=1"]
    result = train(recipe, [*common, f"out_dir={tmp_path / 'run'}"])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["type"] == "train"]
    first, last = train_rows[0], train_rows[-1]
    assert last["loss"] < first["loss"] - 0.2, (first["loss"], last["loss"])
    assert "roi_img" in last and "roi_txt" in last and abs(last["alpha"] - 0.5) > 1e-4
    events = [r for r in rows if r["type"] == "event" and "text_lengths" in r]
    assert events and events[0]["text_lengths"]["context_length"] == 77
    model = focusclip.load_model(result["model_final"])
    assert model.roi_enabled and model.is_whole_clip

    result = train(recipe, [*common, f"out_dir={tmp_path / 'run-sentences'}", "model.long_text=sentences",
                            "accum_steps=2", "epochs=1"])
    saved = focusclip.load_model(result["model_final"])
    assert saved.config["text"]["long_text"] == "sentences"
    assert focusclip.get_tokenizer(result["model_final"]).long_text == "sentences"


def test_models_lists_the_registered_clips(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "focusclip-openclip-vit-b16" in out and "open_clip=ViT-B-16/openai" in out
    assert "hf_clip=openai/clip-vit-base-patch16" in out and "openclip:ARCH/TAG" in out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["focusclip-openclip-tiny", "clip-openclip-tiny", "focusclip-openclip-vit-b16"])
def test_registered_clip_models_encode_and_backpropagate(name):
    """The registered whole-CLIP configs build offline at random init (ViT-B-16 is open_clip's own
    architecture: 224 px, 77 tokens, 512-d) and train every branch through the checkpoint's projections."""
    import numpy as np
    from PIL import Image

    model, train_tf, eval_tf = focusclip.create_model_and_transforms(name, pretrained="none")
    tok = focusclip.get_tokenizer(name)
    if name.endswith("vit-b16"):
        assert model.image_size == 224 and model.embed_dim == 512 and tok.context_length == 77
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    sample = train_tf.apply(img, heatmap=np.ones((90, 120), np.float32))
    images = torch.stack([eval_tf(img), sample["image"]])
    out = model(images, tok(["a photo of a person running", "two people sitting"]),
                heatmap=torch.stack([sample["heatmap"]] * 2))
    loss = focusclip.FocusCLIPLoss(name="clip")(out)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and ("roi_features" in out) == name.startswith("focusclip")
    assert model.visual.visual.proj.grad is not None and model.text.text_projection.grad is not None
    assert model.logit_scale.grad is not None
    if name.startswith("focusclip"):
        model.eval()
        s = model.image_size
        with torch.no_grad():  # a heatmap of ones dims nothing: the ROI branch sees the plain image
            torch.testing.assert_close(model.encode_roi(images[:1], torch.ones(1, 1, s, s)),
                                       model.encode_image(images[:1]))


@pytest.mark.parametrize("family", ["open_clip", "hf"])
def test_locking_a_whole_clip_freezes_all_but_the_last_groups(tmp_path, family):
    """lock_image_tower / lock_text_tower on the whole-CLIP towers follow open_clip's groups: 0 unlocked
    groups freezes the tower, 1 leaves only its last group (the projection) trainable."""
    def build():
        if family == "open_clip":
            return focusclip.create_model("focusclip-openclip-tiny")
        return focusclip.create_model(f"hfclip:{write_hf_clip_dir(tmp_path / 'hf')}")

    def trainable(module):
        return {n for n, p in module.named_parameters() if p.requires_grad}

    model = build()
    everything = {"visual": trainable(model.visual), "text": trainable(model.text)}
    model.lock_image_tower(0)
    model.lock_text_tower(0)
    assert trainable(model.visual) == set() and trainable(model.text) == set()
    assert model.logit_scale.requires_grad  # the rest of the model stays trainable
    model = build()
    model.lock_image_tower(1)
    model.lock_text_tower(1)
    for name, tower in (("visual", model.visual), ("text", model.text)):
        left = trainable(tower)
        assert left and left < everything[name], name
        assert all("proj" in n for n in left), (name, sorted(left))

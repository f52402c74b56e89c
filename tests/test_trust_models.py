"""Issue 21 (trust, second pass), model side: registered whole-CLIP names (item 1), the hub probe that
makes an offline download fail at once, checkpoints of another architecture (item 2) and preprocessing
parity with open_clip and transformers (item 10). Every checkpoint is tiny and written locally."""

from __future__ import annotations

import logging

import pytest
import torch

import focusclip
from clip_checkpoints import register_open_clip_arch
from focusclip import hub_access as hub
from focusclip.cli import main
from focusclip.model.towers.weights import WeightsNotFoundError

CLIP_NAMES = ("clip-openclip-vit-b16", "focusclip-openclip-vit-b16", "clip-hfclip-vit-b16", "focusclip-hfclip-vit-b16")


@pytest.fixture
def unreachable_hub(monkeypatch):
    """Online mode as a user has it by default, with a hub that cannot be reached (whatever this machine's
    network): the probe says so, and nothing may download."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT: False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


# ------------------------------------------------------------------------------ item 1
@pytest.mark.parametrize("name", CLIP_NAMES)
def test_registered_clip_names_offline_say_no_weights(name, unreachable_hub, caplog):
    """The registered whole-CLIP configs have no vision/text sections: they once died with KeyError
    'vision' before any download. Offline the answer is the clear "no weights; pass a checkpoint" error,
    at once (the hub's five retries never run)."""
    caplog.set_level(logging.WARNING)
    with pytest.raises(WeightsNotFoundError, match=r"[Ww]ithout a network, pass a local"):
        focusclip.create_model(name)
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]


@pytest.mark.parametrize("name", ["clip-openclip-vit-b16", "openclip:ViT-B-16/openai"])
def test_an_unreachable_hub_is_said_once_per_model(name, unreachable_hub, caplog):
    """The config, the tag's weights and the checkpoint are one model: one probe, one line."""
    caplog.set_level(logging.INFO, logger="focusclip.hub_access")
    with pytest.raises(WeightsNotFoundError):
        focusclip.create_model(name)
    said = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]


def test_registered_clip_name_on_the_command_line(unreachable_hub, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (90, 20, 20)).save(photo)
    rc = main(["predict", str(photo), "--model", "clip-openclip-vit-b16", "--labels", "a,b"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "error: vision" not in err
    assert "pass a local checkpoint file" in err


def test_hub_access_switches_to_offline_only_when_unreachable(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT: False)
    with hub.hub_access("openai/clip-vit-base-patch16") as online:
        assert online is False and hub.hub_offline()
    assert constants.HF_HUB_OFFLINE is False  # restored
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT: True)
    with hub.hub_access("openai/clip-vit-base-patch16") as online:
        assert online is True and not hub.hub_offline()
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT: probes.append(1) or False)
    with hub.hub_access(".") as online:  # a local path: no probe, no offline switch
        assert online is True
    assert probes == []


def test_hub_reachable_probes_the_endpoint(monkeypatch):
    calls = []

    def refuse(address, timeout):
        calls.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(hub.socket, "create_connection", refuse)
    assert hub.hub_reachable() is False
    assert calls == [(hub.hub_host(), hub.PROBE_TIMEOUT)]


def test_registered_open_clip_name_with_a_checkpoint(tmp_path):
    """With weights, a registered name is a model (its clip section overridden, as the docs show)."""
    ckpt = register_open_clip_arch(tmp_path, "trust-tiny-arch")
    ref = torch.load(ckpt, weights_only=True)
    model = focusclip.create_model("focusclip-openclip-vit-b16",
                                   clip={"open_clip_model": "trust-tiny-arch", "pretrained": str(ckpt)})
    assert model.roi_enabled and model.is_whole_clip
    torch.testing.assert_close(model.state_dict()["visual.visual.conv1.weight"], ref["visual.conv1.weight"])


@pytest.mark.parametrize("name", ["clip-hfclip-vit-b16", "focusclip-hfclip-vit-b16"])
def test_registered_hf_clip_name_with_a_local_folder(name, hf_clip_dir, unreachable_hub):
    """clip.pretrained=FOLDER: the weights, tokenizer and image processor come from the folder (offline)."""
    model = focusclip.create_model(name, clip={"pretrained": str(hf_clip_dir)})
    tok = focusclip.get_tokenizer(model.config)
    assert model.image_size == 32 and model.image_mean == pytest.approx((0.5, 0.4, 0.3))
    with torch.no_grad():
        assert model.encode_text(tok(["a person"])).shape == (1, 16)
    assert model.roi_enabled == name.startswith("focusclip-")


# ------------------------------------------------------------------------------ item 2
@pytest.fixture(scope="module")
def other_width(tmp_path_factory):
    """Checkpoints whose text tower is twice as wide as the architecture they are loaded into."""
    import copy
    import json

    from clip_checkpoints import TINY_OPEN_CLIP, write_open_clip_dir

    root = tmp_path_factory.mktemp("other-width")
    wide = copy.deepcopy(TINY_OPEN_CLIP)
    wide["text_cfg"].update(width=64, context_length=64)
    ckpt = register_open_clip_arch(root / "wide", "trust-wide", wide)
    register_open_clip_arch(root / "narrow", "trust-narrow")
    folder = write_open_clip_dir(root / "dir")
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"] = wide
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    return {"ckpt": ckpt, "local_dir": folder}


@pytest.mark.parametrize("path", ["arch@file", "local-dir", "registered name + clip.pretrained", "model_cfg + file"])
def test_checkpoint_of_another_width_lists_the_keys(path, other_width):
    """open_clip asserts ("text pos_embed width changed!") while resizing position embeddings before its
    strict load; through local-dir the error stopped at torch's header. Every path: the same error, with
    the file and the mis-shaped keys."""
    from focusclip.model.towers.weights import WeightsMismatchError

    ckpt = other_width["ckpt"]
    calls = {
        "arch@file": lambda: focusclip.create_model(f"openclip:trust-narrow@{ckpt}"),
        "local-dir": lambda: focusclip.create_model(f"openclip:local-dir:{other_width['local_dir']}"),
        "registered name + clip.pretrained": lambda: focusclip.create_model(
            "clip-openclip-vit-b16", clip={"open_clip_model": "trust-narrow", "pretrained": str(ckpt)}),
        "model_cfg + file": lambda: focusclip.create_model(
            "clip-openclip-tiny", pretrained="towers", clip={"pretrained": str(ckpt)}),
    }
    with pytest.raises(WeightsMismatchError) as info:
        calls[path]()
    msg = str(info.value)
    assert "weights do not match the model" in msg and "shape mismatch (" in msg and "positional_embedding" in msg
    assert ".pt" in msg or ".safetensors" in msg  # the file is named


def test_hf_clip_folder_of_another_shape_lists_the_keys(tmp_path):
    import json

    from clip_checkpoints import write_hf_clip_dir
    from focusclip.model.towers.weights import WeightsMismatchError

    folder = write_hf_clip_dir(tmp_path / "hf")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["projection_dim"] = 24
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsMismatchError, match=r"shape mismatch \(2\): text_projection.weight, visual_projection"):
        focusclip.create_model(f"hfclip:{folder}")


def test_checkpoint_of_another_width_on_the_command_line(other_width, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 30)).save(photo)
    rc = main(["predict", str(photo), "--model", f"openclip:trust-narrow@{other_width['ckpt']}", "--labels", "a,b"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "AssertionError" not in err and "shape mismatch (29)" in err


# ------------------------------------------------------------------------------ item 10
ASPECTS = [(97, 61), (61, 97), (200, 123), (123, 201), (64, 64), (33, 250), (251, 40), (45, 46)]


def _photo(w: int, h: int, seed: int = 0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed + w * 1000 + h)
    base = np.linspace(0, 255, w * h * 3).reshape(h, w, 3)
    return Image.fromarray((0.6 * base + 0.4 * rng.integers(0, 255, (h, w, 3))).astype(np.uint8))


def _as_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("size", ASPECTS)
def test_open_clip_sees_open_clips_own_pixels(size, open_clip_dir):
    """A wrapped open_clip model gets exactly the pixels open_clip's image_transform ('shortest': resize
    the short side, then centre-crop with torchvision's rounding) gives, on non-square images too."""
    import open_clip

    _, _, ref_tf = open_clip.create_model_and_transforms(f"local-dir:{open_clip_dir}")
    model, _, eval_tf = focusclip.create_model_and_transforms(f"openclip:local-dir:{open_clip_dir}")
    assert eval_tf.resize == "shortest"
    image = _photo(*size)
    to_unit = open_clip.transform.Compose(ref_tf.transforms[:-1])  # all but Normalize
    assert torch.equal(eval_tf.pixels(image), _as_uint8(to_unit(image)))
    torch.testing.assert_close(eval_tf(image), ref_tf(image), atol=1e-6, rtol=0)
    # also from an array or a tensor of the same pixels
    import numpy as np

    assert torch.equal(eval_tf.pixels(np.asarray(image)), eval_tf.pixels(image))


@pytest.mark.parametrize("size", ASPECTS)
def test_hf_clip_sees_clip_image_processors_own_pixels(size, hf_clip_dir):
    """A wrapped transformers CLIP gets exactly CLIPImageProcessor's pixels (resize shortest edge with
    its resample, centre crop rounded down, rescale, normalise)."""
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor.from_pretrained(str(hf_clip_dir))
    model, _, eval_tf = focusclip.create_model_and_transforms(f"hfclip:{hf_clip_dir}")
    assert eval_tf.resize == "shortest_edge"
    image = _photo(*size)
    raw = processor(images=image, do_rescale=False, do_normalize=False, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(eval_tf.pixels(image), raw.round().to(torch.uint8))
    ref = processor(images=image, return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(eval_tf(image), ref, atol=1e-5, rtol=0)


def test_library_geometry_moves_keypoints_and_heatmaps_with_the_pixels(open_clip_dir):
    """The heatmap and keypoints follow the same resize-then-crop as the pixels."""
    import numpy as np

    from focusclip.model.transforms import SampleTransform

    for mode in ("shortest", "shortest_edge"):
        tf = SampleTransform(32, (0.5,) * 3, (0.25,) * 3, resize=mode)
        w, h = 97, 61
        heat = np.zeros((h, w), np.float32)
        heat[30, 48] = 1.0  # the centre: survives the crop
        out = tf.apply(_photo(w, h), heatmap=heat, keypoints=np.array([[48.5, 30.5]]))
        rh, rw = tf.resized_size(h, w)
        top, left = tf.library_crop(rh, rw)
        assert (rh, rw) == (32, 50) and (top, left) == (0, 9)
        kp = out["keypoints"][0]
        assert kp == pytest.approx([48.5 * rw / w - left, 30.5 * rh / h - top], abs=1e-4)
        peak = np.unravel_index(int(out["heatmap"][0].argmax()), (32, 32))
        assert abs(peak[0] - kp[1]) <= 1 and abs(peak[1] - kp[0]) <= 1


def test_saved_wrapped_clip_keeps_its_librarys_preprocessing(tmp_path, open_clip_dir):
    model = focusclip.create_model(f"openclip:local-dir:{open_clip_dir}")
    path = focusclip.save_model(model, tmp_path / "m", focusclip.get_tokenizer(f"openclip:local-dir:{open_clip_dir}"))
    from focusclip.model.factory import load_model_spec

    assert load_model_spec(str(path)).transform.resize == "shortest"

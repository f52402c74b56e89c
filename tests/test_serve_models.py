"""focusclip.serve.models: which models the page offers (and never more), and the one-model cache."""

from __future__ import annotations

import logging
import os

import pytest
import torch

import focusclip
from focusclip.serve.models import (
    ModelCache,
    ModelCatalog,
    RegisteredModels,
    SavedModels,
    UnknownModelError,
)


def save_tiny(directory, arch: str = "focusclip-tiny", seed: int = 0):
    """A saved random-init tiny model, in the format focusclip.save_model writes."""
    torch.manual_seed(seed)
    focusclip.save_model(focusclip.create_model(arch), directory, focusclip.get_tokenizer(arch))
    return directory


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("one") / "model")


def _same_weights(m1, m2) -> bool:
    s1, s2 = m1.state_dict(), m2.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


def _copy_model(src, dst):
    """A second model directory sharing nothing with ``src`` (hard copies, not links)."""
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_saved_models_are_found_recursively_and_nothing_else(tmp_path, saved_model):
    root = tmp_path / "runs"
    _copy_model(saved_model, root / "demo/runs/focusclip-seed0/model-final")
    _copy_model(saved_model, root / "demo/runs/focusclip-seed0/model-best")
    (root / "incomplete").mkdir(parents=True)
    (root / "incomplete/config.json").write_text("{}")             # no weights: not a model
    _copy_model(saved_model, root / ".hidden/model")                   # hidden folders are skipped
    outside = _copy_model(saved_model, tmp_path / "elsewhere/model")
    os.symlink(outside, root / "linked-dir")                           # a linked folder is not followed
    (root / "linked-files").mkdir()
    for f in ("config.json", "model.safetensors"):                     # files linking out of the root
        os.symlink(outside / f, root / "linked-files" / f)

    ids = [e.id for e in SavedModels(root).entries()]
    assert ids == ["demo/runs/focusclip-seed0/model-best", "demo/runs/focusclip-seed0/model-final"]
    entry = SavedModels(root).entries()[1]
    assert entry.kind == "saved" and entry.architecture == "focusclip-tiny" and entry.image_size == 64
    assert entry.roi and entry.warning == "" and "focusclip-tiny, 64 px" in entry.title


def test_a_root_that_is_itself_a_model_is_listed_by_its_name(saved_model):
    assert [e.id for e in SavedModels(saved_model).entries()] == ["model"]


def test_missing_root_lists_nothing(tmp_path):
    assert SavedModels(tmp_path / "absent").entries() == []


def test_registered_configs_carry_the_untrained_warning():
    entries = RegisteredModels().entries()
    assert [e.id for e in entries] == focusclip.list_models()
    assert all(e.kind == "registered" and "not a trained FocusCLIP model" in e.warning for e in entries)


def test_catalog_resolves_only_its_own_ids(tmp_path, saved_model):
    root = tmp_path / "runs"
    _copy_model(saved_model, root / "a/model-final")
    catalog = ModelCatalog([SavedModels(root)])
    entry, source = catalog.resolve("a/model-final")
    assert entry.location == (root / "a/model-final").resolve() and isinstance(source, SavedModels)
    for bad in ["../runs/a/model-final", str(root / "a/model-final"), "a/model-final/../model-final",
                "a", "a/model-final/tokenizer", ""]:
        with pytest.raises(UnknownModelError, match="available: a/model-final"):
            catalog.resolve(bad)


def test_catalog_rescans_for_a_model_saved_after_start(tmp_path, saved_model):
    root = tmp_path / "runs"
    root.mkdir()
    catalog = ModelCatalog([SavedModels(root)])
    assert catalog.entries() == [] and catalog.default_id() is None
    _copy_model(saved_model, root / "new/model-final")
    assert catalog.resolve("new/model-final")[0].id == "new/model-final"


def test_an_id_repeated_across_sources_gets_its_kind_as_prefix(tmp_path, saved_model):
    root = tmp_path / "runs"
    _copy_model(saved_model, root / "focusclip-tiny")
    catalog = ModelCatalog([SavedModels(root), RegisteredModels()])
    assert catalog.resolve("focusclip-tiny")[0].kind == "saved"
    assert catalog.resolve("registered:focusclip-tiny")[0].kind == "registered"


def test_default_prefers_a_trained_focusclip_final_model(tmp_path, saved_model):
    root = tmp_path / "runs"
    save_tiny(root / "demo/runs/clip-seed0/model-final", "clip-tiny")
    _copy_model(saved_model, root / "demo/runs/focusclip-seed0/model-best")
    _copy_model(saved_model, root / "demo/runs/focusclip-seed0/model-final")
    catalog = ModelCatalog([SavedModels(root), RegisteredModels()])
    assert catalog.default_id() == "demo/runs/focusclip-seed0/model-final"
    # the offline default towers, which the demo trains (other offline configs sort before them by name)
    from focusclip.experiments.demo import DemoConfig

    assert ModelCatalog([RegisteredModels()]).default_id() == "focusclip-lite0-minilm"
    assert DemoConfig().model_name("focusclip") == "focusclip-lite0-minilm"


def test_cache_holds_one_model_and_reloads_changed_weights(tmp_path, saved_model, caplog):
    root = tmp_path / "runs"
    _copy_model(saved_model, root / "a")
    save_tiny(root / "b", seed=1)
    cache = ModelCache(ModelCatalog([SavedModels(root)]))
    a = cache.get("a")
    assert cache.get("a") is a                       # cached
    b = cache.get("b")
    assert cache.current is b and b is not a         # one model at a time
    assert not _same_weights(a.model, b.model)
    a2 = cache.get("a")
    assert a2 is not a and cache.current is a2
    save_tiny(root / "a", seed=2)                    # retrained in place: new weights are picked up
    st = (root / "a/model.safetensors").stat()
    os.utime(root / "a/model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with caplog.at_level(logging.INFO, "focusclip.serve.models"):
        a3 = cache.get("a")
    assert a3 is not a2 and "loading model a" in caplog.text
    assert _same_weights(a3.model, focusclip.load_model(root / "a")) and not _same_weights(a3.model, a2.model)


def test_cache_keeps_a_few_classifiers_per_model(tmp_path, saved_model):
    cache = ModelCache(ModelCatalog([SavedModels(saved_model)]), max_classifiers=2)
    loaded = cache.get("model")
    built = []
    for key in ["x", "y", "x", "z", "y"]:
        cache.classifier(loaded, key, lambda k=key: built.append(k) or k)
    assert built == ["x", "y", "z", "y"]  # x reused while cached; y evicted by z (x was used more recently)


def test_page_warns_about_registered_configs_and_refuses_unknown_models(tmp_path, saved_model):
    import html

    import numpy as np
    from PIL import Image

    from focusclip.serve.page import DownloadFolder, _model_note, classify_photos
    from focusclip.serve.service import Service
    from focusclip.serve.uploads import DecodedUploads

    service = Service(ModelCatalog([SavedModels(saved_model), RegisteredModels()]), device="cpu")
    assert "Warning:" in _model_note(service, "focusclip-tiny") and "not a trained" in _model_note(service, "focusclip-tiny")
    assert "Warning" not in _model_note(service, "model") and "ROI" in _model_note(service, "model")
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    for bad, shown in (("../model", "../model"), (str(saved_model), "<models-root>")):  # no server path shown
        status, cards, *_ = classify_photos(service, DecodedUploads(), DownloadFolder(), bad, [str(photo)], None,
                                            "a, b", "a photo of {c}", 2)
        assert "fc-error" in status and f"unknown model {shown!r}" in html.unescape(status) and cards == ""
    status, cards, *_ = classify_photos(service, DecodedUploads(), DownloadFolder(), "focusclip-tiny", [str(photo)],
                                        None, "a, b", "a photo of {c}", 2)
    assert "untrained registered towers" in status and "p.jpg" in cards


def test_clip_names_given_at_start_are_offered_and_loaded(tmp_path):
    """`focusclip serve --clip NAME`: an off-the-shelf CLIP is one more entry; other strings are refused."""
    from clip_checkpoints import write_hf_clip_dir
    from focusclip.errors import UsageError
    from focusclip.serve.models import ClipModels, ModelCatalog

    folder = write_hf_clip_dir(tmp_path / "hf-clip")
    name = f"hfclip:{folder}"
    catalog = ModelCatalog([ClipModels([name])])
    (entry,) = [e for e in catalog.entries() if e.kind == "clip"]
    assert entry.id == name and "off-the-shelf" in entry.warning
    loaded = ClipModels([name]).load(entry)
    assert loaded.model.logit_scale is not None and loaded.tokenizer is not None
    with pytest.raises(UsageError, match="not a CLIP model name"):
        ClipModels(["../../etc/passwd"])

"""FocusDataset + Collator: heatmap sources aligned with the image, caption modes, bad samples, DataLoader."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from focusclip.data.dataset import Collator, FocusDataset, SampleError
from focusclip.model.transforms import SampleTransform

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom"
S = 32
W, H = 80, 40


def _tf() -> SampleTransform:
    return SampleTransform(resolution=S, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def _joints(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    """16 joints spread over the box (x0, y0)-(x1, y1), corners included."""
    xs = np.linspace(x0, x1, 16)
    ys = np.concatenate([np.linspace(y0, y1, 8), np.linspace(y1, y0, 8)])
    return [[float(x), float(y)] for x, y in zip(xs, ys)]


@pytest.fixture()
def data(tmp_path):
    img = tmp_path / "images"
    img.mkdir()
    for k in range(4):
        Image.new("RGB", (W, H), (60 * k, 40, 90)).save(img / f"{k}.jpg")
    (img / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    hm = Image.new("L", (W, H), 0)
    hm.paste(255, (0, 0, W // 2, H))  # left half hot
    hm.save(tmp_path / "left.png")
    person = {"joints": _joints(50, 10, 70, 30), "visible": [1] * 16}
    records = [
        {"image": "images/0.jpg", "id": "r0", "captions": ["a", "b", "c", "d"], "people": [person],
         "boxes": [[0, 0, 20, 40]], "heatmap": "left.png"},
        {"image": "images/1.jpg", "id": "r1", "captions": ["only"], "people": []},
        {"image": "images/missing.jpg", "id": "gone", "captions": ["x"]},
        {"image": "images/corrupt.jpg", "id": "bad", "captions": ["x"]},
        {"image": "images/2.jpg", "id": "nocap", "captions": []},
        {"image": "images/3.jpg", "id": "r5", "captions": ["p", "q"]},
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"root": tmp_path, "records": records, "path": path}


def _peak(hm: torch.Tensor) -> tuple[int, int]:
    y, x = np.unravel_index(int(hm[0].argmax()), hm.shape[-2:])
    return int(x), int(y)


def test_person_heatmap_is_rendered_at_output_size_where_the_person_is(data):
    ds = FocusDataset(data["records"], root=data["root"], transform=_tf(), heatmap="person")
    s = ds[0]
    assert s["image"].shape == (3, S, S) and s["heatmap"].shape == (1, S, S) and s["id"] == "r0"
    assert s["heatmap"].dtype == torch.float32 and 0.0 <= float(s["heatmap"].min()) <= float(s["heatmap"].max()) <= 1.0
    # box centre (60, 20) in an 80x40 frame -> (24, 16) in the 32x32 output
    px, py = _peak(s["heatmap"])
    assert abs(px - 24) <= 1 and abs(py - 16) <= 1
    assert float(s["heatmap"][0, :, :8].max()) < 0.05  # nothing at the left edge
    parts = FocusDataset(data["records"], root=data["root"], transform=_tf(), heatmap="parts")[0]["heatmap"]
    assert not torch.allclose(parts, s["heatmap"]) and float(parts.max()) > 0.5
    # a record without people: an all-zero heatmap, not an error
    assert float(ds[1]["heatmap"].abs().sum()) == 0.0


def test_jpeg_draft_decoding_keeps_heatmaps_aligned(tmp_path):
    Image.new("RGB", (W * 4, H * 4), (10, 200, 30)).save(tmp_path / "big.jpg")
    Image.new("L", (W * 4, H * 4), 255).save(tmp_path / "hm.png")
    rec = {"image": "big.jpg", "captions": ["x"], "heatmap": "hm.png", "boxes": [[0, 0, 80, 160]],
           "people": [{"joints": _joints(200, 40, 280, 120), "visible": [1] * 16}]}
    for mode in ("person", "boxes", "file"):
        fast, slow = (FocusDataset([rec], root=tmp_path, transform=_tf(), heatmap=mode, draft=d)[0] for d in (True, False))
        assert torch.allclose(fast["heatmap"], slow["heatmap"], atol=0.05), mode
        assert torch.allclose(fast["image"], slow["image"], atol=0.1)
    from focusclip.data.dataset import _open_image

    img, factor = _open_image(tmp_path / "big.jpg", "RGB", "test", (S, S))
    assert img.size == (W, H) and factor == (0.25, 0.25)  # decoded at 1/4 scale, still >= 32 px


def test_box_file_none_heatmaps(data):
    kw = dict(root=data["root"], transform=_tf())
    box = FocusDataset(data["records"], heatmap="boxes", **kw)[0]["heatmap"]
    px, py = _peak(box)  # box centre (10, 20) -> (4, 16)
    assert abs(px - 4) <= 1 and abs(py - 16) <= 1
    left = FocusDataset(data["records"], heatmap="file", **kw)[0]["heatmap"]
    assert float(left[0, :, :14].min()) > 0.95 and float(left[0, :, 18:].max()) < 0.05
    ones = FocusDataset(data["records"], heatmap="none", **kw)[0]["heatmap"]
    assert torch.equal(ones, torch.ones(1, S, S))
    auto = FocusDataset(data["records"], heatmap="auto", **kw)
    assert torch.allclose(auto[0]["heatmap"], left) and torch.equal(auto[5]["heatmap"], ones)


def test_caption_modes(data):
    kw = dict(root=data["root"], transform=_tf(), heatmap="none")
    assert FocusDataset(data["records"], captions="first", **kw)[0]["text"] == "a"
    assert FocusDataset(data["records"], captions="all", **kw)[0]["text"] == ["a", "b", "c", "d"]
    ds = FocusDataset(data["records"], captions="random", seed=7, **kw)
    picks = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        picks.append(ds[0]["text"])
        assert ds[0]["text"] == picks[-1]  # same epoch, same draw
    assert len(set(picks)) >= 3  # draws change across epochs
    again = FocusDataset(data["records"], captions="random", seed=7, **kw)
    again.set_epoch(5)
    assert again[0]["text"] == picks[5]  # deterministic from (seed, epoch, index)


def test_bad_samples_skip_and_raise(data, caplog):
    ds = FocusDataset(data["records"], root=data["root"], transform=_tf(), heatmap="none", on_error="skip")
    with caplog.at_level(logging.WARNING, logger="focusclip.data.dataset"):
        s = ds[2]
    assert s["id"] == "r5"  # missing, corrupt and caption-less records are skipped
    files = [b["file"] for b in ds.bad_samples]
    assert [Path(f).name for f in files] == ["missing.jpg", "corrupt.jpg", "2.jpg"]
    assert "missing.jpg" in caplog.text and "corrupt.jpg" in caplog.text
    assert ds[3]["id"] == "r5" and len(ds.bad_samples) == 3  # known-bad indices are not retried
    recs = data["records"]
    limited = FocusDataset([recs[2], recs[0], recs[3], recs[1]], root=data["root"], transform=_tf(),
                           heatmap="none", warn_every=3600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="focusclip.data.dataset"):
        assert limited[0]["id"] == "r0" and limited[2]["id"] == "r1"
    assert len(limited.bad_samples) == 2 and len(caplog.records) == 1  # rate-limited warnings
    strict = FocusDataset(data["records"], root=data["root"], transform=_tf(), on_error="raise")
    with pytest.raises(SampleError, match=r"record 2 \(gone\), image .*missing.jpg"):
        strict[2]
    with pytest.raises(SampleError, match=r"record 3 \(bad\).*cannot read"):
        strict[3]
    with pytest.raises(SampleError, match=r"record 4 \(nocap\).*no caption"):
        strict[4]
    with pytest.raises(ValueError, match="heatmap must be one of"):
        FocusDataset(data["records"], transform=_tf(), heatmap="gaussian")


def test_paths_resolve_against_the_file_folder(data, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path.parent)
    ds = FocusDataset(data["path"], transform=_tf(), captions="first")
    assert len(ds) == 6 and ds[0]["text"] == "a" and ds.root == data["root"]
    example = FocusDataset(EXAMPLE / "data.csv", transform=_tf(), heatmap="auto", on_error="raise")
    samples = [example[i] for i in range(len(example))]
    assert [s["id"] for s in samples] == ["images/standing.jpg", "images/two_people.jpg", "images/legs_hidden.jpg"]
    assert all(float(s["heatmap"].max()) > 0.5 for s in samples)


def _fake_tokenizer(texts: list[str]) -> dict[str, torch.Tensor]:
    n = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), n, dtype=torch.long)
    for k, t in enumerate(texts):
        ids[k, : len(t)] = torch.tensor([ord(c) for c in t])
    return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def test_collator_flattens_all_captions_with_an_index():
    batch = [{"image": torch.zeros(3, 4, 4), "heatmap": torch.ones(1, 4, 4), "text": ["ab", "c"], "id": "x"},
             {"image": torch.ones(3, 4, 4), "heatmap": torch.zeros(1, 4, 4), "text": ["def"], "id": "y"}]
    out = Collator(_fake_tokenizer)(batch)
    assert out["image"].shape == (2, 3, 4, 4) and out["heatmap"].shape == (2, 1, 4, 4)
    assert out["text"]["input_ids"].shape == (3, 3) and out["text_index"].tolist() == [0, 0, 1]
    assert out["id"] == ["x", "y"]
    single = Collator(None)([dict(batch[0], text="ab")])
    assert single["text"] == ["ab"] and "text_index" not in single


def test_dataloader_with_two_workers_and_real_tokenizer(data):
    from focusclip.model.factory import get_tokenizer

    tok = get_tokenizer("clip-tiny")
    good = [r for r in data["records"] if r["id"] in ("r0", "r1", "r5")] * 3
    ds = FocusDataset(good, root=data["root"], transform=_tf(), heatmap="person", captions="first")
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=Collator(tok))
    batches = list(loader)
    assert [b["image"].shape[0] for b in batches] == [4, 4, 1]
    b = batches[0]
    assert b["heatmap"].shape == (4, 1, S, S) and b["image"].dtype == torch.float32
    ids, mask = b["text"]["input_ids"], b["text"]["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 4 and ids.dtype == torch.long
    assert b["id"] == ["r0", "r1", "r5", "r0"]
    expected = tok(["a", "only", "p", "a"])["input_ids"]
    assert torch.equal(ids, expected)


def test_auto_heatmap_follows_the_heatmaps_module(data):
    """auto = file, else the first of person / points / boxes that yields a Gaussian, else none."""
    from focusclip.heatmaps import resolve_source

    hidden = {"joints": _joints(50, 10, 70, 30), "visible": [0] * 16}
    boxed = {"image": "images/1.jpg", "id": "boxed", "captions": ["x"], "people": [hidden],
             "boxes": [[0, 0, 20, 40]]}
    parts = {"image": "images/2.jpg", "id": "cub", "captions": ["x"],
             "points": [[50, 10], [70, 30], [60, 20]], "points_visible": [1, 1, 1]}
    assert resolve_source({**boxed, "width": W, "height": H}) == "boxes"
    assert resolve_source({**parts, "width": W, "height": H}) == "points"
    assert resolve_source({**parts, "heatmap": "h.png"}) == "file"
    assert resolve_source({"image": "x.jpg", "people": [hidden]}) == "person"  # marked but hidden: empty map
    assert resolve_source({"image": "x.jpg"}) == "none"  # nothing marks a subject: the whole image
    ds = FocusDataset([boxed, parts], root=data["root"], transform=_tf(), heatmap="auto")
    px, py = _peak(ds[0]["heatmap"])  # box centre (10, 20) -> (4, 16)
    assert abs(px - 4) <= 1 and abs(py - 16) <= 1
    px, py = _peak(ds[1]["heatmap"])  # points' box centre (60, 20) -> (24, 16)
    assert abs(px - 24) <= 1 and abs(py - 16) <= 1
    explicit = FocusDataset([parts], root=data["root"], transform=_tf(), heatmap="points")[0]["heatmap"]
    assert torch.equal(explicit, ds[1]["heatmap"])

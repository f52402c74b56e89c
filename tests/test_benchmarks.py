"""Smoke runs of the performance benchmarks at their smallest sizes: result structure and checks.

Each benchmark's ``main(argv)`` is called in-process with the tiny model; the tests assert the
numbers are there and sane (positive rates, ratios, the correctness checks passed) and a few
behaviours that would break silently (the reference pipeline pads to 512 tokens, ours does not; the
GPU benchmark writes JSON + markdown and its analytic FLOPs match the flop counter).
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(autouse=True)
def _logger_levels_restored():
    """The scripts quiet some of the library's loggers for their own output; later tests need them back."""
    import logging

    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    levels = {lg: lg.level for lg in loggers}
    yield
    for lg in [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]:
        lg.setLevel(levels.get(lg, logging.NOTSET))


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_common_timing_and_table(bench):
    C = bench("_common")
    calls = []
    res = C.time_fn(lambda: calls.append(1) or len(calls), warmup=2, repeats=3)
    assert len(calls) == 5 and res["result"] == 5 and len(res["times_s"]) == 3
    assert res["min_s"] <= res["median_s"] <= res["max_s"]
    table = C.markdown_table(["a", "b"], [["x", 1.23456], ["y", None]]).splitlines()
    assert table[1] == "|---|---:|" and table[2] == "| x | 1.23 |" and table[3] == "| y | - |"
    info = C.machine_description("cpu")
    assert info["nproc"] >= 1 and "torch" in info and "CPUs" in C.machine_line(info)


def test_train_step_smoke(bench, capsys):
    ts = bench("train_step")
    out = ts.main(["--models", "focusclip-tiny", "--batch", "4", "--warmup", "1", "--steps", "1",
                   "--no-subprocess", "--frame", "640x360"])
    entry = out["models"]["focusclip-tiny"]
    ours, ref = entry["ours"], entry["reference"]
    for r in (ours, ref):
        assert _positive(r["samples_per_s"]) and _positive(r["step_s"]) and _positive(r["model_s"])
        assert r["batch"] == 4 and math.isfinite(r["loss"]) and r["peak_mem_mib"] is not None
    assert ref["text_len"] == ts.REFERENCE_CONTEXT and ours["text_len"] < ts.REFERENCE_CONTEXT
    assert _positive(entry["speedup"]) and _positive(entry["model_speedup"])
    assert entry["speedup"] == pytest.approx(ours["samples_per_s"] / ref["samples_per_s"])
    assert entry["heatmap_check"]["passed"] and entry["losses_finite"] and out["passed"]
    printed = capsys.readouterr().out
    assert "ours / reference" in printed and "| focusclip-tiny (4) | reference | 512 |" in printed


def test_train_step_reference_pooling_includes_padding(bench):
    """The reference text embedding changes with the amount of padding; ours does not."""
    import torch

    ts = bench("train_step")
    from focusclip.model.factory import create_model, get_tokenizer

    torch.manual_seed(0)
    model = create_model("focusclip-tiny", pretrained="none").eval()
    texts = ["a person is running with the left arm raised"]
    short = get_tokenizer("focusclip-tiny")(texts)
    long = get_tokenizer("focusclip-tiny", context_length=64, pad_to_max=True)(texts)
    img = torch.zeros(1, 3, model.image_size, model.image_size)
    hm = torch.ones(1, 1, model.image_size, model.image_size)
    with torch.no_grad():
        ours = [model(img, t, hm)["text_features"] for t in (short, long)]
        ref = [ts.reference_forward(model, img, t, hm)["text_features"] for t in (short, long)]
    assert torch.allclose(ours[0], ours[1], atol=1e-5)
    assert not torch.allclose(ref[0], ref[1], atol=1e-3)


def test_train_step_subprocess_worker(bench, tmp_path):
    """The isolated path: one pipeline measured in a fresh interpreter, result read back."""
    ts = bench("train_step")
    C = bench("_common")
    data = ts.make_data(2, 0, (360, 640))
    f = tmp_path / "data.json"
    f.write_text(json.dumps(data))
    res = C.run_worker(BENCH / "train_step.py", ["--worker", "--models", "focusclip-tiny", "--pipeline", "ours",
                                                 "--data", str(f), "--batch", "2", "--warmup", "0",
                                                 "--steps", "1"], timeout=120)
    assert res["pipeline"] == "ours" and _positive(res["samples_per_s"]) and res["peak_rss_mib"] > 0


def test_loader_smoke(bench):
    ld = bench("loader")
    out = ld.main(["--models", "focusclip-tiny", "--n", "4", "--frame", "320x180", "--batch", "2",
                   "--samples", "6", "--workers", "0", "1", "--step-warmup", "0", "--step-steps", "1"])
    entry = out["models"]["focusclip-tiny"]
    assert [r["workers"] for r in entry["loader"]] == [0, 1]
    assert _positive(entry["step_model_samples_per_s"])
    for r in entry["loader"]:
        assert r["images"] == 4 and r["image_size"] == 64  # 3 batches of 2, the first one excluded
        assert _positive(r["images_per_s"]) and _positive(r["ratio_to_step"])
        assert r["keeps_up"] == (r["ratio_to_step"] >= 1.0)


def test_loader_upscale_scales_coordinates(bench, tmp_path):
    from PIL import Image

    ld = bench("loader")
    Image.new("RGB", (100, 50)).save(tmp_path / "a.jpg")
    rec = {"image": "a.jpg", "width": 100, "height": 50,
           "people": [{"joints": [[10, 20]] + [[-1, -1]] * 15, "visible": [1] + [0] * 15,
                       "center": [50, 25], "box": [0, 0, 100, 50]}]}
    out = ld._upscale(rec, tmp_path, (100, 400))
    assert Image.open(tmp_path / "a.jpg").size == (400, 100)
    p = out["people"][0]
    assert p["joints"][0] == [40, 40] and p["joints"][1] == [-1.0, -1.0]
    assert p["box"] == [0, 0, 400, 100] and out["width"] == 400 and out["height"] == 100


def test_gpu_paper_cpu_dry_run(bench, tmp_path):
    gp = bench("gpu_paper")
    path = tmp_path / "r.json"
    out = gp.main(["--smoke", "--out", str(path)])
    assert out["check"]["passed"] and out["check"]["grad_cosine"] > 0.99 and out["passed"]
    rows = [r for r in out["rows"] if r["status"] == "ok"]
    assert {(r["variant"], r["setting"]) for r in rows} == {
        ("fp32", "realistic"), ("fp32", "paper-512"), ("bf16", "realistic"), ("bf16", "paper-512")}
    for r in rows:
        assert _positive(r["samples_per_s"]) and _positive(r["step_s"]) and _positive(r["tflops"])
        assert r["text_len"] == 512 if r["setting"] == "paper-512" else r["text_len"] < 512
    fl = out["flops"]
    assert fl["train_gflops_per_sample_at_512"] == pytest.approx(fl["counted_train_gflops_per_sample_at_512"],
                                                                 rel=0.05)
    assert out["projection"]["realistic"]["hours"] > 0
    saved = json.loads(path.read_text())
    assert saved["check"]["passed"] and len(saved["rows"]) == 4
    md = path.with_suffix(".md").read_text()
    assert "| bf16 | paper-512 | 4 | 512" in md and "paper pretraining" in md
    # the whole-CLIP fine-tuning step and the loader's rate with several workers
    (clip_row,) = out["whole_clip"]["rows"]
    assert out["whole_clip"]["model"] == "focusclip-openclip-tiny" and clip_row["status"] == "ok"
    assert _positive(clip_row["samples_per_s"]) and _positive(clip_row["tflops"])
    assert _positive(out["whole_clip"]["train_gflops_per_sample"])
    assert [r["workers"] for r in out["loader"]["rows"]] == [0, 2]
    assert all(_positive(r["images_per_s"]) and "keeps_up" in r for r in out["loader"]["rows"])
    assert "whole-CLIP fine-tuning step" in md and "loader, 2 workers" in md


def test_gpu_paper_flops_and_peaks(bench):
    gp = bench("gpu_paper")
    from types import SimpleNamespace

    assert gp.peak_tflops("NVIDIA H100 PCIe") == 756 and gp.peak_tflops("NVIDIA H100 80GB HBM3") == 989
    assert gp.peak_tflops("NVIDIA A100-SXM4-80GB") == 312 and gp.peak_tflops("Mystery GPU") is None
    bert = SimpleNamespace(num_hidden_layers=12, hidden_size=768, intermediate_size=3072)
    # 12 layers x (2T(4h^2 + 2h*4h) + 4T^2 h) at T=512: about 96.6 GFLOPs
    assert gp.bert_forward_flops(bert, 512) / 1e9 == pytest.approx(96.64, rel=1e-3)


def test_synthetic_benchmark_smoke(bench):
    result = bench("synthetic").main(["--n", "6", "--size", "64", "--workers", "1,2"])
    assert [r["workers"] for r in result["rows"]] == [1, 2]
    assert all(r["images"] == 6 + 12 for r in result["rows"])  # n plus max(12, n/5) held-out images
    assert result["identical_across_workers"] is True


def test_shards_benchmark_smoke(bench, capsys):
    report = bench("shards").main(["--n", "24", "--model", "focusclip-tiny", "--batch", "4", "--shard-size", "8",
                                   "--workers", "0", "--repeats", "1"])
    sources = {r["source"]: r for r in report["rows"]}
    assert set(sources) == {"image folder (records)", "shards"}
    assert all(_positive(r["images_per_s"]) and r["images"] == 20 for r in sources.values())
    assert "shards / image folder" in capsys.readouterr().out


@pytest.mark.slow
def test_detect_benchmark_smoke(bench, capsys):
    pytest.importorskip("mediapipe")
    report = bench("detect").main(["--images", "4", "--workers", "--composites", "1"])
    assert report["people_found"] == 4
    multi = {r["photos"]: r for r in report["people"] if r["detector"].startswith("multi")}
    assert multi["2-3 people (composites)"]["true"] == 2 and multi["no people"]["found"] == 0
    assert all(_positive(r["per_s"]) for r in report["steps"].values())
    assert "slowest offline step" in capsys.readouterr().out


@pytest.mark.slow
def test_long_text_benchmark_runs_every_strategy(bench, tmp_path):
    res = bench("long_text").main(["--out", str(tmp_path), "--n-train", "16", "--n-eval", "12", "--epochs", "1",
                                   "--batch-size", "8", "--workers", "0"])
    arms = {a["strategy"]: a for a in res["arms"]}
    assert set(arms) == {"truncate", "sentences", "stretch"}
    # rule descriptions are longer than 77 tokens: truncation cuts them, sentences and stretch do not
    assert arms["truncate"]["text_lengths"]["truncated_share"] > 0.5
    assert arms["sentences"]["text_lengths"]["cut_share"] == 0 and arms["stretch"]["text_lengths"]["context_length"] == 248
    for a in arms.values():
        assert math.isfinite(a["val_loss"]) and 0 <= a["retrieval"]["r1"] <= 100 and len(a["zeroshot"]) == 3
    assert "| sentences |" in res["table"] and (tmp_path / "long_text.json").is_file()


def test_focus_benchmark_smoke(bench):
    result = bench("focus").main(["--models", "focusclip-openclip-tiny", "--batch", "2", "--warmup", "0",
                                  "--repeats", "1"])
    modes = {r["mode"]: r for r in result["rows"]}
    assert set(modes) == {"highlight", "attention", "alpha"}
    assert modes["highlight"]["focus_params"] == 1 and modes["alpha"]["focus_params"] > 1000
    assert all(_positive(r["plain_ms"]) and _positive(r["ratio"]) for r in result["rows"])
    assert modes["attention"]["at_inference"] and not modes["highlight"]["at_inference"]


def test_heatmaps_benchmark_catches_subnormal_factors(bench, capsys):
    hb = bench("heatmaps")
    out = hb.main(["--frames", "small", "--maps", "person", "--repeats", "1", "--min-speedup", "0"])
    (row,) = out["rows"]
    assert row["frame"] == "small" and row["map"] == "person"
    assert row["raw_subnormals"] > 0  # the frame is issue 23's case: a plain float32 cast leaves subnormals
    assert row["ours_subnormals"] == 0 and row["map_subnormals"] == 0 and out["passed"]
    assert row["max_abs_diff"] < hb.MAX_ABS_DIFF
    for key in ("reference_ms", "ours_ms", "before_ms", "speedup", "before_speedup", "penalty"):
        assert _positive(row[key])
    assert "CPU subnormal penalty" in capsys.readouterr().out
    # the gate: a speed-up below --min-speedup fails the run (exit status 1 from the script)
    slow = hb.main(["--frames", "small", "--maps", "person", "--repeats", "1", "--min-speedup", "1e9"])
    assert not slow["passed"] and "speed-up" in slow["failures"][0]


def test_readme_shows_the_results_demo_table(bench):
    dt = bench("demo_table")
    assert dt.read_table(dt.README) == dt.read_table(dt.RESULTS)
    assert dt.main(["--check"]) == 0


def test_demo_table_from_a_summary_writes_both_files(bench, tmp_path):
    from focusclip.experiments.demo import GROUPS
    from focusclip.experiments.toolkit import summarise

    dt = bench("demo_table")
    block = f"intro\n{dt.BEGIN}\nold numbers\n{dt.END}\noutro\n"
    results, readme = tmp_path / "RESULTS.md", tmp_path / "README.md"
    results.write_text(block)
    readme.write_text(block.replace("old numbers", "older numbers"))
    paths = ["--results", str(results), "--readme", str(readme)]
    assert dt.main(["--check", *paths]) == 1  # README differs from RESULTS
    scores = {"clip": [{"synth-activity": 60.0, "synth-age": 50.0, "synth-expression": 20.0},
                       {"synth-activity": 62.0, "synth-age": 54.0, "synth-expression": 22.0}],
              "focusclip": [{"synth-activity": 70.0, "synth-age": 55.0, "synth-expression": 19.0},
                            {"synth-activity": 72.0, "synth-age": 57.0, "synth-expression": 21.0}]}
    chance = {"synth-activity": 25.0, "synth-age": 100 / 3, "synth-expression": 20.0, "headline": 26.1}
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"summary": summarise(scores, GROUPS), "chance": chance}))
    assert dt.main(["--summary", str(summary), "--measured", "commit abc, today", *paths]) == 0
    table = dt.read_table(results)
    assert table == dt.read_table(readme) and dt.main(["--check", *paths]) == 0
    assert "over 2 seeds (commit abc, today)" in table
    assert "| synth-activity (acc@3) | 25.0 | 61.0 ± 1.4 | 71.0 ± 1.4 | +10.0 |" in table
    assert "| synth-age (acc@1) | 33.3 | 52.0 ± 2.8 | 56.0 ± 1.4 | +4.0 |" in table
    assert "| headline (mean of the three) | 26.1 | 44.7 ± 1.9 | 49.0 ± 1.4 | +4.3 |" in table
    assert results.read_text().startswith("intro\n") and results.read_text().endswith(f"{dt.END}\noutro\n")
    readme.write_text("no markers here\n")
    assert dt.main(["--check", *paths]) == 1


def test_people_benchmark_smoke(bench):
    people = bench("people")
    out = people.main(["--photos", "1", "--people", "1,3", "--modes", "blur,attention", "--repeats", "1"])
    assert [(r["people"], r["mode"]) for r in out["rows"]] == [(1, "blur"), (1, "attention"), (3, "blur"),
                                                               (3, "attention")]
    for r in out["rows"]:
        assert _positive(r["photos_per_s"]) and _positive(r["batching_speedup"])
        assert r["people_per_s"] == pytest.approx(r["photos_per_s"] * r["people"])
    assert "people / photo" in people.markdown(out)

"""Bad and unusual inputs through the command line, as a new user would try them: no lost data, no silently
wrong result, one clear line instead of a traceback. Test names carry the hardening item they cover."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import focusclip
from focusclip.cli import build_parser, main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom"
STAND = [[56, 90], [57, 75], [58, 60], [70, 60], [71, 75], [72, 90], [64, 60], [64, 34], [64, 28],
         [64, 14], [50, 56], [53, 45], [56, 34], [72, 34], [75, 45], [78, 56]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    torch.manual_seed(0)
    focusclip.save_model(focusclip.create_model("focusclip-tiny"), root / "model", focusclip.get_tokenizer("focusclip-tiny"))
    return root / "model"


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(path)
    return path


def _run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


# ------------------------------------------------------------------------------------ data lost
def test_01_no_command_writes_over_its_inputs(tmp_path, capsys, photo):
    data = tmp_path / "d.jsonl"
    data.write_bytes((EXAMPLE / "data.jsonl").read_bytes()[:-1])  # no trailing newline
    before = data.read_bytes()
    rc, err = _run(capsys, "describe", str(data), "--backend", "rules", "--out", str(data))
    assert rc == 1 and "--out" in err and "also the input" in err and data.read_bytes() == before
    # appending descriptions to some other existing file (a records file) is refused too
    other = tmp_path / "other.jsonl"
    other.write_bytes(before)
    rc, err = _run(capsys, "describe", str(data), "--backend", "rules", "--out", str(other))
    assert rc == 1 and "not a descriptions file" in err and other.read_bytes() == before
    rc, err = _run(capsys, "describe", str(data), "--backend", "rules", "--out", str(tmp_path / "x.jsonl"),
                   "--records-out", str(tmp_path / "x.jsonl"))
    assert rc == 1 and "also the input --out" in err
    # heatmap and predict overlays never replace an input either
    kp = tmp_path / "kp.json"
    kp.write_text(json.dumps(STAND))
    image_bytes = photo.read_bytes()
    rc, err = _run(capsys, "heatmap", str(photo), "--keypoints", str(kp), "--out", str(photo))
    assert rc == 1 and photo.read_bytes() == image_bytes
    named_like_overlay = tmp_path / "photo_roi.png"
    Image.open(photo).save(named_like_overlay)
    saved = named_like_overlay.read_bytes()
    rc, err = _run(capsys, "predict", str(photo), str(named_like_overlay), "--labels", "a,b", "--model",
                   "focusclip-tiny", "--keypoints", str(kp), "--keypoints", str(kp), "--overlay-dir", str(tmp_path))
    assert rc == 1 and "also the input" in err and named_like_overlay.read_bytes() == saved


def test_02_embed_never_overwrites_an_existing_index(tmp_path, capsys, model_dir, photo):
    index = tmp_path / "e.txt"
    index.write_text("my own notes\n")
    rc, err = _run(capsys, "embed", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "e.npy"))
    assert rc == 1 and "e.txt already exists; pass --overwrite" in err
    assert index.read_text() == "my own notes\n" and not (tmp_path / "e.npy").exists()
    rc, _ = _run(capsys, "embed", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "e.npy"),
                 "--overwrite")
    assert rc == 0 and index.read_text().splitlines() == [str(photo)] and np.load(tmp_path / "e.npy").shape[0] == 1


def test_02_model_folders_and_images_already_there_are_not_replaced(tmp_path, capsys, model_dir, photo):
    """The same rule for the verbs that write a model folder (merge) or an image (heatmap)."""
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine\n")
    rc, err = _run(capsys, "merge", "--base", str(model_dir), "--finetuned", str(model_dir), "--out", str(kept))
    assert rc == 1 and f"--out {kept} already holds files (notes.txt); pass --overwrite" in err
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    rc, _ = _run(capsys, "merge", "--base", str(model_dir), "--finetuned", str(model_dir), "--out", str(kept),
                 "--overwrite")
    assert rc == 0 and (kept / "model.safetensors").is_file() and (kept / "notes.txt").read_text() == "mine\n"
    boxes = tmp_path / "boxes.json"
    boxes.write_text("[[10, 10, 60, 60]]")
    out = tmp_path / "overlay.png"
    out.write_bytes(b"my picture")
    rc, err = _run(capsys, "heatmap", str(photo), "--boxes", str(boxes), "--out", str(out))
    assert rc == 1 and "overlay.png already exists; pass --overwrite" in err and out.read_bytes() == b"my picture"
    assert _run(capsys, "heatmap", str(photo), "--boxes", str(boxes), "--out", str(out), "--overwrite")[0] == 0
    assert Image.open(out).size == (128, 96)
    roi = tmp_path / f"{photo.stem}_roi.png"  # predict's overlay beside an image of the same name
    roi.write_bytes(b"mine")
    args = ["predict", str(photo), "--model", str(model_dir), "--labels", "a,b", "--boxes", str(boxes),
            "--overlay-dir", str(tmp_path)]
    rc, err = _run(capsys, *args)
    assert rc == 1 and f"{photo.stem}_roi.png already exists; pass --overwrite" in err and roi.read_bytes() == b"mine"
    assert _run(capsys, *args, "--overwrite")[0] == 0 and Image.open(roi).size == (128, 96)
    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(photo, twin / photo.name)
    rc, err = _run(capsys, "predict", str(photo), str(twin / photo.name), "--model", str(model_dir), "--labels",
                   "a,b", "--boxes", str(boxes), "--boxes", str(boxes), "--overlay-dir", str(tmp_path / "o"))
    assert rc == 2 and "would both write the overlay" in err


def test_03_synth_does_not_replace_a_world_silently(tmp_path, capsys):
    out = tmp_path / "world"
    assert _run(capsys, "data", "synth", "--out", str(out), "--n", "4", "--size", "48", "--no-sheet")[0] == 0
    (out / "train.jsonl").write_text("mine\n")
    rc, err = _run(capsys, "data", "synth", "--out", str(out), "--n", "4", "--size", "48", "--no-sheet")
    assert rc == 1 and "already exists; pass --overwrite" in err and (out / "train.jsonl").read_text() == "mine\n"
    assert _run(capsys, "data", "synth", "--out", str(out), "--n", "4", "--size", "48", "--no-sheet",
                "--overwrite")[0] == 0
    assert (out / "train.jsonl").read_text() != "mine\n"


# ----------------------------------------------------------------------------- silent wrong results
def test_06_training_honours_the_split_column(tmp_path, capsys):
    from focusclip.data.validate import validate_dataset
    from focusclip.model.transforms import SampleTransform
    from focusclip.train.config import DataConfig
    from focusclip.train.data import build_dataset

    shutil.copytree(EXAMPLE / "images", tmp_path / "images")
    rows = ["image,caption,split", "images/standing.jpg,a,train", "images/two_people.jpg,b,val",
            "images/legs_hidden.jpg,c,test", "images/standing.jpg,d,"]
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    tf = SampleTransform(32, (0.5,) * 3, (0.5,) * 3)
    train = build_dataset(DataConfig(train=str(csv)), "train", tf, 32, 0)
    val = build_dataset(DataConfig(train=str(csv)), "val", tf, 32, 0)
    assert [r["captions"] for r in train.records] == [["a"], ["d"]]  # train rows and unsplit rows
    assert [r["captions"] for r in val.records] == [["b"]]  # val rows validate; test rows are never read
    report = validate_dataset(csv)
    assert dict(report.splits) == {"train": 1, "val": 1, "test": 1, "unsplit": 1}
    assert "splits: test 1, train 1, unsplit 1, val 1" in report.format()


def test_07_unknown_model_config_keys_are_errors(tmp_path, capsys, model_dir, photo):
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["vision"]["imagesize"] = 64
    (bad / "config.json").write_text(json.dumps(cfg))
    rc, err = _run(capsys, "predict", str(photo), "--model", str(bad), "--labels", "a,b")
    assert rc == 2 and "unknown key 'imagesize'" in err and "Did you mean 'image_size'" in err
    from focusclip.train import load_config, train

    conf = load_config(None, ["data.format=fake", "max_steps=1", f"out_dir={tmp_path / 'run'}",
                              "model.overrides={vision: {imagesize: 32}}"])
    with pytest.raises(ValueError, match="unknown key 'imagesize'.*Did you mean 'image_size'"):
        train(conf)


def test_08_keypoints_files_name_the_file_person_and_joint(tmp_path, capsys, photo, caplog):
    cases = {
        "nojoints.json": ([{"joints": STAND}, {"visible": [1] * 16}], "person 1 has no 'joints'"),
        "bool.json": ([{"joints": [[True, 2]] + STAND[1:]}], r"person 0 joint 0 (r_ankle) is [True, 2]"),
        "string.json": ([{"joints": STAND[:3] + [["70", 60]] + STAND[4:]}], "person 0 joint 3 (l_hip) is ['70', 60]"),
        "far.json": ([{"joints": [[x + 5000, y] for x, y in STAND]}], "all 16 visible joints lie outside the 128x96"),
    }
    for name, (obj, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(obj))
        rc, err = _run(capsys, "heatmap", str(photo), "--keypoints", str(tmp_path / name), "--out",
                       str(tmp_path / "o.png"))
        assert rc == 1 and name in err and message in err, (name, err)
    partly = [[x + 100, y] if j < 2 else [x, y] for j, (x, y) in enumerate(STAND)]
    (tmp_path / "partly.json").write_text(json.dumps(partly))
    with caplog.at_level(logging.WARNING):
        rc, _ = _run(capsys, "heatmap", str(photo), "--keypoints", str(tmp_path / "partly.json"), "--out",
                     str(tmp_path / "o.png"))
    assert rc == 0 and "2 of 16 visible joints lie outside the 128x96 image (r_ankle, r_knee)" in caplog.text


def test_09_a_file_that_validates_is_a_file_that_trains(tmp_path, capsys):
    from focusclip.data.sources import read_dataset_file
    from focusclip.data.validate import validate_dataset

    shutil.copytree(EXAMPLE / "images", tmp_path / "images")
    good = {"image": "images/standing.jpg", "captions": ["x"]}
    bad_rows = {"labels-list": {**good, "labels": ["kid", "happy"]},
                "string-visible": {**good, "people": [{"joints": STAND, "visible": ["1"] * 16}]}}
    for name, row in bad_rows.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        report = validate_dataset(path)
        assert not report.ok, name
        with pytest.raises(ValueError):  # the loaders reject what the validator rejects
            read_dataset_file(path)
    typo = tmp_path / "typo.csv"
    typo.write_text("image,captoin\nimages/standing.jpg,a person standing\n")
    report = validate_dataset(typo)
    assert not report.ok  # no record has a caption: it could not train
    assert "unknown column" in report.counts and "Did you mean 'caption'" in report.format()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert not validate_dataset(empty).ok and "no records" in validate_dataset(empty).counts
    assert main(["data", "validate", str(EXAMPLE / "data.csv")]) == 0  # validates, and every record loads:
    records, _ = read_dataset_file(EXAMPLE / "data.csv")
    assert len(records) == validate_dataset(EXAMPLE / "data.csv").n_records


def test_10_counts_must_be_positive(tmp_path, capsys, model_dir, photo, caplog):
    from focusclip.train import load_config

    assert _run(capsys, "predict", str(photo), "--model", str(model_dir), "--labels", "a,b", "--topk", "0")[0] == 2
    assert _run(capsys, "predict", str(photo), "--model", str(model_dir), "--labels", "a,b", "--topk", "-2")[0] == 2
    assert _run(capsys, "describe", str(EXAMPLE / "data.jsonl"), "--backend", "rules", "--out",
                str(tmp_path / "d.jsonl"), "--limit", "-1")[0] == 2
    assert _run(capsys, "embed", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "e.npy"),
                "--batch-size", "0")[0] == 2
    with pytest.raises(ValueError, match="data.limit"):
        load_config(None, ["data.format=fake", "data.limit=0"])
    with caplog.at_level(logging.WARNING):
        rc, _ = _run(capsys, "predict", str(photo), "--model", str(model_dir), "--labels", "Happy,happy,sad")
    assert rc == 0 and "differ only in case" in caplog.text


def test_11_yaml_numbers_written_like_1e_3(tmp_path):
    from focusclip.train import load_config

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  format: fake\noptim:\n  lr: 1e-3\n  weight_decay: 5E-2\n")
    cfg = load_config(path)
    assert cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 0.05


def test_12_resume_with_another_config_is_refused(tmp_path, caplog):
    from focusclip.train import train
    from focusclip.train.config import ConfigError

    run = tmp_path / "run"
    base = {"out_dir": str(run), "seed": 0, "batch_size": 8, "max_steps": 3, "stop_after_steps": 1,
            "data": {"format": "fake", "fake_size": 16}, "model": {"name": "focusclip-tiny"},
            "log": {"tensorboard": False, "plot": False}}
    train(base)
    with pytest.raises(ConfigError, match=r"different configuration: optim.lr: 0.0005 -> 0.01"):
        train({**base, "resume": "latest", "optim": {"lr": 0.01}})
    assert "lr: 0.0005" in (run / "config.yaml").read_text()  # untouched
    train({**base, "resume": "latest", "optim": {"lr": 0.01}}, allow_config_change=True)
    assert "lr: 0.01" in (run / "config.yaml").read_text()
    assert "lr: 0.0005" in (run / "config-before-step-00000001.yaml").read_text()  # the earlier one is kept
    train({**base, "resume": "latest", "optim": {"lr": 0.01}, "stop_after_steps": None})  # unchanged: fine
    with caplog.at_level(logging.WARNING):
        train({**base, "out_dir": str(tmp_path / "fresh"), "resume": "latest"})
    assert any(r.levelno == logging.WARNING and "no checkpoint" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- tracebacks -> messages
def _bad_weights(model_dir: Path, tmp_path: Path, content: bytes) -> Path:
    broken = tmp_path / f"broken{len(content)}"
    shutil.copytree(model_dir, broken)
    (broken / "model.safetensors").write_bytes(content)
    return broken


@pytest.mark.parametrize("case", ["truncated weights", "empty weights", "model is a file", "cuda predict",
                                  "cuda embed", "cuda eval", "labels-file folder", "keypoints folder",
                                  "heatmap out folder", "describe records folder", "data.train folder",
                                  "pixel limit", "loss weights", "every sample bad", "synth out is a file"])
def test_14_one_line_instead_of_a_traceback(case, tmp_path, capsys, model_dir, photo, monkeypatch):
    if torch.cuda.is_available() and case.startswith("cuda"):
        pytest.skip("this machine has a GPU")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    predict = ["predict", str(photo), "--labels", "a,b", "--model"]
    argv, expect = {
        "truncated weights": (predict + [str(_bad_weights(model_dir, tmp_path, (model_dir / "model.safetensors")
                                                            .read_bytes()[:500]))], "damaged or incomplete weights"),
        "empty weights": (predict + [str(_bad_weights(model_dir, tmp_path, b""))], "damaged or incomplete weights"),
        "model is a file": (predict + [str(photo)], "is a file; a saved model is a directory"),
        "cuda predict": (predict + [str(model_dir), "--device", "cuda"], "CUDA is not available"),
        "cuda embed": (["embed", str(photo), "--model", str(model_dir), "--out", str(tmp_path / "e.npy"),
                        "--device", "cuda"], "CUDA is not available"),
        "cuda eval": (["eval", "--model", str(model_dir), "--tasks", "synth-age", "--data-root", str(tmp_path),
                       "--device", "cuda", "--out", str(tmp_path / "r.json")], "CUDA is not available"),
        "labels-file folder": (["predict", str(photo), "--model", str(model_dir), "--labels-file", str(folder)],
                               "is a folder; expected a labels file"),
        "keypoints folder": (["heatmap", str(photo), "--keypoints", str(folder), "--out", str(tmp_path / "o.png")],
                             "is a folder; expected a keypoints file"),
        "heatmap out folder": (["heatmap", str(photo), "--boxes", str(tmp_path / "b.json"), "--out", str(folder)],
                               "--out " + str(folder) + " is a folder; expected a file name"),
        "describe records folder": (["describe", str(folder), "--backend", "rules", "--out", str(tmp_path / "d.jsonl")],
                                    "is a folder; expected a records .jsonl"),
        "data.train folder": (["train", "data.format=records", f"data.train={folder}", "model.name=focusclip-tiny",
                               f"out_dir={tmp_path / 'run'}"], "is a folder; expected a records .jsonl"),
        "pixel limit": (predict + [str(model_dir)], "FOCUSCLIP_MAX_IMAGE_PIXELS"),
        "loss weights": (["train", "data.format=fake", "loss.weights=[1,1,x]"], "config loss.weights: expected three"),
        "every sample bad": (["train", f"data.train={tmp_path / 'bad.jsonl'}", "model.name=focusclip-tiny",
                              f"out_dir={tmp_path / 'run'}", "data.num_workers=1", "batch_size=2"],
                             "no loadable sample"),
        "synth out is a file": (["data", "synth", "--out", str(photo), "--n", "2"], "is a file; expected a folder"),
    }[case]
    (tmp_path / "b.json").write_text("[[1, 2, 30, 40]]")
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps({"image": f"gone{i}.jpg", "captions": ["x"]}) + "\n"
                                                for i in range(4)))
    if case == "pixel limit":
        monkeypatch.setenv("FOCUSCLIP_MAX_IMAGE_PIXELS", "1000")
    try:
        rc, err = _run(capsys, *argv)
    finally:
        Image.MAX_IMAGE_PIXELS = 89_478_485
    assert rc in (1, 2) and len(_error_lines(err)) == 1 and expect in err, err


def test_14_usage_errors_exit_2_failures_exit_1_and_v_shows_the_traceback(tmp_path, capsys, model_dir):
    assert _run(capsys, "predict", "x.jpg", "--model", str(model_dir), "--labels", "only-one")[0] == 2
    assert _run(capsys, "predict", str(tmp_path / "missing.jpg"), "--model", str(model_dir), "--labels", "a,b")[0] == 1
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "missing.jpg"), "--model", str(model_dir), "--labels", "a,b", "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_15_messages_name_the_file(tmp_path, capsys, model_dir):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("image,caption\nimg.jpg,caf\xe9\n".encode("latin-1"))
    rc, err = _run(capsys, "data", "validate", str(latin))
    assert "latin1.csv: not UTF-8 text" in err
    not_mat = tmp_path / "annotations.mat"
    not_mat.write_text("this is text")
    (tmp_path / "images").mkdir()  # beside --out: no command writes inside its inputs
    rc, err = _run(capsys, "data", "mpii", "--annotations", str(not_mat), "--images", str(tmp_path / "images"),
                   "--out", str(tmp_path / "out"))
    assert rc == 1 and "annotations.mat: not a MATLAB .mat file" in err
    rc, err = _run(capsys, "eval", "--model", str(model_dir), "--tasks", "synth-age", "--data-root", "x/{y}/{dataset}")
    assert rc == 2 and "unknown placeholder {y}" in err


def test_16_command_line_habits(tmp_path, capsys, model_dir, photo):
    # -v / -q after the verb; errors name the sub-verb
    assert main(["models", "-q"]) == 0
    rc, err = _run(capsys, "data", "mpii", "--annotations", str(tmp_path / "no.mat"), "--images", ".", "--out",
                   str(tmp_path / "o"), "-q")
    assert rc == 1 and err.splitlines()[-1].startswith("focusclip data mpii: error:")
    assert main(["data", "mpii", "--annotations", str(tmp_path / "no.mat"), "--images", ".", "--out",
                 str(tmp_path / "o"), "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err  # -v after the verb works too
    # predict and embed take images the same way, and both take registered model names
    assert _run(capsys, "embed", str(photo), "--model", "focusclip-tiny", "--out", str(tmp_path / "e.npy"))[0] == 0
    assert _run(capsys, "predict", str(photo), "--model", "focusclip-tiny", "--labels", "a,b")[0] == 0
    # every option of every verb has a help text
    def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += all_parsers(sub)
        return found

    skip = (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in all_parsers(build_parser()) for a in p._actions
               if not isinstance(a, skip) and not a.help]
    assert not missing, missing


def test_16_truncation_is_reported_once_per_run_with_a_count(tmp_path, caplog):
    from focusclip.train import train

    shutil.copytree(EXAMPLE / "images", tmp_path / "images")
    long = " ".join(["the person stands with the left arm raised"] * 20)
    rows = [{"image": f"images/{n}.jpg", "captions": [long if i % 2 else "short"]}
            for i, n in enumerate(["standing", "two_people", "legs_hidden", "standing"] * 2)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        train({"out_dir": str(tmp_path / "run"), "batch_size": 4, "epochs": 2, "model": {"name": "focusclip-tiny"},
               "data": {"train": str(data), "captions": "first", "context_length": 16},
               "log": {"tensorboard": False, "plot": False}})
    notes = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert notes == ["8 of 16 training texts (50.0%) were longer than 16 tokens and were truncated (raise "
                     "data.context_length or shorten the captions)"]


def test_17_eval_reads_the_demo_data_folder_and_writes_nothing_when_all_is_absent(tmp_path, capsys, model_dir):
    from focusclip.data.synthetic import generate_world

    generate_world(tmp_path / "demo" / "data", n=4, seed=0, image_size=48, eval_n=12, show_progress=False)
    out = tmp_path / "r.json"
    rc, _ = _run(capsys, "eval", "--model", str(model_dir), "--tasks", "synthetic", "--data-root",
                 str(tmp_path / "demo" / "data"), "--out", str(out), "--workers", "0", "--no-confusion")
    assert rc == 0 and len(json.loads(out.read_text())["results"]) == 3
    nothing = tmp_path / "nothing.json"
    rc, err = _run(capsys, "eval", "--model", str(model_dir), "--tasks", "paper", "--data-root",
                   str(tmp_path / "nowhere" / "{dataset}"), "--out", str(nothing), "--workers", "0")
    assert rc == 1 and not nothing.exists() and not nothing.with_suffix(".md").exists()

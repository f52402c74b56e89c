"""CUB-200-2011 in the release's layout (plus Reed et al.'s text_c10) -> bird training records."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from focusclip.cli import main
from focusclip.data.cub import CubError, convert_cub
from focusclip.data.records import read_records
from focusclip.describe.birds import describe_bird
from focusclip.describe.rules import RulesDescriber
from focusclip.heatmaps import record_heatmap, resolve_source
from focusclip.skeleton import CUB_PARTS
from focusclip.zeroshot.datasets import load_benchmark

CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani"]
W, H = 120, 80
# a bird facing left: beak at the far left, tail at the right, body level; legs and right side hidden
PARTS = {"back": (70, 30), "beak": (20, 32), "belly": (60, 50), "breast": (45, 45), "crown": (32, 24),
         "forehead": (26, 26), "left eye": (30, 30), "left wing": (75, 38), "nape": (40, 26),
         "tail": (105, 36), "throat": (36, 40)}


def make_cub(base, with_text=True):
    """CUB_200_2011/ with images.txt ... parts/part_locs.txt, 3 images per class; text_c10/ beside it."""
    root = base / "CUB_200_2011"
    (root / "parts").mkdir(parents=True)
    images, labels, split, boxes, locs = [], [], [], [], []
    n = 0
    for c, cname in enumerate(CLASSES, 1):
        for j in range(3):
            n += 1
            rel = f"{cname}/{cname.split('.')[1]}_{j:04d}_{n}.jpg"
            (root / "images" / cname).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (W, H), (40 * c, 90, 60)).save(root / "images" / rel)
            images.append(f"{n} {rel}")
            labels.append(f"{n} {c}")
            split.append(f"{n} {int(j < 2)}")
            boxes.append(f"{n} 10.0 15.0 100.0 50.0")
            for p, name in enumerate(CUB_PARTS, 1):
                x, y = PARTS.get(name, (0, 0))
                locs.append(f"{n} {p} {float(x)} {float(y)} {int(name in PARTS)}")
            if with_text and n != 2:
                txt = base / "text_c10" / cname / f"{cname.split('.')[1]}_{j:04d}_{n}.txt"
                txt.parent.mkdir(parents=True, exist_ok=True)
                txt.write_text("".join(f"this bird has a white belly and a short beak {k}.\n" for k in range(10)))
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "classes.txt").write_text("\n".join(f"{i} {c}" for i, c in enumerate(CLASSES, 1)) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    (root / "parts" / "parts.txt").write_text("".join(f"{i} {p}\n" for i, p in enumerate(CUB_PARTS, 1)))
    (root / "parts" / "part_locs.txt").write_text("\n".join(locs) + "\n")
    (root / "trainvalclasses.txt").write_text("\n".join(CLASSES[:3]) + "\n")
    (root / "testclasses.txt").write_text(CLASSES[3] + "\n")
    return root


def test_official_split_keeps_box_parts_visibility_and_reed_captions(tmp_path):
    root = make_cub(tmp_path)
    by_split, counts = convert_cub(tmp_path, "official", text_c10=tmp_path / "text_c10", describe=describe_bird)
    assert sorted(by_split) == ["test", "train"] and len(by_split["train"]) == 8 and len(by_split["test"]) == 4
    rec = by_split["train"][0]
    assert rec["boxes"] == [[10.0, 15.0, 110.0, 65.0]] and (rec["width"], rec["height"]) == (W, H)
    assert rec["points"][CUB_PARTS.index("beak")] == [20.0, 32.0]
    assert rec["points"][CUB_PARTS.index("right eye")] == [-1, -1]
    assert sum(rec["points_visible"]) == len(PARTS) and rec["labels"] == {"species": "Black footed Albatross"}
    assert len(rec["captions"]) == 10 and rec["captions"][0] == "this bird has a white belly and a short beak 0."
    # image 2 has no text_c10 file: counted, described by rules instead
    second = by_split["train"][1]
    assert second["caption_sources"] == ["rules-birds"] and "Black footed Albatross" in second["captions"][0]
    assert counts.skipped["image without a text_c10 file (rule description used)"] == 1
    assert (root / "images").is_dir()


def test_bird_records_feed_points_and_parts_heatmaps(tmp_path):
    make_cub(tmp_path)
    rec = convert_cub(tmp_path, "official")[0]["train"][0]
    assert resolve_source(rec, "auto") == "points"
    points = record_heatmap(rec, (H, W), "points")
    parts = record_heatmap(rec, (H, W), "parts")
    # one Gaussian centred on the box of the visible parts (x 20..105, y 24..50) vs one per part group
    assert np.unravel_index(points.argmax(), points.shape) == (37, 62)
    assert parts.shape == (H, W) and not np.allclose(parts, points) and parts.max() > 0.9
    assert parts[32, 28] > points[32, 28]  # the head group peaks near the head


def test_rule_bird_description_reads_the_geometry(tmp_path):
    make_cub(tmp_path, with_text=False)
    rec = convert_cub(tmp_path, "official")[0]["train"][0]
    text = describe_bird(rec)
    assert text.split(".")[0] in {"A photo of a Black footed Albatross", "This is a picture of a Black footed "
                                  "Albatross", "The image shows a Black footed Albatross"}
    assert "to the left" in text and "level" in text and "We see its left side." in text
    assert "its legs are hidden" in text and ("The bird fills" in text or "It takes up" in text)
    assert "Albatross" not in describe_bird(rec, species=False)
    assert describe_bird(rec) == describe_bird(rec)
    assert RulesDescriber().describe(rec).description == text  # the rules backend dispatches birds


def test_zeroshot_split_is_class_disjoint(tmp_path):
    make_cub(tmp_path)
    by_split, counts = convert_cub(tmp_path, "zeroshot", val_fraction=0.25)
    species = {name: {r["labels"]["species"] for r in recs} for name, recs in by_split.items()}
    assert species["unseen"] == {"Groove billed Ani"} and len(by_split["unseen"]) == 3
    assert (species["train"] | species["val"]).isdisjoint(species["unseen"])
    assert len(by_split["train"]) + len(by_split["val"]) == 9 and len(by_split["val"]) == 2
    (tmp_path / "CUB_200_2011" / "testclasses.txt").write_text(CLASSES[0] + "\n")
    with pytest.raises(CubError, match="class-disjoint"):
        convert_cub(tmp_path, "zeroshot")
    with pytest.raises(FileNotFoundError, match="Xian"):
        convert_cub(tmp_path, "zeroshot", unseen_classes=tmp_path / "missing.txt")


def test_zeroshot_eval_task_reads_only_unseen_classes(tmp_path):
    make_cub(tmp_path)
    d = load_benchmark("cub", tmp_path, "all", classes_file="testclasses.txt")
    assert d.classes == ["Groove billed Ani"] and len(d.samples) == 3


def test_cli_data_cub_then_train_recipe_config_loads(tmp_path, capsys):
    root = tmp_path / "cub"  # the output goes beside the dataset: a command never writes inside its inputs
    root.mkdir()
    make_cub(root)
    out = tmp_path / "cub-zs"
    assert main(["data", "cub", "--root", str(root), "--out", str(out), "--split", "zeroshot",
                 "--text-c10", str(root / "text_c10")]) == 0
    assert "unseen records: 3" in capsys.readouterr().out
    recs = read_records(out / "train.jsonl")
    assert all((out / r["image"]).is_file() for r in recs)
    assert main(["data", "validate", str(out / "unseen.jsonl")]) == 0
    from focusclip.train import load_config

    for name in ("cub-focusclip", "cub-clip"):
        cfg = load_config(f"configs/{name}.yaml")
        assert cfg.eval.tasks == ["cub200-unseen"] and cfg.data.train.endswith("train.jsonl")

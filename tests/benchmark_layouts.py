"""Tiny fixtures of every zero-shot benchmark, written in each dataset's distributed layout (shared by the
loader tests and the evaluation tests).

Each writer returns ``{task_name: {level: class key}}``: every image's pixels (inside the crop box when
the task crops) are a solid grey ``level`` that stands for its true class, so an oracle model can read
the class back from the pixels (see test_zeroshot_eval.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

LEVELS = (40, 65, 90, 115, 140, 165, 190, 215, 240)
Truth = dict[str, dict[int, str]]


def _img(path: Path, level: int, size: tuple[int, int] = (64, 48), box: tuple | None = None, grey: bool = False):
    """A solid ``level`` image, or a black one with ``level`` inside ``box`` (x1, y1, x2, y2)."""
    w, h = size
    arr = np.full((h, w), level if box is None else 0, np.uint8)
    if box is not None:
        x1, y1, x2, y2 = (int(v) for v in box)
        arr[y1:y2, x1:x2] = level
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr if grey else np.stack([arr] * 3, -1)).save(path, quality=95)


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _add(truth: Truth, task: str, level: int, key: str) -> None:
    got = truth.setdefault(task, {}).setdefault(level, key)
    assert got == key, "fixture bug: one level must stand for one class per task"


# ------------------------------------------------------------------------------------ Stanford 40
STANFORD_ACTIONS = ["applauding", "riding_a_horse", "cooking", "waving_hands"]


def write_stanford40(root: Path) -> Truth:
    truth: Truth = {}
    (root / "ImageSplits").mkdir(parents=True)
    (root / "ImageSplits/actions.txt").write_text(
        "action_name\tnumber_of_images\n" + "".join(f"{a}\t3\n" for a in STANFORD_ACTIONS))
    test, train = [], []
    for j, action in enumerate(STANFORD_ACTIONS):
        for n in (1, 2, 3):
            name = f"{action}_{n:03d}.jpg"
            box = (10 + n, 8, 40 + n, 40)
            _img(root / "JPEGImages" / name, LEVELS[j])
            (root / "XMLAnnotations").mkdir(exist_ok=True)
            (root / "XMLAnnotations" / name.replace(".jpg", ".xml")).write_text(
                f"<annotation><filename>{name}</filename><object><action>{action}</action><bndbox>"
                f"<xmax>{box[2]}</xmax><xmin>{box[0]}</xmin><ymax>{box[3]}</ymax><ymin>{box[1]}</ymin>"
                "</bndbox></object></annotation>")
            (train if n == 1 else test).append(name)
            if n > 1:
                _add(truth, "stanford40", LEVELS[j], action)
                _add(truth, "stanford40-crop", LEVELS[j], action)
    (root / "ImageSplits/train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageSplits/test.txt").write_text("\n".join(test) + "\n")
    for a in STANFORD_ACTIONS:
        (root / f"ImageSplits/{a}_test.txt").write_text(f"{a}_002.jpg\n{a}_003.jpg\n")
    return truth


# ---------------------------------------------------------------------------------- Kinetics-400
def write_mp4(path: Path, levels: list[int], size: int = 32) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for lv in levels:
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), lv, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_kinetics400(root: Path) -> Truth:
    truth: Truth = {}
    labels = ["abseiling", "air drumming", "playing bagpipes"]
    rows = [["abseiling", "aaa", 10, 20, "test"], ["air drumming", "bbb", 0, 10, "test"],
            ["playing bagpipes", "ccc", 5, 15, "test"], ["abseiling", "ddd", 30, 40, "test"],
            ["playing bagpipes", "gone", 0, 10, "test"]]  # "gone": no clip on disk
    _csv(root / "test.csv", ["label", "youtube_id", "time_start", "time_end", "split"], rows)
    _csv(root / "train.csv", ["label", "youtube_id", "time_start", "time_end", "split"],
         [["abseiling", "zzz", 0, 10, "train"]])
    lv = {lab: LEVELS[i] for i, lab in enumerate(labels)}
    # a video whose middle frame (and only it) carries the class level
    write_mp4(root / "test/aaa_000010_000020.mp4", [0, 0, 0, 255, lv["abseiling"], 255, 0, 0, 0])
    for i, f in enumerate([0, lv["air drumming"], 255]):  # extracted frames: the middle one is 001
        _img(root / f"test/bbb_000000_000010/{i:03d}.jpg", f, (32, 32))
    _img(root / "test/ccc_000005_000015.jpg", lv["playing bagpipes"], (32, 32))  # one frame per clip
    write_mp4(root / "test/ddd_000030_000040.mkv", [0] + [lv["abseiling"]] * 3 + [0])
    for lab in labels:
        _add(truth, "kinetics400", lv[lab], lab)
    return truth


# ---------------------------------------------------------------------------------------- EMOTIC
EMOTIC_PEOPLE = [  # (image, box, categories, age); combined=True: val/test style combined_categories
    ("a.jpg", (4, 4, 30, 40), ["Happiness", "Engagement"], "Adult"),
    ("a.jpg", (34, 4, 60, 40), ["Fear"], "Kid"),
    ("b.jpg", (10, 10, 40, 44), ["Doubt/Confusion", "Sadness", "Pain"], "Teenager"),
    ("c.jpg", (0, 0, 32, 24), ["Anticipation"], "Adult"),
]


def write_emotic(root: Path, layout: str = "mat") -> Truth:
    from scipy.io import savemat

    truth: Truth = {}
    images: dict[str, list] = {}
    for i, (name, box, cats, age) in enumerate(EMOTIC_PEOPLE):
        images.setdefault(name, []).append((box, LEVELS[i]))
        _add(truth, "emotic-emotion", LEVELS[i], cats[0])
        _add(truth, "emotic-age", LEVELS[i], age.lower())
    for name, people in images.items():
        arr = np.zeros((48, 64, 3), np.uint8)
        for (x1, y1, x2, y2), lv in people:
            arr[y1:y2, x1:x2] = lv
        p = root / "emotic/mscoco/images" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(p, quality=95)
    if layout == "csv":
        rows = [[i, "mscoco/images", name, "[48, 64]", str(list(box)), str(cats), "[5, 5, 5]", "Male", age]
                for i, (name, box, cats, age) in enumerate(EMOTIC_PEOPLE)]
        _csv(root / "emotic_pre/test.csv", ["Index", "Folder", "Filename", "Image Size", "BBox",
                                            "Categorical_Labels", "Continuous_Labels", "Gender", "Age"], rows)
        return truth
    person_dt = [("body_bbox", "O"), ("annotations_categories", "O"), ("combined_categories", "O"),
                 ("gender", "O"), ("age", "O")]
    cat_dt = [("categories", "O")]

    def person(box, cats, age, combined):
        p = np.zeros((1,), dtype=person_dt)
        p[0]["body_bbox"] = np.array(box, float)
        ann = np.zeros((1, 2), dtype=cat_dt)  # two annotators; the union is used when not combined
        ann[0, 0]["categories"] = np.array(cats[:1], dtype=object)
        ann[0, 1]["categories"] = np.array(cats[1:] or cats[:1], dtype=object)
        p[0]["annotations_categories"] = ann
        p[0]["combined_categories"] = np.array(cats if combined else [], dtype=object)
        p[0]["gender"], p[0]["age"] = "Male", age
        return p

    entry_dt = [("filename", "O"), ("folder", "O"), ("person", "O")]
    test = np.zeros((1, len(images)), dtype=entry_dt)
    for j, name in enumerate(images):
        people = [person(box, cats, age, combined=k % 2 == 0)
                  for k, (n, box, cats, age) in enumerate(EMOTIC_PEOPLE) if n == name]
        test[0, j]["filename"], test[0, j]["folder"] = name, "mscoco/images"
        test[0, j]["person"] = np.concatenate(people)[None, :]
    train = np.zeros((1, 1), dtype=entry_dt)
    train[0, 0]["filename"], train[0, 0]["folder"] = "a.jpg", "mscoco/images"
    train[0, 0]["person"] = person((0, 0, 10, 10), ["Anger"], "Kid", False)[None, :]
    (root / "Annotations").mkdir(parents=True)
    savemat(str(root / "Annotations/Annotations.mat"), {"train": train, "val": train, "test": test})
    return truth


# --------------------------------------------------------------------------------------- LAGENDA
def write_lagenda(root: Path) -> Truth:
    truth: Truth = {}
    ages = [5, 12.0, 13, 19, 20, 47.5]
    keys = ["kid", "kid", "teenager", "teenager", "adult", "adult"]
    lv = {"kid": LEVELS[0], "teenager": LEVELS[1], "adult": LEVELS[2]}
    rows = []
    for i, (age, key) in enumerate(zip(ages, keys)):
        body, face = (8, 4, 40, 46), (16, 6, 30, 20)
        arr = np.zeros((48, 64, 3), np.uint8)
        arr[body[1]:body[3], body[0]:body[2]] = lv[key]
        img = root / "images" / f"{i}.jpg"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(img, quality=95)
        fbox = face if i != 5 else (-1, -1, -1, -1)  # the last has no face box
        rows.append([f"images/{i}.jpg", *fbox, *body, "M", age])
    rows.append(["images/0.jpg", 16, 6, 30, 20, 8, 4, 40, 46, "F", -1])  # unknown age: skipped
    rows.append(["images/4.jpg", 16, 6, 30, 20, -1, -1, -1, -1, "F", 30])  # no body box (face: adult)
    _csv(root / "lagenda_annotation.csv", ["img_name", "face_x0", "face_y0", "face_x1", "face_y1", "person_x0",
                                            "person_y0", "person_x1", "person_y1", "gender", "age"], rows)
    for key in keys:
        _add(truth, "lagenda-body", lv[key], key)
        _add(truth, "lagenda-face", lv[key], key)
    return truth


# --------------------------------------------------------------------------------------- UTKFace
def write_utkface(root: Path) -> Truth:
    truth: Truth = {}
    cases = [(1, "baby"), (2, "baby"), (3, "child"), (9, "child"), (10, "teenager"), (19, "teenager"),
             (20, "young adult"), (29, "young adult"), (30, "adult"), (85, "adult")]
    lv = {"baby": LEVELS[0], "child": LEVELS[1], "teenager": LEVELS[2], "young adult": LEVELS[3],
          "adult": LEVELS[4]}
    for i, (age, key) in enumerate(cases):
        _img(root / "UTKFace" / f"{age}_{i % 2}_{i % 5}_2017010914240{i}075.jpg.chip.jpg", lv[key], (40, 40))
        _add(truth, "utkface", lv[key], key)
    for bad in ("39_1_20170116174525125.jpg.chip.jpg", "61_3_20170109150557335.jpg.chip.jpg"):
        _img(root / "UTKFace" / bad, 0, (40, 40))
    return truth


# -------------------------------------------------------------------------------------- FairFace
FAIRFACE_RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
FAIRFACE_AGES = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "more than 70"]


def write_fairface(root: Path) -> Truth:
    truth: Truth = {}
    rows = []
    for i, (race, age) in enumerate(zip(FAIRFACE_RACES, FAIRFACE_AGES), 1):
        _img(root / f"fairface-img-margin025-trainval/val/{i}.jpg", LEVELS[i], (40, 40))
        rows.append([f"val/{i}.jpg", age, "Male", race, "True"])
        _add(truth, "fairface-race", LEVELS[i], race)
        _add(truth, "fairface-age", LEVELS[i], age)
    _csv(root / "fairface_label_val.csv", ["file", "age", "gender", "race", "service_test"], rows)
    _csv(root / "fairface_label_train.csv", ["file", "age", "gender", "race", "service_test"],
         [["train/1.jpg", "20-29", "Male", "White", "False"]])
    return truth


# -------------------------------------------------------------------------------- FER2013 / FER+
FER_KEYS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _pixels(level: int) -> str:
    return " ".join([str(level)] * 2304)


def write_fer2013(root: Path, layout: str = "csv") -> Truth:
    truth: Truth = {}
    if layout == "folders":
        for e, key in enumerate(FER_KEYS):
            for n in range(2):
                _img(root / f"test/{key}/PrivateTest_{e}{n}.jpg", LEVELS[e], (48, 48), grey=True)
            _img(root / f"train/{key}/Training_{e}.jpg", LEVELS[e], (48, 48), grey=True)
            _add(truth, "fer2013", LEVELS[e], key)
        return truth
    rows = []
    for e, key in enumerate(FER_KEYS):
        rows.append([e, _pixels(LEVELS[e]), "Training"])
        rows.append([e, _pixels(LEVELS[e]), "PublicTest"])
        rows.append([e, _pixels(LEVELS[e]), "PrivateTest"])
        _add(truth, "fer2013", LEVELS[e], key)
    rows.append([3, _pixels(0), "Training"])  # a training row that would fail the oracle if read
    _csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"], rows)
    return truth


FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
                  "fear", "contempt", "unknown", "NF"]


def write_ferplus(root: Path) -> Truth:
    truth: Truth = {}
    lv = {"happy": LEVELS[0], "contempt": LEVELS[1], "neutral": LEVELS[2], "sad": LEVELS[3]}
    rows = [  # (usage, votes in FERPLUS_HEADER order, level, expected)
        ("Training", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 0, None),
        ("PrivateTest", [0, 8, 1, 0, 0, 0, 0, 1, 0, 0], lv["happy"], "happy"),
        ("PrivateTest", [1, 0, 0, 0, 0, 0, 0, 6, 3, 0], lv["contempt"], "contempt"),
        ("PrivateTest", [6, 0, 0, 2, 0, 0, 0, 0, 2, 0], lv["neutral"], "neutral"),
        ("PrivateTest", [2, 0, 0, 5, 0, 0, 0, 0, 3, 0], lv["sad"], "sad"),
        ("PrivateTest", [1, 0, 0, 0, 0, 0, 0, 0, 7, 2], 0, None),  # unknown wins: dropped
        ("PrivateTest", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 0, None),  # no face: dropped
        ("PrivateTest", [4, 4, 0, 0, 0, 0, 0, 0, 2, 0], 0, None),  # tie: dropped
        ("PrivateTest", [0] * 10, 0, None),  # no votes: dropped
        ("PublicTest", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 0, None),  # FER+ validation, not test
    ]
    new, old = [], []
    for i, (usage, votes, level, key) in enumerate(rows):
        new.append([usage, f"fer{i:07d}.png", *votes])
        old.append([0, _pixels(level), usage])
        if key:
            _add(truth, "ferplus", level, key)
    _csv(root / "fer2013new.csv", FERPLUS_HEADER, new)
    _csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"], old)
    return truth


# ------------------------------------------------------------------------------------------- CUB
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "017.Cardinal"]


def write_cub(root: Path) -> Truth:
    truth: Truth = {}
    base = root / "CUB_200_2011"
    images, labels, split, boxes = [], [], [], []
    n = 0
    for c, cname in enumerate(CUB_CLASSES, 1):
        for j in range(3):
            n += 1
            rel = f"{cname}/{cname.split('.')[1]}_{j:04d}_{n}.jpg"
            box = (4, 2, 56, 44)  # x y w h; the bird fills most of the picture
            _img(base / "images" / rel, LEVELS[c], (64, 48), box=(4, 2, 60, 46))
            images.append(f"{n} {rel}")
            labels.append(f"{n} {c}")
            is_train = int(j == 0)
            split.append(f"{n} {is_train}")
            boxes.append(f"{n} {' '.join(str(float(v)) for v in box)}")
            if not is_train:
                _add(truth, "cub200", LEVELS[c], cname.split(".", 1)[1].replace("_", " "))
    (base / "images.txt").write_text("\n".join(images) + "\n")
    (base / "classes.txt").write_text("\n".join(f"{i} {c}" for i, c in enumerate(CUB_CLASSES, 1)) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (base / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    return truth


# ------------------------------------------------------------------------------------- synthetic
SYNTH_CLASSES = {"activity": ["running", "walking", "waving", "doing push-ups"], "age": ["kid", "teenager", "adult"],
                 "expression": ["happy", "sad", "neutral"]}


def write_synthetic(root: Path) -> Truth:
    truth: Truth = {}
    combos = [("running", "kid", "happy"), ("walking", "adult", "sad"), ("waving", "teenager", "neutral"),
              ("doing push-ups", "adult", "happy"), ("running", "teenager", "sad")]
    recs = []
    for i, (act, age, expr) in enumerate(combos):
        _img(root / f"images/{i:05d}.png", LEVELS[i], (48, 48))
        recs.append({"image": f"images/{i:05d}.png", "split": "eval", "activity": {"name": act},
                     "labels": {"activity": act, "age": age, "expression": expr}, "captions": []})
        _add(truth, "synth-activity", LEVELS[i], act)
        _add(truth, "synth-age", LEVELS[i], age)
        _add(truth, "synth-expression", LEVELS[i], expr)
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "classes.json").write_text(json.dumps(SYNTH_CLASSES))
    return truth


WRITERS = {"stanford40": write_stanford40, "kinetics400": write_kinetics400, "emotic": write_emotic,
           "lagenda": write_lagenda, "utkface": write_utkface, "fairface": write_fairface,
           "fer2013": write_fer2013, "ferplus": write_ferplus, "cub": write_cub, "synthetic": write_synthetic}


def write_all(base: Path) -> Truth:
    """Every fixture under ``base/<dataset>``; the union of their truths."""
    truth: Truth = {}
    for name, writer in WRITERS.items():
        truth.update(writer(base / name))
    return truth

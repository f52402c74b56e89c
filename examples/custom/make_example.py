"""Regenerate this tiny example dataset: three stick-figure JPEGs, one heatmap PNG, data.csv, data.jsonl.

Run from anywhere: ``python examples/custom/make_example.py``. Everything is drawn, nothing downloaded.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
W, H = 128, 96
# MPII order: r-ankle, r-knee, r-hip, l-hip, l-knee, l-ankle, pelvis, thorax, upper-neck, head-top,
# r-wrist, r-elbow, r-shoulder, l-shoulder, l-elbow, l-wrist
STANDING = [[56, 90], [57, 75], [58, 60], [70, 60], [71, 75], [72, 90], [64, 60], [64, 34], [64, 28],
            [64, 14], [50, 56], [53, 45], [56, 34], [72, 34], [75, 45], [78, 56]]
ARMS_UP = [[56, 90], [57, 75], [58, 60], [70, 60], [71, 75], [72, 90], [64, 60], [64, 34], [64, 28],
           [64, 14], [48, 10], [52, 22], [56, 34], [72, 34], [76, 22], [80, 10]]
BONES = [(0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11), (11, 12),
         (12, 7), (13, 7), (13, 14), (14, 15)]


def shifted(joints: list[list[int]], dx: int) -> list[list[int]]:
    return [[x + dx, y] for x, y in joints]


def draw(people: list[list[list[int]]], background: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (W, H), background)
    d = ImageDraw.Draw(im)
    for joints in people:
        for a, b in BONES:
            if min(joints[a] + joints[b]) >= 0:
                d.line([tuple(joints[a]), tuple(joints[b])], fill=(240, 230, 200), width=3)
        hx, hy = joints[9]
        d.ellipse([hx - 6, hy - 2, hx + 6, hy + 12], fill=(240, 200, 160))
    return im


def main() -> None:
    (HERE / "images").mkdir(exist_ok=True)
    (HERE / "heatmaps").mkdir(exist_ok=True)
    walker = shifted(STANDING, -30)
    cheering = shifted(ARMS_UP, 25)
    hidden_legs = [list(p) for p in STANDING]
    for j in (0, 1, 4, 5):
        hidden_legs[j] = [-1, -1]
    draw([STANDING], (40, 90, 140)).save(HERE / "images" / "standing.jpg", quality=90)
    draw([walker, cheering], (60, 120, 60)).save(HERE / "images" / "two_people.jpg", quality=90)
    draw([hidden_legs], (120, 70, 50)).save(HERE / "images" / "legs_hidden.jpg", quality=90)
    hm = Image.new("L", (W, H), 0)
    ImageDraw.Draw(hm).ellipse([44, 8, 84, 92], fill=255)
    hm.save(HERE / "heatmaps" / "legs_hidden.png")

    rows = [
        {"image": "images/standing.jpg", "captions": "A person stands upright with arms at their sides."
         "|One person is standing still.", "keypoints": json.dumps(STANDING), "split": "train",
         "label_activity": "standing", "label_age": "adult"},
        {"image": "images/two_people.jpg", "caption": "There are two people: the left one stands, the right "
         "one raises both arms.", "keypoints": json.dumps([walker, cheering]), "boxes": "[[20, 8, 56, 94], [70, 4, 110, 94]]",
         "split": "train", "label_activity": "cheering", "label_age": "adult"},
        {"image": "images/legs_hidden.jpg", "caption": "A person stands; their legs are not visible.",
         "keypoints": json.dumps(hidden_legs), "heatmap": "heatmaps/legs_hidden.png", "split": "val",
         "label_activity": "standing", "label_age": "kid"},
    ]
    columns = ["image", "caption", "captions", "keypoints", "boxes", "heatmap", "split", "label_activity", "label_age"]
    with (HERE / "data.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    with (HERE / "data.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            obj = dict(row)
            obj["keypoints"] = json.loads(obj["keypoints"])
            if "boxes" in obj:
                obj["boxes"] = json.loads(obj["boxes"])
            if "captions" in obj:
                obj["captions"] = obj["captions"].split("|")
            f.write(json.dumps(obj) + "\n")


if __name__ == "__main__":
    main()

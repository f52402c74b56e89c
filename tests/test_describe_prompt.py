"""The paper's single-shot prompt: system prompt contents and the user JSON built from a record."""

from __future__ import annotations

import json

from focusclip.describe import PROMPT_VERSION, SYSTEM_PROMPT, annotation_payload, build_messages
from focusclip.english import count_in_words
from focusclip.skeleton import MPII_JOINT_NAMES


def mpii_record() -> dict:
    joints = [[100.0 + j, 200.25 + j] for j in range(16)]
    visible = [1] * 16
    visible[3] = 0  # annotated but not visible
    joints[9] = [-1, -1]  # not annotated
    return {
        "id": "015601864", "image": "images/015601864.jpg", "video_id": 1660, "video_frame": 12,
        "width": 1280, "height": 720, "split": "train", "captions": ["old"],
        "activity": {"id": 1, "name": "curling", "category": "sports"},
        "people": [{"center": [594, 257], "scale": 3.021046, "joints": joints, "visible": visible,
                    "head_box": [627, 100, 706, 198]},
                   {"center": [952, 222], "scale": 2.472117, "joints": [[900, 300]] * 16}],
    }


def test_system_prompt_follows_the_paper() -> None:
    s = SYSTEM_PROMPT
    assert s.startswith("You are an expert human activity and pose analyser.")
    assert [line.split(". ", 1)[1] for line in s.splitlines() if line[:1].isdigit()] == list(MPII_JOINT_NAMES)
    assert MPII_JOINT_NAMES[0] == "right ankle" and MPII_JOINT_NAMES[9] == "head top"
    assert MPII_JOINT_NAMES[15] == "left wrist" and len(MPII_JOINT_NAMES) == 16
    assert "[-1, -1]" in s
    assert ('"There are [count in words] people in image who are [verb + activity]. [General attributes of '
            "the activity in the keypoints' context.]\"") in s
    assert "The [location of the person, from their centre and scale] person is [state] with their [limb]" in s
    assert "the left leg, the right leg, the left arm, the right arm, the torso and the head" in s
    assert "gender-neutral" in s and "concise and precise" in s.lower()
    assert PROMPT_VERSION


def test_user_payload_without_ids() -> None:
    rec = mpii_record()
    payload = annotation_payload(rec)
    assert set(payload) == {"activity", "count", "people"}
    assert payload["activity"] == {"category": "sports", "name": "curling"}
    assert payload["count"] == 2
    p0, p1 = payload["people"]
    assert p0["center"] == [594, 257] and p0["scale"] == 3.021
    assert p0["keypoints"][0] == [100, 200.2] and p0["keypoints"][1] == [101, 201.2]
    assert p0["keypoints"][3] == [-1, -1] and p0["keypoints"][9] == [-1, -1]  # invisible -> [-1, -1]
    assert set(p0) == {"center", "scale", "keypoints"}  # no head box
    assert p1["keypoints"] == [[900, 300]] * 16  # no visibility list: all coordinates are valid
    messages = build_messages(rec)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert json.loads(messages[1]["content"]) == payload
    for leaked in ("015601864", "1660", "images/", "video", "old", "1280"):
        assert leaked not in messages[1]["content"]


def test_payload_tolerates_missing_fields() -> None:
    payload = annotation_payload({"image": "x.jpg"})
    assert payload == {"count": 0, "people": []}


def test_count_in_words() -> None:
    assert [count_in_words(n) for n in (0, 1, 2, 7, 13, 20, 21, 45, 100, 342)] == [
        "zero", "one", "two", "seven", "thirteen", "twenty", "twenty-one", "forty-five", "one hundred",
        "three hundred and forty-two"]
    assert count_in_words(1000) == "1000"

"""Description statistics on a small known set, with numbers worked out by hand, and the file readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from focusclip.cli import main
from focusclip.describe import collect_descriptions, description_stats, format_description_stats

TEXTS = [
    # 35 words, no repeated 3-gram, follows the template, covers all six parts
    "There are two people in image who are running. The person on the left is standing with their left "
    "leg straight, right leg bent, left arm up, right arm down, torso upright and head up.",
    # 11 words, template start and a "The ... person" sentence, no parts
    "There is one person in image. The tall person is sitting.",
    # 7 words; 3-grams: a man runs / man runs fast / runs fast fast / fast fast fast x2 -> 1 of 5 repeated
    "A man runs fast fast fast fast.",
    "A man runs   fast fast fast fast.",  # a duplicate once whitespace is normalised
]


def test_known_numbers() -> None:
    s = description_stats(TEXTS)
    assert s["count"] == 4 and s["empty"] == 0
    assert s["words_mean"] == pytest.approx(15.0)  # (35 + 11 + 7 + 7) / 4
    assert s["words_median"] == pytest.approx(9.0)
    assert s["words_p5"] == pytest.approx(7.0)
    assert s["words_p95"] == pytest.approx(11 + 0.85 * 24)  # linear interpolation in [7, 7, 11, 35]
    assert s["vocabulary"] == 34  # 27 + one, tall, sitting + a, man, runs, fast
    assert s["repeated_3gram_share"] == pytest.approx((0 + 0 + 0.2 + 0.2) / 4)
    assert s["duplicate_share"] == pytest.approx(0.25)
    assert s["starts_with_template"] == pytest.approx(0.5)
    assert s["has_person_sentence"] == pytest.approx(0.5)
    assert s["mentions_all_parts"] == pytest.approx(0.25)
    assert s["parts"] == {p: 0.25 for p in ("left leg", "right leg", "left arm", "right arm", "torso", "head")}
    table = format_description_stats(s)
    assert "vocabulary" in table and "25.0%" in table and "15.0" in table
    assert description_stats([]) == {"count": 0}


def test_template_patterns() -> None:
    s = description_stats(["There are three people in the image who are dancing.",
                           "In this image there are people.",  # does not start with the template
                           "The person in the background on the right is sitting.",
                           "They stand. The leftmost person is tall."])
    assert s["starts_with_template"] == 0.25
    assert s["has_person_sentence"] == 0.5


def test_readers_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ours = tmp_path / "d.jsonl"
    ours.write_text(
        json.dumps({"id": "a", "description": TEXTS[0]}) + "\n"
        + json.dumps({"id": "b", "error": {"type": "RateLimitError", "message": "x"}}) + "\n"
        + json.dumps({"id": "c", "description": TEXTS[1]}) + "\n"
        + '{"id": "d", "descr'  # torn last line of a file still being written
    )
    assert collect_descriptions(ours) == TEXTS[:2]
    released = tmp_path / "train.json"  # MPII Pose Descriptions release: one JSON list
    released.write_text(json.dumps([{"image": "1.jpg", "video_id": 3, "count": 1, "description": t}
                                    for t in TEXTS]))
    assert collect_descriptions(released) == TEXTS
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"image": "1.jpg", "captions": TEXTS[2:]}) + "\n")
    assert collect_descriptions(records) == TEXTS[2:]
    one_line = tmp_path / "one.jsonl"  # a single line is valid JSON as a whole: still one record
    one_line.write_text(json.dumps({"id": "a", "description": TEXTS[0]}) + "\n")
    assert collect_descriptions(one_line) == [TEXTS[0]]
    one_record = tmp_path / "one-record.jsonl"  # people (a list) before captions
    one_record.write_text(json.dumps({"image": "1.jpg", "people": [], "captions": TEXTS[1:2]}) + "\n")
    assert collect_descriptions(one_record) == TEXTS[1:2]

    assert main(["describe", "--stats", str(released), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["count"] == 4 and s["vocabulary"] == 34
    assert main(["describe", "--stats", str(ours)]) == 0
    assert "starts 'There are/is ... in image'" in capsys.readouterr().out

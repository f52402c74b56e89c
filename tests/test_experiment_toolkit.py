"""The shared experiment steps: seeds, the "a difference only when it is one" rule, recipes' independence."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from focusclip.errors import UsageError
from focusclip.experiments import toolkit


def row(mean: float, std: float, n: int = 3) -> dict[str, float]:
    return {"mean": mean, "std": std, "n": n}


# ------------------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize("text, seeds", [("0,1,2", [0, 1, 2]), ("7", [7]), (" 3 , 5 ", [3, 5])])
def test_parse_seeds_accepts_distinct_non_negative_seeds(text, seeds):
    assert toolkit.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("0,0", "seed 0 given twice"), ("1,2,1,2", "seed 1, 2 given twice"), ("-1", "whole numbers >= 0, got -1"),
    ("0,x", "expected comma-separated whole numbers"), ("", "give at least one seed"), (",", "at least one seed")])
def test_parse_seeds_refuses_repeated_negative_and_malformed_seeds(text, message):
    with pytest.raises(UsageError, match=message):
        toolkit.parse_seeds(text)


def test_check_seeds_refuses_non_integers():
    with pytest.raises(UsageError, match="whole numbers"):
        toolkit.check_seeds([0, 1.5])
    with pytest.raises(UsageError, match="whole numbers"):
        toolkit.check_seeds([True])


# ---------------------------------------------------------------------------------- summaries
def test_summarise_gives_mean_and_sample_spread_per_task_group_and_headline():
    groups = {"a": ("t1", "t2"), "b": ("t3",)}
    scores = {"x": [{"t1": 10.0, "t2": 30.0, "t3": 50.0}, {"t1": 20.0, "t2": 40.0, "t3": 70.0}]}
    s = toolkit.summarise(scores, groups)["x"]
    assert s["t1"] == {"mean": 15.0, "std": pytest.approx(7.0710678), "n": 2}
    assert s["a mean"]["mean"] == 25.0
    assert s["headline"]["mean"] == pytest.approx((25.0 + 60.0) / 2)  # the mean of the group means
    assert toolkit.spread_text(s["t1"]) == " ± 7.1"
    assert toolkit.spread_text(toolkit.stats([4.0])) == ""  # one seed: no spread shown


# ---------------------------------------------------------------------------------- the rule
def test_beats_chance_needs_the_margin_and_more_than_the_spread():
    assert toolkit.CLEAR_OVER_CHANCE == 5.0
    assert toolkit.beats_chance(row(31.1, 1.0), 26.1)          # exactly 5 points over, spread 1
    assert not toolkit.beats_chance(row(31.0, 1.0), 26.1)      # 4.9 points over
    assert not toolkit.beats_chance(row(40.0, 15.0), 26.1)     # 13.9 over, but the spread is 15
    assert toolkit.beats_chance(row(42.0, 15.0), 26.1)


def test_difference_counts_only_beyond_the_larger_spread_with_several_seeds():
    assert toolkit.difference(row(50.0, 2.0), row(47.0, 1.0))["real"]           # 3 > 2
    assert not toolkit.difference(row(50.0, 2.0), row(48.0, 1.0))["real"]       # 2 is not > 2
    assert not toolkit.difference(row(50.0, 1.0), row(47.0, 3.5))["real"]       # the larger spread counts
    assert not toolkit.difference(row(50.0, 0.0, n=1), row(40.0, 0.0))["real"]  # one seed: no spread, no claim


def test_verdict_reports_no_difference_when_an_arm_is_near_chance():
    summary = {"a": {"headline": row(60.0, 1.0)}, "b": {"headline": row(28.3, 0.6)}}
    v = toolkit.verdict(summary, "headline", 26.1)
    assert not v["learned"] and v["real"] == []
    assert "Not every arm beats chance clearly" in v["text"] and "b" in v["text"]
    assert "not reported" in v["text"]


def test_verdict_reports_only_gaps_beyond_the_spread_when_every_arm_learned():
    summary = {"crop": {"headline": row(55.0, 1.0)}, "blur": {"headline": row(53.5, 2.0)},
               "whole": {"headline": row(45.0, 1.5)}}
    v = toolkit.verdict(summary, "headline", 26.1)
    assert v["learned"] and v["ranking"] == ["crop", "blur", "whole"]
    assert [(a, b) for a, b, _ in v["real"]] == [("crop", "whole"), ("blur", "whole")]  # crop-blur: 1.5 < 2.0
    assert "crop > whole by 10.0 points" in v["text"] and "within the seeds' spread" in v["text"]


def test_verdict_says_so_when_nothing_exceeds_the_spread():
    summary = {"a": {"headline": row(50.0, 3.0)}, "b": {"headline": row(48.0, 1.0)}}
    v = toolkit.verdict(summary, "headline", 26.1)
    assert v["learned"] and v["real"] == []
    assert "cannot be told apart" in v["text"]


# ------------------------------------------------------------------------------- independence
@pytest.mark.parametrize("recipe", ["demo", "ablate"])
def test_recipes_use_the_toolkit_not_each_other(recipe):
    import focusclip.experiments as pkg

    source = Path(pkg.__file__).with_name(f"{recipe}.py").read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "focusclip.experiments"
                for a in n.names}
    assert "toolkit" in imported
    assert not imported & {"demo", "ablate"} - {recipe}, imported
    assert not any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "toolkit"
                   and n.attr.startswith("_") for n in ast.walk(tree))  # no private helpers across modules

"""Statistics of a set of pose descriptions: length, vocabulary, repetition and template adherence.

Definitions (words are lower-cased runs of letters and digits, apostrophes kept inside words):

- ``words_mean/median/p5/p95``: description length in words (percentiles interpolate linearly).
- ``vocabulary``: distinct words over all descriptions.
- ``repeated_3gram_share``: per description, the share of its word 3-grams that repeat an earlier
  3-gram of the same description, ``(n - distinct) / n``, averaged over descriptions with >= 3 words.
- ``duplicate_share``: share of descriptions whose text (whitespace-normalised) equals an earlier one.
- ``starts_with_template``: share starting "There are|There is ... in (the) image" in the first sentence.
- ``has_person_sentence``: share with a sentence starting "The ... person" (up to six words between).
- ``mentions_all_parts``: share mentioning all of left leg, right leg, left arm, right arm, torso, head;
  ``parts`` gives the share for each one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.io import parse_json, read_jsonl, read_text
from focusclip.skeleton import BODY_PARTS

_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")
_START = re.compile(r"^\s*there\s+(?:are|is)\b[^.!?]*?\bin\s+(?:the\s+)?image\b", re.IGNORECASE)
_PERSON = re.compile(r"(?:^|[.!?]\s+)the\s+(?:[\w-]+,?\s+){0,6}?person\b", re.IGNORECASE)
_PARTS = {part: re.compile(rf"\b{part}\b", re.IGNORECASE) for part in BODY_PARTS}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _repeat_share(tokens: list[str]) -> float | None:
    grams = [tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)]
    if not grams:
        return None
    return (len(grams) - len(set(grams))) / len(grams)


def description_stats(texts: list[str]) -> dict[str, Any]:
    """The statistics above for a list of descriptions (see the module docstring)."""
    n = len(texts)
    if n == 0:
        return {"count": 0}
    tokens = [words(t) for t in texts]
    lengths = np.array([len(t) for t in tokens], dtype=float)
    repeats = [r for r in (_repeat_share(t) for t in tokens) if r is not None]
    normalised = [" ".join(t.split()) for t in texts]
    parts = {p: sum(bool(rx.search(t)) for t in texts) / n for p, rx in _PARTS.items()}
    return {
        "count": n,
        "empty": int(sum(1 for t in tokens if not t)),
        "words_mean": float(lengths.mean()),
        "words_median": float(np.median(lengths)),
        "words_p5": float(np.percentile(lengths, 5)),
        "words_p95": float(np.percentile(lengths, 95)),
        "vocabulary": len({w for t in tokens for w in t}),
        "repeated_3gram_share": float(np.mean(repeats)) if repeats else 0.0,
        "duplicate_share": (n - len(set(normalised))) / n,
        "starts_with_template": sum(bool(_START.search(t)) for t in texts) / n,
        "has_person_sentence": sum(bool(_PERSON.search(t)) for t in texts) / n,
        "mentions_all_parts": sum(all(rx.search(t) for rx in _PARTS.values()) for t in texts) / n,
        "parts": parts,
    }


def collect_descriptions(path: str | os.PathLike) -> list[str]:
    """The description texts of a file: our results JSONL (success lines), a records JSONL (``captions``)
    or a released MPII Pose Descriptions JSON list (objects with ``description``, possibly inside a
    ``{"annotations": [...]}``-style wrapper)."""
    path = Path(path)
    raw = read_text(path, "descriptions file")
    try:
        items = [json.loads(raw)]  # a whole-file JSON document (or a one-line JSONL file)
    except json.JSONDecodeError:
        if raw.lstrip()[:1] == "[":
            parse_json(raw, str(path))  # raises the error with its line and column
        items = read_jsonl(path)  # JSONL, a torn last line of a file being written ignored
    if len(items) == 1 and isinstance(items[0], list):
        items = items[0]
    elif len(items) == 1 and isinstance(items[0], dict) and not _is_entry(items[0]):
        items = next((v for v in items[0].values() if isinstance(v, list)), [])
    return [t for item in items for t in _texts_of(item)]


def _is_entry(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("description", "captions", "image", "id"))


def _texts_of(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if not isinstance(item, dict) or item.get("error"):
        return []
    if isinstance(item.get("description"), str):
        return [item["description"]]
    captions = item.get("captions")
    if isinstance(captions, list):
        return [c for c in captions if isinstance(c, str)]
    return []


def format_description_stats(stats: dict[str, Any]) -> str:
    """A two-column text table of :func:`description_stats` output."""
    if not stats.get("count"):
        return "no descriptions"
    rows: list[tuple[str, str]] = [("descriptions", str(stats["count"])), ("empty", str(stats["empty"]))]
    rows += [(f"words {k}", f"{stats[f'words_{k}']:.1f}") for k in ("mean", "median", "p5", "p95")]
    rows += [("vocabulary", str(stats["vocabulary"])),
             ("repeated 3-grams", _pct(stats["repeated_3gram_share"])),
             ("duplicate descriptions", _pct(stats["duplicate_share"])),
             ("starts 'There are/is ... in image'", _pct(stats["starts_with_template"])),
             ("has 'The ... person' sentence", _pct(stats["has_person_sentence"])),
             ("mentions all six parts", _pct(stats["mentions_all_parts"]))]
    rows += [(f"  mentions {p}", _pct(v)) for p, v in stats["parts"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>8}" for k, v in rows)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"

"""EMOTIC: age group and emotion categories of each annotated person, on person (body box) crops.

Two layouts are read:

- the release: ``Annotations/Annotations.mat`` (MATLAB structs ``train``, ``val``, ``test``; per image
  ``filename``, ``folder`` and ``person`` entries with ``body_bbox`` [x1 y1 x2 y2],
  ``annotations_categories`` (one struct per annotator with a ``categories`` cell), optionally
  ``combined_categories`` (val/test), ``gender`` and ``age`` in Kid/Teenager/Adult) and the images
  under ``emotic/<folder>/<filename>`` (or ``<folder>/<filename>``);
- the common CSV conversion, one row per person: ``<split>.csv`` (also ``emotic_pre/<split>.csv`` or
  ``annot_arrs_<split>.csv``) with columns ``Folder``, ``Filename``, ``BBox`` (``[x1, y1, x2, y2]``),
  ``Categorical_Labels`` (a list such as ``['Engagement', 'Happiness']``) and ``Age``. Lower-case
  names are accepted too, and the categories may also come as one 0/1 column per category.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from focusclip.errors import InputError
from focusclip.zeroshot.datasets.common import (
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    parse_box,
    read_csv,
    register_dataset,
    require_root,
)

logger = logging.getLogger(__name__)

EMOTIC_CATEGORIES = (
    "Affection", "Anger", "Annoyance", "Anticipation", "Aversion", "Confidence", "Disapproval",
    "Disconnection", "Disquietment", "Doubt/Confusion", "Embarrassment", "Engagement", "Esteem",
    "Excitement", "Fatigue", "Fear", "Happiness", "Pain", "Peace", "Pleasure", "Sadness", "Sensitivity",
    "Suffering", "Surprise", "Sympathy", "Yearning",
)
EMOTIC_AGES = {"kid": "kid", "teenager": "teenager", "adult": "adult"}
_IMAGE_BASES = ("emotic", "")
Box_ = tuple[float, float, float, float] | None


def _as_list(x: Any) -> list:
    """A MATLAB value loaded with ``squeeze_me=True`` as a list (scalars and single structs squeeze away)."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return [v for v in x.ravel()]
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _strings(x: Any) -> list[str]:
    out = []
    for v in _as_list(x):
        if isinstance(v, (np.ndarray, list, tuple)):
            out.extend(_strings(v))
        elif isinstance(v, (str, np.str_)) and str(v).strip():
            out.append(str(v).strip())
    return out


def _categories_of(person: Any) -> list[str]:
    combined = _strings(getattr(person, "combined_categories", None))
    if combined:
        return combined
    cats: list[str] = []
    for ann in _as_list(getattr(person, "annotations_categories", None)):
        for c in _strings(getattr(ann, "categories", ann)):
            if c not in cats:
                cats.append(c)
    return cats


def _mat_people(mat_path: Path, split: str) -> Iterator[tuple[str, str, Any, str]]:
    """(folder, filename, person struct, where) for every person of ``split`` in Annotations.mat."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises several types for corrupt files
        raise DatasetError(f"{mat_path}: cannot read as a MATLAB file ({e})") from None
    if split not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetError(f"{mat_path}: no {split!r} struct (found {keys})")
    for i, entry in enumerate(_as_list(mat[split])):
        folder, filename = str(getattr(entry, "folder", "")), str(getattr(entry, "filename", ""))
        if not filename:
            raise DatasetError(f"{mat_path}: {split}[{i}] has no filename")
        for j, person in enumerate(_as_list(getattr(entry, "person", None))):
            yield folder, filename, person, f"{mat_path}: {split}[{i}] ({filename}) person {j}"


def _parse_list_cell(text: str, where: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            val = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise DatasetError(f"{where}: cannot parse {text!r} as a list") from None
        return [str(v).strip() for v in val]
    sep = ";" if ";" in text else ","
    return [t.strip() for t in text.split(sep) if t.strip()]


def _csv_people(csv_path: Path) -> Iterator[tuple[str, str, Box_, list[str], str, str]]:
    rows = read_csv(csv_path)
    if not rows:
        return
    cols = {c.lower().replace(" ", "_"): c for c in rows[0]}

    def col(*names: str) -> str | None:
        return next((cols[n] for n in names if n in cols), None)

    c_folder, c_file = col("folder"), col("filename", "file", "image")
    c_bbox, c_age = col("bbox", "body_bbox"), col("age")
    c_cats = col("categorical_labels", "categories", "emotions")
    one_hot = [c for c in EMOTIC_CATEGORIES if c in rows[0]]
    box_cols = [col(n) for n in ("x1", "y1", "x2", "y2")]
    if c_file is None or (c_bbox is None and None in box_cols):
        raise DatasetError(f"{csv_path}: expected columns Folder, Filename, BBox (or x1,y1,x2,y2), "
                           f"Categorical_Labels, Age; found {list(rows[0])}")
    for i, r in enumerate(rows, 2):
        where = f"{csv_path}:{i}"
        raw_box = _parse_list_cell(r[c_bbox], where) if c_bbox else [r[c] for c in box_cols]  # type: ignore[index]
        box = parse_box(raw_box, where)
        if c_cats is not None:
            cats = _parse_list_cell(r[c_cats], where)
        else:
            cats = [c for c in one_hot if r[c] not in ("", "0", "0.0", "False")]
        yield (r[c_folder] if c_folder else ""), r[c_file], box, cats, (r[c_age] if c_age else ""), where


def _iter_people(root: Path, split: str) -> Iterator[tuple[str, str, Box_, list[str], str, str]]:
    mat_path = next((root / c for c in ("Annotations/Annotations.mat", "Annotations.mat")
                     if (root / c).exists()), None)
    if mat_path is not None:
        for folder, filename, person, where in _mat_people(mat_path, split):
            bbox = np.asarray(getattr(person, "body_bbox", []), dtype=float).ravel()
            box = parse_box(bbox.tolist(), where) if bbox.size == 4 else None
            if bbox.size != 4:
                raise DatasetError(f"{where}: body_bbox must be [x1 y1 x2 y2], got {bbox.tolist()}")
            yield folder, filename, box, _categories_of(person), str(getattr(person, "age", "")), where
        return
    csvs = [f"{split}.csv", f"emotic_pre/{split}.csv", f"annot_arrs_{split}.csv", f"annotations/{split}.csv"]
    csv_path = next((root / c for c in csvs if (root / c).exists()), None)
    if csv_path is None:
        expected = [str(root / "Annotations/Annotations.mat")] + [str(root / c) for c in csvs]
        raise DatasetLayoutError(f"emotic: no annotations under {root}; expected one of: {', '.join(expected)}")
    yield from _csv_people(csv_path)


@register_dataset('emotic')
def load_emotic(root: str | os.PathLike, split: str = "test", target: str = "emotion") -> LoadedSet:
    """EMOTIC person crops labelled with ``target`` = ``emotion`` (multi-label, 26 categories) or ``age``.

    People without a body box, without categories (emotion) or with an unknown age (age) are skipped
    and counted.
    """
    if target not in ("emotion", "age"):
        raise InputError(f"emotic: target must be 'emotion' or 'age', got {target!r}")
    root = require_root(root, "emotic")
    known = {c.lower(): c for c in EMOTIC_CATEGORIES}
    out = LoadedSet(samples=[])
    base: str | None = None
    for folder, filename, box, cats, age, where in _iter_people(root, split):
        if box is None:
            out.skip("no body box")
            continue
        if target == "emotion":
            labels = []
            for c in cats:
                if c.lower() not in known:
                    raise DatasetError(f"{where}: unknown emotion category {c!r}; expected one of "
                                       f"{list(EMOTIC_CATEGORIES)}")
                labels.append(known[c.lower()])
            if not labels:
                out.skip("no emotion category")
                continue
        else:
            group = EMOTIC_AGES.get(age.strip().lower())
            if group is None:
                out.skip("no age group")
                continue
            labels = [group]
        rel = str(Path(folder) / filename)
        if base is None:
            base = next((b for b in _IMAGE_BASES if (root / b / rel).exists()), None)
            if base is None:
                raise DatasetLayoutError(f"emotic: image of {where} found neither at {root / 'emotic' / rel} "
                                         f"nor at {root / rel}")
        out.samples.append(Sample(source=root / base / rel, labels=tuple(labels), box=box,
                                  id=f"{rel}#{len(out.samples)}"))
    return out

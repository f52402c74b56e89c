"""Read the released MPII Pose Descriptions and join them to records (docs/method.md, "Pose descriptions").

The release is a folder with one JSON list per LLM and split::

    <root>/gpt-4-0613/train.json
    <root>/gpt-3.5-turbo-0613/train.json   <root>/gpt-3.5-turbo-0613/val.json
    <root>/gpt-3.5-turbo-0301/...          <root>/llama-2-70b-chat-hf/...

Each entry carries ``image``, ``video_id``, ``video_frame``, ``activity_id``, ``activity``, ``count``,
``people`` (``id``, ``center``, ``scale``, ``kpts`` 16 x [x, y], ``kpts_vis``) and ``description``; any
of them may be missing. The paper trains on ``gpt-4-0613/train.json`` and validates on
``gpt-3.5-turbo-0613/val.json`` (:data:`PAPER_SETTING`). A requested LLM/split that is not in the
folder is an error listing what is there: another LLM's captions are never substituted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from focusclip.data.records import Record
from focusclip.errors import InputError, MissingInput
from focusclip.io import read_json
from focusclip.skeleton import NUM_JOINTS

logger = logging.getLogger(__name__)

PAPER_SETTING: dict[str, str] = {"train": "gpt-4-0613", "val": "gpt-3.5-turbo-0613"}
_SPLIT_ALIASES = {"validation": "val", "valid": "val"}


def available(root: str | os.PathLike) -> list[str]:
    """The ``<llm>/<split>`` pairs present in a release folder, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(f"{p.parent.name}/{p.stem}" for p in root.glob("*/*.json"))


def release_file(root: str | os.PathLike, llm: str, split: str) -> Path:
    """The JSON file of one LLM and split; a clear error listing what exists when it is missing."""
    split = _SPLIT_ALIASES.get(split, split)
    path = Path(root) / llm / f"{split}.json"
    if not path.is_file():
        found = available(root)
        raise MissingInput(
            f"no descriptions for LLM {llm!r}, split {split!r}: {path} does not exist. "
            f"Available in {root}: {', '.join(found) if found else 'nothing (no <llm>/<split>.json files)'}. "
            "Captions of another LLM are not substituted; pick one of the available ones explicitly."
        )
    return path


def read_description_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """One release JSON list (entries without an ``image`` name are an error naming the entry)."""
    path = Path(path)
    entries = read_json(path, "description file")
    if isinstance(entries, dict):  # tolerate {"data": [...]} / {"annotations": [...]} wrappers
        entries = next((v for v in entries.values() if isinstance(v, list)), None)
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of description entries")
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"]:
            raise InputError(f"{path}: entry {k} has no 'image' name (expected an MPII Pose Descriptions file)")
    return entries


def _key(image: str) -> str:
    return Path(image).name


def load_descriptions(root: str | os.PathLike, llms: Sequence[str] | str, split: str = "train"
                      ) -> dict[str, list[dict[str, str]]]:
    """Image file name -> ``[{"llm", "text"}, ...]`` in the order of ``llms`` (empty texts skipped)."""
    if isinstance(llms, str):
        llms = [llms]
    out: dict[str, list[dict[str, str]]] = {}
    for llm in llms:
        path = release_file(root, llm, split)
        empty = 0
        for entry in read_description_file(path):
            text = entry.get("description")
            if not isinstance(text, str) or not text.strip():
                empty += 1
                continue
            out.setdefault(_key(entry["image"]), []).append({"llm": llm, "text": text.strip()})
        if empty:
            logger.warning("%s: %d entries without a description", path, empty)
    return out


def join_descriptions(records: Iterable[Record], descriptions: dict[str, list[dict[str, str]]],
                      mode: str = "all", drop_missing: bool = True) -> tuple[list[Record], dict[str, Any]]:
    """Put descriptions into each record's ``captions`` and ``caption_sources`` (matched by image name).

    ``mode="all"`` keeps every LLM's text, ``"one"`` the first in the loading order. Records without a
    description are dropped (or kept unchanged with ``drop_missing=False``); the returned stats count
    them and list the first few.
    """
    if mode not in ("all", "one"):
        raise InputError(f"mode must be 'all' or 'one', got {mode!r}")
    out: list[Record] = []
    missing: list[str] = []
    n = 0
    for record in records:
        n += 1
        name = record.get("meta", {}).get("name") or _key(record["image"])
        found = descriptions.get(_key(name), [])
        if not found:
            missing.append(name)
            if not drop_missing:
                out.append(record)
            continue
        found = found[:1] if mode == "one" else found
        out.append({**record, "captions": [d["text"] for d in found], "caption_sources": [d["llm"] for d in found]})
    stats = {"records": n, "joined": n - len(missing), "missing": len(missing), "missing_examples": missing[:10]}
    if missing:
        logger.warning("%d of %d records have no description (e.g. %s)%s", len(missing), n,
                       ", ".join(missing[:5]), "; dropped" if drop_missing else "")
    return out, stats


def _activity(entry: dict[str, Any]) -> dict[str, Any]:
    act = entry.get("activity")
    act_id = entry.get("activity_id")
    name = category = None
    if isinstance(act, dict):
        name = act.get("name") or act.get("act_name") or act.get("activity")
        category = act.get("category") or act.get("cat_name")
        act_id = act.get("id", act_id)
    elif isinstance(act, str) and act.strip():
        name = act.strip()
    if act_id is not None:
        try:
            act_id = int(act_id)
        except (TypeError, ValueError):
            act_id = None
    return {"id": None if act_id == -1 else act_id, "name": name or None, "category": category or None}


def _person(p: dict[str, Any], where: str) -> dict[str, Any]:
    kpts = p.get("kpts") or p.get("joints")
    joints = [[-1.0, -1.0] for _ in range(NUM_JOINTS)]
    visible = [0] * NUM_JOINTS
    if kpts is not None:
        if len(kpts) != NUM_JOINTS or any(not isinstance(k, (list, tuple)) or len(k) < 2 for k in kpts):
            raise InputError(f"{where}: 'kpts' must be {NUM_JOINTS} [x, y] pairs, got {len(kpts)} entries")
        vis = p.get("kpts_vis") or p.get("joints_vis")
        if vis is not None and len(vis) != NUM_JOINTS:
            raise InputError(f"{where}: 'kpts_vis' must have {NUM_JOINTS} entries, got {len(vis)}")
        for j, k in enumerate(kpts):
            x, y = float(k[0]), float(k[1])
            on = bool(vis[j]) if vis is not None else (x >= 0 and y >= 0)
            if on and x >= 0 and y >= 0:
                joints[j], visible[j] = [x, y], 1
    person: dict[str, Any] = {"center": p.get("center"), "scale": p.get("scale"), "joints": joints, "visible": visible}
    if p.get("id") is not None:
        person["id"] = p["id"]
    return person


def release_to_records(root: str | os.PathLike, llm: str, split: str, images_dir: str | os.PathLike,
                       relative_to: str | os.PathLike | None = None) -> list[Record]:
    """Records built straight from one release file (it carries the people), captioned by ``llm``.

    Image paths are ``images_dir/<image>``, rewritten relative to ``relative_to`` (the output folder)
    when both are relative.
    """
    split = _SPLIT_ALIASES.get(split, split)
    path = release_file(root, llm, split)
    records: list[Record] = []
    no_text = 0
    for k, entry in enumerate(read_description_file(path)):
        where = f"{path}: entry {k} ({entry['image']})"
        img = Path(images_dir) / entry["image"]
        if relative_to is not None and not img.is_absolute():
            img = Path(os.path.relpath(img, relative_to))
        text = entry.get("description")
        captions = [text.strip()] if isinstance(text, str) and text.strip() else []
        no_text += not captions
        records.append({
            "image": img.as_posix(),
            "id": Path(entry["image"]).stem,
            "split": split,
            "activity": _activity(entry),
            "people": [_person(p, f"{where} people[{i}]") for i, p in enumerate(entry.get("people") or [])],
            "captions": captions,
            "caption_sources": [llm] * len(captions),
            "meta": {"name": entry["image"], "video_id": entry.get("video_id"),
                     "video_frame": entry.get("video_frame"), "count": entry.get("count")},
        })
    if no_text:
        logger.warning("%s: %d of %d entries have no description", path, no_text, len(records))
    return records


def paper_records(root: str | os.PathLike, images_dir: str | os.PathLike,
                  relative_to: str | os.PathLike | None = None) -> dict[str, list[Record]]:
    """The paper's setting: GPT-4 train descriptions and GPT-3.5-turbo-0613 val descriptions."""
    return {split: release_to_records(root, llm, split, images_dir, relative_to)
            for split, llm in PAPER_SETTING.items()}

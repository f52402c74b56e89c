"""Reading description results (our JSONL) and merging them into records as ``captions``.

A results file holds one JSON object per line, appended by the job driver. A success line has a
``description``; an error line has an ``error`` object instead. A record counts as finished when it has
a success line; error lines of finished records are history and ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from focusclip.data.records import iter_records, record_id, write_records
from focusclip.errors import InputError
from focusclip.io import read_jsonl

logger = logging.getLogger(__name__)


def is_success(line: dict[str, Any]) -> bool:
    return isinstance(line.get("description"), str) and not line.get("error")


def read_descriptions(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, dict]]:
    """``(successes, failures)`` by record id. A torn last line is ignored. When an id has several
    success lines the first one wins; ``failures`` holds the last error of ids without a success."""
    successes: dict[str, dict] = {}
    failures: dict[str, dict] = {}
    for line in read_jsonl(path):
        if not isinstance(line, dict) or "id" not in line:
            continue
        rid = str(line["id"])
        if is_success(line):
            successes.setdefault(rid, line)
        elif line.get("error"):
            failures[rid] = line
    for rid in successes:
        failures.pop(rid, None)
    return successes, failures


def _rebase(path: str, src_dir: Path, dst_dir: Path) -> str:
    """A path relative to ``src_dir`` rewritten relative to ``dst_dir`` (absolute paths unchanged)."""
    if os.path.isabs(path) or src_dir.resolve() == dst_dir.resolve():
        return path
    return os.path.relpath((src_dir / path).resolve(), dst_dir.resolve())


def merge_captions(
    records_path: str | os.PathLike,
    results_path: str | os.PathLike,
    out_path: str | os.PathLike,
    mode: str = "replace",
) -> tuple[int, int]:
    """Write the records of ``records_path`` to ``out_path`` (atomically) with their descriptions as
    ``captions``: ``mode="replace"`` sets ``captions`` to the new description, ``"append"`` adds it to the
    existing captions (no duplicates). Records without a description keep their captions. Relative image
    and heatmap paths are rewritten so they still resolve from ``out_path``'s folder.

    Returns ``(records written, records with a new description)``.
    """
    if mode not in ("replace", "append"):
        raise InputError(f"merge mode must be 'replace' or 'append', got {mode!r}")
    records_path, out_path = Path(records_path), Path(out_path)
    if records_path.resolve() == out_path.resolve():
        raise InputError(f"{out_path}: refusing to overwrite the input records; choose another file")
    successes, _ = read_descriptions(results_path)
    src_dir, dst_dir = records_path.parent, out_path.parent
    dst_dir.mkdir(parents=True, exist_ok=True)
    counts = {"n": 0, "described": 0}

    def merged() -> Any:
        for record in iter_records(records_path):
            counts["n"] += 1
            rid = record_id(record)  # before paths are rebased
            record = dict(record)
            for key in ("image", "heatmap"):
                if isinstance(record.get(key), str):
                    record[key] = _rebase(record[key], src_dir, dst_dir)
            line = successes.get(rid)
            if line is not None:
                counts["described"] += 1
                text = line["description"]
                old = list(record.get("captions") or [])
                record["captions"] = [text] if mode == "replace" else old + ([text] if text not in old else [])
            yield record

    write_records(out_path, merged())
    logger.info("wrote %d records to %s, %d with a new description (%s)", counts["n"], out_path,
                counts["described"], mode)
    return counts["n"], counts["described"]


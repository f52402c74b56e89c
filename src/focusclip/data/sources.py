"""Dataset files -> records, one dispatch for every reader (training, describe, the validator).

A dataset file is a records JSONL (the schema of :mod:`focusclip.data.records`) or a custom ``.csv`` /
``.jsonl`` (:mod:`focusclip.data.custom`, documented in docs/custom-data.md). A JSONL is custom when its
first object uses a custom-only key. Image paths are relative to the file's folder, the dataset root.

:func:`iter_dataset_file` yields every row, good or bad, without stopping (what the validator
reports); :func:`read_dataset_file` returns the records and raises the first bad row's error (what
loaders use). Both apply the same per-row rules, so a file that validates is a file that loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from focusclip.data.custom import iter_custom, looks_custom
from focusclip.data.records import Record, RecordError, validate_record
from focusclip.errors import InputError, MissingInput
from focusclip.io import iter_jsonl_lines

logger = logging.getLogger(__name__)

RECORDS, CUSTOM = "records", "custom"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def file_format(path: str | os.PathLike) -> str:
    """``"records"`` or ``"custom"``; an error for a missing file, a folder or another suffix."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a records .jsonl or a custom .csv/.jsonl file")
    if not path.is_file():
        raise MissingInput(f"dataset file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return CUSTOM
    if suffix not in JSONL_SUFFIXES:
        raise InputError(f"{path}: expected a .jsonl or .csv dataset file, got {suffix or 'no extension'}")
    first = next((value for _, value in iter_jsonl_lines(path)), None)
    return CUSTOM if looks_custom(first) else RECORDS


def iter_dataset_file(path: str | os.PathLike, unknown: set[str] | None = None
                      ) -> Iterator[tuple[str, Record | RecordError]]:
    """``(where, record)`` for every row, or ``(where, error)`` for a bad one (``where`` = ``file:line``).
    Custom columns outside the schema are collected in ``unknown``."""
    path = Path(path)
    if file_format(path) == CUSTOM:
        yield from iter_custom(path, unknown)
        return
    for where, value in iter_jsonl_lines(path, error=RecordError):
        if isinstance(value, RecordError):
            yield where, value
            continue
        try:
            yield where, validate_record(value, where)
        except RecordError as e:
            e.row = value
            yield where, e


def read_dataset_file(path: str | os.PathLike) -> tuple[list[Record], Path]:
    """``(records, root)`` of a dataset file; the first bad row raises its :class:`RecordError`."""
    path = Path(path)
    unknown: set[str] = set()
    records: list[Record] = []
    for _, value in iter_dataset_file(path, unknown):
        if isinstance(value, RecordError):
            raise value
        records.append(value)
    if unknown:
        logger.warning("%s: unknown columns kept under 'meta': %s (see docs/custom-data.md)", path,
                       ", ".join(sorted(unknown)))
    if not records:
        logger.warning("%s: no rows", path)
    return records, path.parent

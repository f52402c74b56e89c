"""The resumable description job shared by every backend.

Records already described in the output file are skipped; the rest go to the backend (in a thread pool
for network backends) and each result is appended, flushed and fsynced as soon as it arrives
(:class:`focusclip.io.JsonlAppender`). Killing the job at any moment loses at most the requests in
flight; a torn last line is cut when the file is reopened. Failed records get an error line and are
tried again on the next run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from focusclip.data.records import Record, record_id
from focusclip.describe.backend import Describer, Outcome
from focusclip.describe.results import read_descriptions
from focusclip.errors import OutputError, RunError, UsageError
from focusclip.io import JsonlAppender, iter_jsonl_lines
from focusclip.progress import Progress

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    total: int = 0  # records considered (after --limit and de-duplication)
    skipped: int = 0  # already described in the output file
    described: int = 0  # described in this run
    failed: int = 0  # failed in this run (error lines written)
    elapsed: float = 0.0
    failed_ids: list[str] = field(default_factory=list)


def result_line(record: Record, describer: Describer, outcome: Outcome) -> dict[str, Any]:
    """The JSON object written for one record (a success or an error line)."""
    line: dict[str, Any] = {"id": record_id(record), "image": record.get("image")}
    if outcome.ok:
        line["description"] = outcome.description
    else:
        line["error"] = {"type": outcome.error_type, "message": outcome.error_message}
        if outcome.status is not None:
            line["error"]["status"] = outcome.status
    line.update(backend=describer.name, model=describer.model, prompt_version=describer.prompt_version,
                parameters=dict(describer.parameters), attempts=outcome.attempts)
    if outcome.served_model and outcome.served_model != describer.model:
        line["served_model"] = outcome.served_model
    if outcome.usage:
        line["usage"] = outcome.usage
    if outcome.finish_reason:
        line["finish_reason"] = outcome.finish_reason
    line["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return line


def _redacted(value: Any, redact: Any) -> Any:
    """``value`` with the describer's secret replaced in every string it holds (a server may echo it)."""
    if redact is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    return value


def check_results_file(path: str | os.PathLike) -> None:
    """:class:`OutputError` unless ``path`` is absent, empty, or a descriptions file this job wrote (its
    first line has ``id``, ``backend`` and a ``description`` or ``error``): results are appended, and
    appending to any other file (records, say) would damage it."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; expected a descriptions .jsonl file")
    if not path.exists() or path.stat().st_size == 0:
        return
    first = next((v for _, v in iter_jsonl_lines(path)), None)
    if not (isinstance(first, dict) and "id" in first and "backend" in first
            and ("description" in first or "error" in first)):
        raise OutputError(f"{path} exists and is not a descriptions file written by focusclip describe (its first "
                          "line has no id/backend/description); results are appended to --out, so choose a new "
                          "file or a descriptions file of an earlier run")


def _safe_describe(describer: Describer, record: Record) -> Outcome:
    """Backends return error outcomes themselves; this catches what slips through (bad records...)."""
    try:
        return describer.describe(record)
    except Exception as e:
        message = str(e)
        redact = getattr(describer, "redact", None)
        if callable(redact):
            message = redact(message)
        logger.warning("%s: %s: %s", record_id(record), type(e).__name__, message)
        return Outcome(error_type=type(e).__name__, error_message=message[:500])


def _unique(records: Iterable[Record], limit: int | None) -> list[Record]:
    seen: set[str] = set()
    out = []
    for record in records:
        if limit is not None and len(out) >= limit:
            break
        rid = record_id(record)
        if rid in seen:
            logger.warning("duplicate record id %r: only its first record is described", rid)
            continue
        seen.add(rid)
        out.append(record)
    return out


def describe_records(
    records: Iterable[Record],
    out_path: str | os.PathLike,
    describer: Describer,
    *,
    workers: int = 1,
    limit: int | None = None,
    progress_every: float = 10.0,
    fsync: bool = True,
) -> RunSummary:
    """Describe every record not yet described in ``out_path``, appending one line per result.

    Each line is flushed at once, so killing the process loses nothing written; ``fsync=True`` also
    forces it to disk (survives a machine crash; use it for paid requests, skip it for cheap backends).
    """
    start = time.monotonic()
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1 (or None for every record), got {limit}")
    check_results_file(out_path)
    todo = _unique(records, limit)
    successes, failures = read_descriptions(out_path)
    summary = RunSummary(total=len(todo))
    pending = [r for r in todo if record_id(r) not in successes]
    summary.skipped = summary.total - len(pending)
    _warn_mismatch(successes, describer, {record_id(r) for r in todo})
    retrying = sum(record_id(r) in failures for r in pending)
    logger.info("%d records: %d already described in %s, %d to do%s", summary.total, summary.skipped,
                out_path, len(pending), f" ({retrying} failed before, retrying)" if retrying else "")
    if not pending:
        return summary

    with JsonlAppender(out_path, fsync=fsync) as sink, Progress(len(pending), "describe", unit="rec",
                                                  every=progress_every) as progress:
        redact = getattr(describer, "redact", None)
        for record, outcome in _outcomes(pending, describer, workers):
            sink.write(_redacted(result_line(record, describer, outcome), redact))
            if outcome.ok:
                summary.described += 1
            else:
                summary.failed += 1
                summary.failed_ids.append(record_id(record))
            progress.update(1, failed=summary.failed)
            if outcome.fatal:
                raise RunError(f"record {record_id(record)}: the endpoint refused the request (HTTP {outcome.status}: "
                               f"{outcome.error_message}); stopped instead of failing every record the same way. "
                               f"Check the API key and --base-url; finished results stay in {out_path}")
    summary.elapsed = time.monotonic() - start
    logger.info("described %d, failed %d, skipped %d in %.1fs", summary.described, summary.failed,
                summary.skipped, summary.elapsed)
    return summary


def _outcomes(pending: list[Record], describer: Describer, workers: int) -> Iterator[tuple[Record, Outcome]]:
    """(record, outcome) pairs in completion order; at most ``2 * workers`` requests are queued."""
    if workers <= 1:
        for record in pending:
            yield record, _safe_describe(describer, record)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="describe")
    inflight: dict[Future, Record] = {}
    queue = iter(pending)
    try:
        while True:
            while len(inflight) < 2 * workers:
                record = next(queue, None)
                if record is None:
                    break
                inflight[pool.submit(_safe_describe, describer, record)] = record
            if not inflight:
                break
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                yield inflight.pop(future), future.result()
    finally:
        # On an interrupt, queued requests are dropped; running ones finish in the background
        # and their results are lost (they are redone on the next run).
        pool.shutdown(wait=not inflight, cancel_futures=True)


def _warn_mismatch(successes: dict[str, dict], describer: Describer, ids: set[str]) -> None:
    keys = ("backend", "model", "prompt_version")
    current = (describer.name, describer.model, describer.prompt_version)
    other = [rid for rid in ids if rid in successes
             and tuple(successes[rid].get(k) for k in keys) != current]
    if other:
        logger.warning("%d records were described earlier with another backend, model or prompt version; "
                       "they are kept (use a new output file to redo them)", len(other))

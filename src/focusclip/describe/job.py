"""One description job from files: the describer a backend name stands for (:func:`create_describer`) and
a records file described into a results file, merged back into records when asked (:func:`describe_file`).

``focusclip describe`` parses its options and calls these two; the resumable loop itself is
:func:`focusclip.describe.run.describe_records`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from focusclip.describe.backend import Describer
from focusclip.describe.run import RunSummary, describe_records
from focusclip.errors import UsageError

BACKENDS = ("openai", "rules")


def create_describer(backend: str, *, seed: int = 0, attributes: bool = True, model: str = "gpt-4-0613",
                     base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0,
                     temperature: float = 0.5, max_tokens: int = 512, frequency_penalty: float | None = 1.0,
                     max_retries: int = 6, retry_base_delay: float = 1.0,
                     environ: Mapping[str, str] | None = None) -> Describer:
    """The describer of ``backend``: ``"rules"`` (offline; ``seed``, ``attributes``) or ``"openai"`` (any
    OpenAI-compatible endpoint; the API key is read from the environment variable ``api_key_env``, which
    may be unset only for a ``base_url`` that needs none)."""
    from focusclip.describe.client import OpenAIDescriber, RetryPolicy
    from focusclip.describe.rules import RulesDescriber

    if backend == "rules":
        return RulesDescriber(seed=seed, attributes=attributes)
    if backend != "openai":
        raise UsageError(f"unknown describer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    api_key = (os.environ if environ is None else environ).get(api_key_env) or None
    if api_key is None and not base_url:
        raise UsageError(f"the environment variable {api_key_env} is not set; put your API key "
                         "there (or pass --base-url for a local server that needs none)")
    return OpenAIDescriber(model, base_url=base_url, api_key=api_key, timeout=timeout, temperature=temperature,
                           max_tokens=max_tokens, frequency_penalty=frequency_penalty,
                           retry=RetryPolicy(max_retries=max_retries, base_delay=retry_base_delay))


@dataclass
class FileJob:
    """What :func:`describe_file` did: the run's counts and, when records were merged, ``(records written,
    records with a description)``."""

    summary: RunSummary
    merged: tuple[int, int] | None = None


def describe_file(records: str | os.PathLike, out: str | os.PathLike, describer: Describer, *, workers: int = 1,
                  limit: int | None = None, records_out: str | os.PathLike | None = None,
                  merge_mode: str = "replace") -> FileJob:
    """Describe the records of ``records`` (a records JSONL or a custom CSV/JSONL) into ``out`` (appended
    to; rerun to resume), then merge the descriptions into ``records_out`` when given.

    The offline rules backend runs in one thread without fsync (cheap to redo); network backends use
    ``workers`` requests in flight and fsync every line. The describer is closed at the end.
    """
    from focusclip.data.sources import read_dataset_file
    from focusclip.describe.results import merge_captions

    cheap = describer.name == "rules"
    try:
        rows, _ = read_dataset_file(records)
        summary = describe_records(rows, out, describer, workers=1 if cheap else workers, limit=limit,
                                   fsync=not cheap)
    finally:
        if hasattr(describer, "close"):
            describer.close()
    merged = merge_captions(records, out, records_out, merge_mode) if records_out else None
    return FileJob(summary, merged)

"""An OpenAI-compatible chat backend for pose descriptions, with its own retry loop.

Uses the official ``openai`` client with ``max_retries=0``: retries happen here, with exponential backoff
and jitter, on 429 (honouring ``Retry-After`` / ``retry-after-ms``), 5xx, timeouts and connection errors.
Other 4xx errors are not retried. A failure is returned as an error :class:`Outcome`, never raised, so one
bad record does not stop a long job. The API key is never logged or written: error messages are
redacted before they leave this module.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from focusclip.data.records import Record, record_id
from focusclip.describe.backend import Outcome
from focusclip.describe.prompt import (
    DEFAULT_FREQUENCY_PENALTY,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    PROMPT_VERSION,
    build_messages,
)

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 500
AUTH_STATUSES = (401, 403)  #: the endpoint refuses the key: every further request would fail the same way
_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt ``a`` (0-based) waits ``d/2 + U(0, d/2)`` with
    ``d = min(max_delay, base_delay * 2**a)``, or the server's Retry-After (capped at ``max_retry_after``)."""

    max_retries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        d = min(self.max_delay, self.base_delay * (2**attempt))
        return d / 2 + rng.uniform(0, d / 2)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds, possibly fractional, or an
    HTTP date); ``None`` when absent or unreadable."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


class OpenAIDescriber:
    """Describe records with a chat model behind any OpenAI-compatible endpoint (thread-safe)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        frequency_penalty: float | None = DEFAULT_FREQUENCY_PENALTY,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], object] | None = None,
        jitter_seed: int | None = None,
    ):
        try:
            import openai
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the openai backend needs the 'openai' package: pip install 'focusclip[describe]'"
            ) from e
        self._openai = openai
        self.model = model
        self.prompt_version = PROMPT_VERSION
        self.parameters: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if frequency_penalty is not None:
            self.parameters["frequency_penalty"] = frequency_penalty
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self._secret = api_key or ""
        self._stop = threading.Event()  # set by close(): pending retries give up
        self._sleep = sleep or self._stop.wait
        self._rng = random.Random(jitter_seed)
        self._rng_lock = threading.Lock()
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or _PLACEHOLDER_KEY, timeout=timeout, max_retries=0
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIDescriber(model={self.model!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._stop.set()
        self._client.close()

    # -------------------------------------------------------------------------------- one record
    def describe(self, record: Record) -> Outcome:
        rid = record_id(record)
        messages = build_messages(record)
        attempts = self.retry.max_retries + 1
        for attempt in range(attempts):
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, **self.parameters
                )
            except Exception as e:  # classified below; unknown errors are not retried
                retryable, status, retry_after = self._classify(e)
                etype, message = type(e).__name__, _short(self.redact(str(e)))
                if not retryable or attempt == attempts - 1 or self._stop.is_set():
                    logger.warning("%s: %s%s after %d attempt(s): %s", rid, etype,
                                   f" (HTTP {status})" if status else "", attempt + 1, message)
                    return Outcome(error_type=etype, error_message=message, status=status,
                                   attempts=attempt + 1, fatal=status in AUTH_STATUSES)
                with self._rng_lock:
                    wait = self.retry.delay(attempt, retry_after, self._rng)
                logger.info("%s: %s%s on attempt %d/%d, retrying in %.2fs", rid, etype,
                            f" (HTTP {status})" if status else "", attempt + 1, attempts, wait)
                self._sleep(wait)
                continue
            return self._outcome(response, attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _outcome(self, response: Any, attempts: int) -> Outcome:
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices and choices[0].message else None
        text = (content or "").strip()
        usage = response.usage.model_dump(exclude_none=True) if getattr(response, "usage", None) else None
        finish = choices[0].finish_reason if choices else None
        served = getattr(response, "model", None)
        if not text:
            return Outcome(error_type="EmptyResponse", error_message="the model returned no text",
                           attempts=attempts, usage=usage, finish_reason=finish, served_model=served)
        return Outcome(description=self.redact(text), attempts=attempts, usage=usage, finish_reason=finish,
                       served_model=self.redact(served) if isinstance(served, str) else served)

    def _classify(self, e: Exception) -> tuple[bool, int | None, float | None]:
        """(retryable, HTTP status, Retry-After seconds) for an exception from the client."""
        oa = self._openai
        if isinstance(e, oa.APIStatusError):
            status = e.status_code
            retry_after = parse_retry_after(e.response.headers) if e.response is not None else None
            return (status == 429 or status >= 500), status, retry_after
        if isinstance(e, oa.APIConnectionError):  # includes APITimeoutError
            return True, None, None
        return False, None, None

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return text


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."

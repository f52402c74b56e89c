"""What a describer backend returns for one record, and the interface the job driver relies on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from focusclip.data.records import Record


@dataclass
class Outcome:
    """The result of describing one record: a description, or an error (type and message)."""

    description: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    status: int | None = None  # HTTP status of the last failed attempt, when there was one
    attempts: int = 1
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    served_model: str | None = None
    fatal: bool = False  # the failure will repeat for every record (e.g. the API key is refused): stop the job

    @property
    def ok(self) -> bool:
        return self.description is not None and self.error_type is None


class Describer(Protocol):
    """A backend: ``describe(record)`` never raises for a per-record failure, it returns an error Outcome."""

    name: str  # "openai" | "rules"
    model: str
    prompt_version: str
    parameters: dict[str, Any]

    def describe(self, record: Record) -> Outcome: ...

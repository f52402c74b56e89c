"""What a converter or a long job did, counted: records written per split, items skipped per reason.

Every data command (``data coco``, ``data cub``, ``data detect``, ``data shards``) reports through one
:class:`Counts`, so nothing is dropped without a number next to its reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counts:
    """``done[key]`` (e.g. records per split), ``skipped[reason]`` and ``notes[what]`` (worth knowing,
    nothing dropped), plus up to ``max_examples`` named examples per skip reason."""

    done: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def skip(self, reason: str, example: str | None = None, n: int = 1) -> None:
        self.skipped[reason] += n
        if example is not None:
            listed = self.examples.setdefault(reason, [])
            if len(listed) < self.max_examples:
                listed.append(example)

    def to_dict(self) -> dict[str, Any]:
        return {"done": dict(self.done), "skipped": dict(self.skipped), "notes": dict(self.notes),
                "examples": {k: list(v) for k, v in self.examples.items()}}

    def format(self, title: str) -> str:
        """A few indented lines: ``title``, what was done, what was skipped (with examples), notes."""
        lines = [title]
        lines += [f"  {k}: {v}" for k, v in sorted(self.done.items())]
        if self.skipped:
            lines.append("skipped:")
            for reason, n in sorted(self.skipped.items()):
                ex = self.examples.get(reason)
                lines.append(f"  {reason}: {n}" + (f" (e.g. {', '.join(ex)})" if ex else ""))
        if self.notes:
            lines.append("notes:")
            lines += [f"  {k}: {v}" for k, v in sorted(self.notes.items())]
        return "\n".join(lines)

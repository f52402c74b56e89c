"""Progress reporting for long work: a tqdm bar on a terminal, periodic log lines with rate and ETA elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
logger = logging.getLogger(__name__)


def _fmt_seconds(s: float) -> str:
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    """Count work done; show a bar on a TTY, else log ``desc: n/total (rate/s, ETA)`` every ``every`` s.

    ``update(n, **postfix)`` adds ``n`` units; ``postfix`` values (loss, lr...) are shown alongside.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", every: float = 10.0,
                 disable: bool = False, initial: int = 0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = self._initial = initial  # work done before this process (a resumed run)
        self.start = self._last = time.monotonic()
        self._bar = None
        self.disable = disable
        if not disable and sys.stderr.isatty():
            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=True)

    @property
    def rate(self) -> float:
        return (self.n - self._initial) / max(time.monotonic() - self.start, 1e-9)

    def eta(self) -> float | None:
        if self.total is None or self.n == self._initial:
            return None
        return (self.total - self.n) / max(self.rate, 1e-9)

    def update(self, n: int = 1, **postfix: object) -> None:
        self.n += n
        if self.disable:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: _short(v) for k, v in postfix.items()}, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self.every or (self.total is not None and self.n >= self.total):
            self._last = now
            logger.info(self.line(**postfix))

    def line(self, **postfix: object) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        eta = self.eta()
        extra = " ".join(f"{k}={_short(v)}" for k, v in postfix.items())
        parts = [f"{self.desc}: {self.n}{total} {self.unit}", f"{self.rate:.1f} {self.unit}/s"]
        if eta is not None:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        return " | ".join(parts) + (f" | {extra}" if extra else "")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
          every: float = 10.0) -> Iterator[T]:
    """Iterate over ``items`` while reporting progress."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, every=every) as p:
        for item in items:
            yield item
            p.update(1)

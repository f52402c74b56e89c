"""One limit on description requests in flight across every worker of a build (the LLM endpoint's rate
is the build's other limit, and it is shared).

:class:`LeaseLimiter` hands out at most ``slots`` leases at a time. Holders renew their leases while
their requests run (:class:`LimitedDescriber` does, every ``lease_seconds / 3``); a lease neither returned
nor renewed for ``lease_seconds`` (its holder was killed mid-request) is taken back, so a dead worker
cannot shrink the limit for more than that; where the driver sees a worker die (the local engine), it
gives that worker's leases back at once (:meth:`LeaseLimiter.release_holder`). The same object serves threads in one process, the processes of the
local engine (through a :mod:`multiprocessing` manager) and a Ray cluster (as an actor).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

from focusclip.describe.backend import Describer, Outcome


class LeaseLimiter:
    """At most ``slots`` leases out at once; a lease not renewed for ``lease_seconds`` expires."""

    def __init__(self, slots: int, lease_seconds: float = 30.0):
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots, self.lease_seconds = int(slots), float(lease_seconds)
        self._held: dict[int, float] = {}  # lease -> when it was taken or last renewed
        self._holders: dict[int, int | None] = {}  # lease -> the process that holds it, when given
        self._ids = itertools.count()
        self._cond = threading.Condition()

    def _expire(self, now: float) -> None:
        for lease, since in list(self._held.items()):
            if now - since > self.lease_seconds:
                del self._held[lease]
                self._holders.pop(lease, None)

    def acquire(self, holder: int | None = None) -> int:
        """Wait for a free slot; returns the lease to give back. ``holder``: the process taking it (its
        leases can then be given back at once when it dies, :meth:`release_holder`)."""
        with self._cond:
            while True:
                self._expire(time.monotonic())
                if len(self._held) < self.slots:
                    lease = next(self._ids)
                    self._held[lease] = time.monotonic()
                    self._holders[lease] = holder
                    return lease
                self._cond.wait(timeout=min(1.0, self.lease_seconds))

    def release(self, lease: int) -> None:
        with self._cond:
            self._held.pop(lease, None)
            self._holders.pop(lease, None)
            self._cond.notify_all()

    def release_holder(self, holder: int) -> int:
        """Give back every lease of process ``holder`` (it died); returns how many."""
        with self._cond:
            mine = [lease for lease, h in self._holders.items() if h == holder]
            for lease in mine:
                self._held.pop(lease, None)
                self._holders.pop(lease, None)
            self._cond.notify_all()
            return len(mine)

    def renew(self, leases: list[int]) -> None:
        """Mark ``leases`` as still in use (their holder is alive)."""
        with self._cond:
            now = time.monotonic()
            for lease in leases:
                if lease in self._held:
                    self._held[lease] = now

    def in_flight(self) -> int:
        """Leases out now (expired ones not counted)."""
        with self._cond:
            self._expire(time.monotonic())
            return len(self._held)


class LimitedDescriber:
    """A describer whose every request holds a lease of ``limiter`` (anything with ``acquire()`` /
    ``release(lease)`` / ``renew(leases)``), renewed every ``renew_every`` seconds by a background thread
    while held; everything else is the wrapped describer's."""

    def __init__(self, describer: Describer, limiter: Any, renew_every: float = 10.0):
        self._describer, self._limiter = describer, limiter
        self.name, self.model = describer.name, describer.model
        self.prompt_version, self.parameters = describer.prompt_version, describer.parameters
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, args=(renew_every,), daemon=True,
                                         name="lease-renewer")
        self._renewer.start()

    def _renew_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                held = list(self._held)
            if held:
                self._limiter.renew(held)

    def describe(self, record: Any) -> Outcome:
        lease = self._limiter.acquire(os.getpid())
        with self._lock:
            self._held.add(lease)
        try:
            return self._describer.describe(record)
        finally:
            with self._lock:
                self._held.discard(lease)
            self._limiter.release(lease)

    def close(self) -> None:
        self._stop.set()
        close = getattr(self._describer, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:  # redact, ...
        return getattr(self._describer, name)

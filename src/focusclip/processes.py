"""Worker processes that end with their parent, even when the parent is killed with SIGKILL (a killed
driver of `data detect` or `data build` leaves no workers behind)."""

from __future__ import annotations

import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  #: prctl option (linux/prctl.h): the signal this process gets when its parent dies


def end_with_parent() -> None:
    """Make this (worker) process end when its parent does, even when the parent is killed with SIGKILL and
    cannot stop it: on Linux the kernel sends it SIGKILL then (``prctl(PR_SET_PDEATHSIG)``; strictly, when
    the parent's thread that started it ends: :func:`detect_images` keeps that thread busy until the job is
    done); everywhere, a daemon thread waits on multiprocessing's parent sentinel and ends the process when
    it fires."""
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError) as e:  # no libc prctl: the sentinel thread below still works
            logger.debug("prctl(PR_SET_PDEATHSIG) unavailable: %s", e)
    if os.getppid() != parent.pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent.sentinel,), name="end-with-parent", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    from multiprocessing.connection import wait

    wait([sentinel])
    os._exit(1)

"""Reaching the Hugging Face Hub: fail fast when it cannot be reached (sharing models is :mod:`focusclip.hub`).

open_clip, transformers and timm download through ``huggingface_hub``, which retries a failed request
five times with growing pauses (about 50 s and 20 warnings per model when the machine is offline)
before the error that we turn into "pass a local checkpoint". :func:`hub_access` wraps every place that
may download: it probes the hub's host once (one TCP connection, :data:`PROBE_TIMEOUT` seconds) and,
when the host cannot be reached, runs the call in huggingface_hub's own offline mode (what
``HF_HUB_OFFLINE=1`` does): files already in the local cache still load, anything else fails at once
with the library's "offline" error, which the callers turn into our one-line error.

The probe is skipped when ``HF_HUB_OFFLINE`` is already set, when the source is a local path, and when
a proxy is configured (``HTTPS_PROXY`` / ``ALL_PROXY``: a direct connection says nothing then).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

#: seconds to wait for a TCP connection to the hub before treating it as unreachable
PROBE_TIMEOUT = 3.0
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
#: one offline block at a time (threads of a server): the flag is set and put back by one holder only
_OFFLINE_LOCK = threading.RLock()


def hub_host() -> tuple[str, int]:
    """(host, port) of the hub endpoint huggingface_hub uses (``HF_ENDPOINT`` or huggingface.co)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def hub_reachable(timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub's host opens within ``timeout`` seconds."""
    host, port = hub_host()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE=1``, or inside :func:`hub_access`
    with the hub unreachable)."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


@contextlib.contextmanager
def hub_access(source: str | None = None) -> Iterator[bool]:
    """Run a block that may download ``source`` (a hub id, a tag; a local path skips the probe). Yields
    whether the hub is used online; when it is unreachable, the block runs in offline mode (cache only)."""
    from huggingface_hub import constants

    if (source is not None and os.path.exists(str(source))) or constants.is_offline_mode() \
            or any(os.environ.get(v) for v in _PROXY_VARS) or hub_reachable():
        yield not constants.is_offline_mode()
        return
    host, _ = hub_host()
    logger.info("the hub (%s) cannot be reached: using the local cache only", host)
    with _OFFLINE_LOCK:  # offline calls fail or read the cache at once, so holding it costs nothing
        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True  # huggingface_hub reads it on every request (is_offline_mode)
        try:
            yield False
        finally:
            constants.HF_HUB_OFFLINE = saved

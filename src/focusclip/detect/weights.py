"""Model files for the detectors that need them: a local path, or a URL downloaded once into the cache.

Nothing is downloaded unless a URL is given; a URL's file is cached as ``<cache>/<its file name>``
(``$FOCUSCLIP_CACHE`` or ``~/.cache/focusclip``), written atomically, and reused on later runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.request
from pathlib import Path

from focusclip.errors import MissingInput

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where downloaded weights go: ``$FOCUSCLIP_CACHE`` or ``~/.cache/focusclip``."""
    return Path(os.environ.get("FOCUSCLIP_CACHE") or Path.home() / ".cache" / "focusclip")


def model_file(spec: str | os.PathLike, what: str, expected: str, cache: str | os.PathLike | None = None) -> Path:
    """The local file for ``spec`` (a path, or a URL downloaded once into ``cache``); a missing path is a
    :class:`~focusclip.errors.MissingInput` naming ``what`` and the ``expected`` kinds of file."""
    text = str(spec)
    if "://" not in text:
        local = Path(text).expanduser()
        if not local.is_file():
            raise MissingInput(f"{what} not found: {local} ({expected})")
        return local
    cache = Path(cache) if cache is not None else cache_dir()
    local = cache / text.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    if local.exists():
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.{os.getpid()}.part")
    logger.info("downloading %s -> %s", text, local)
    try:
        with urllib.request.urlopen(text, timeout=60) as r, tmp.open("wb") as f:  # noqa: S310 - the user's URL
            shutil.copyfileobj(r, f)
        os.replace(tmp, local)
    except OSError as e:
        raise OSError(f"could not download the {what} {text}: {e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return local

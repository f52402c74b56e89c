"""Which focusclip wrote a file, and what to say when it is newer than the one reading it.

A saved model's ``config.json`` records ``"version"`` (the focusclip that wrote it; training checkpoints do
the same). Reading a model written by a **newer** focusclip logs a warning that names both versions, and if
loading then fails (a config key or weight this version does not know) the error names them too, with the
upgrade command. A warning rather than a refusal: the format is self-describing and loads strictly, so a
newer model either loads exactly (most do: patch releases, new optional settings left at their defaults) or
fails with an error that now says why; refusing would block models that work. Models written by older
versions load silently (0.1 models included: their renamed keys are mapped).
"""

from __future__ import annotations

import re

_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def release_tuple(version: object) -> tuple[int, ...] | None:
    """``"0.2.0"`` -> ``(0, 2, 0)``; the release part of a PEP 440 version; None when there is none."""
    m = _RELEASE.match(str(version)) if version is not None else None
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def is_newer(written: object, current: object) -> bool:
    """Whether version ``written`` is a later release than ``current`` (unknown versions are not newer)."""
    a, b = release_tuple(written), release_tuple(current)
    if a is None or b is None or str(current).startswith("0+"):
        return False
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) > b + (0,) * (width - len(b))


def newer_version_note(written: object, current: str | None = None) -> str | None:
    """``"written by focusclip W, newer than this focusclip C"`` when ``written`` is newer, else None."""
    if current is None:
        from focusclip import __version__ as current
    if not is_newer(written, current):
        return None
    return f"written by focusclip {written}, newer than this focusclip {current}"


def upgrade_hint(written: object) -> str:
    return f"upgrade with: pip install -U 'focusclip>={written}'"

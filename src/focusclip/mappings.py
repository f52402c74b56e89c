"""Helpers for nested config mappings (model configs, training configs, task files): a deep merge and
strict key checks whose errors suggest the closest valid key, and config YAML / ``KEY=VALUE`` values."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``base`` with ``overrides`` merged in (nested mappings merge, everything else replaces).
    Neither input is modified."""
    out = copy.deepcopy(dict(base))
    for k, v in overrides.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) \
            else copy.deepcopy(v)
    return out


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest valid names, or an empty string."""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_keys(given: Iterable[str], valid: Iterable[str], where: str) -> str | None:
    """The error message for keys of ``given`` that are not in ``valid`` (None when all are known)."""
    valid = list(valid)
    bad = [k for k in given if k not in valid]
    if not bad:
        return None
    hints = "".join(did_you_mean(k, valid) for k in bad)
    return f"{where}: unknown key{'s' if len(bad) > 1 else ''} {', '.join(repr(k) for k in bad)}.{hints} " \
           f"Valid keys: {', '.join(valid)}"


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1's SafeLoader, but numbers such as ``1e-3`` or ``5E4`` (no dot) are floats, as on the
    command line (PyYAML reads them as strings)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse config YAML (numbers written like ``1e-3`` are floats)."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def parse_value(raw: str) -> Any:
    """A command-line value: YAML scalars and flow collections, with ``1e-3`` read as a float."""
    raw = raw.strip()
    try:
        return load_yaml(raw) if raw else ""
    except yaml.YAMLError:
        return raw

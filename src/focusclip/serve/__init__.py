"""``focusclip serve``: a web page and a JSON API for zero-shot classification of people.

Modules, one concept each: ``models`` (which models can be picked, the one-model cache), ``presets``
(label sets from the task registry), ``uploads`` (checked decoding of uploaded photos), ``roi`` (each
photo with its region of interest), ``service`` (classify / embed / search, shared by page and API),
``results`` (table, CSV, JSON), ``cards`` (the results' HTML), ``api`` (``/api/...``), ``page`` (the
Gradio Blocks) and ``app`` (the server). Needs the ``app`` extra: ``pip install 'focusclip[app]'``.
See docs/serve.md.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_EXPORTS = {"ServeConfig": "focusclip.serve.app", "create_app": "focusclip.serve.app", "serve": "focusclip.serve.app"}
APP_MODULES = ("gradio", "fastapi", "uvicorn", "multipart")

__all__ = [*_EXPORTS, "missing_app_modules"]


def missing_app_modules() -> list[str]:
    """The modules of the ``app`` extra that cannot be imported here."""
    return [m for m in APP_MODULES if importlib.util.find_spec(m) is None]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'focusclip.serve' has no attribute {name!r}")

"""The zero-shot task registry, kept as data: ``zeroshot/tasks/*.json``.

A task file is ``{"set": NAME, "tasks": [TASK, ...], "headline": {...}?}``; a TASK is::

    {"name": "fer2013", "dataset": "fer2013", "split": "test", "group": "emotion",
     "classes": ["angry", ...] | null,            # null: the class list comes from the dataset
     "class_text": {"angry": "angry", "disgust": "disgusted", ...},   # key -> text (default: key, _ -> space)
     "templates": ["a photo of {a/an} {c} looking face"],   # {c}: class text; {a/an}: its article
     "ensemble_templates": ["..."],               # extra templates averaged in with --ensemble
     "k": 3, "multilabel": false, "options": {...},   # options go to the dataset loader
     "paper": {"chance": 43.23, "clip": 52.56, "focusclip": 63.35}, "note": "..."}

Prompts are built from the same class list that labels index into, so the two line up by construction.
Sets: each file's ``set`` (``paper``, ``extra``, ``synthetic``) and ``all``. A user file passed as
``--tasks my_tasks.json`` has the same format (``set`` optional) or is a list of tasks or one task.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from focusclip.english import article
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.io import read_json
from focusclip.mappings import did_you_mean

TASKS_DIR = Path(__file__).parent / "tasks"
_FIELDS = ("name", "dataset", "split", "group", "classes", "class_text", "templates", "ensemble_templates",
           "k", "multilabel", "options", "paper", "note", "sets")


@dataclass(frozen=True)
class Task:
    """One zero-shot classification task (see the module docstring for the fields)."""

    name: str
    dataset: str
    templates: tuple[str, ...]
    split: str = "test"
    group: str = ""
    classes: tuple[str, ...] | None = None
    class_text: dict[str, str] = field(default_factory=dict)
    ensemble_templates: tuple[str, ...] = ()
    k: int = 1
    multilabel: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    note: str = ""
    sets: tuple[str, ...] = ()

    def text(self, key: str) -> str:
        """The words a class key is called by in prompts."""
        return self.class_text.get(key, key.replace("_", " "))

    def prompts(self, classes: Sequence[str], ensemble: bool = False) -> list[list[str]]:
        """For each class (in the given order) its prompts: one per template (+ the ensemble templates)."""
        templates = list(self.templates) + (list(self.ensemble_templates) if ensemble else [])
        return [[fill_template(t, self.text(c)) for t in templates] for c in classes]

    def fingerprint(self) -> str:
        """A short hash of everything that changes the task's numbers (not its published references)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("paper", "note", "sets", "group")}
        return hashlib.blake2b(json.dumps(d, sort_keys=True).encode(), digest_size=6).hexdigest()


def fill_template(template: str, text: str) -> str:
    """``"a photo of {a/an} {c} looking face"`` + ``"angry"`` -> ``"a photo of an angry looking face"``."""
    if "{c}" not in template:
        raise InputError(f"prompt template {template!r} has no {{c}} placeholder for the class name")
    return template.replace("{a/an}", article(text)).replace("{c}", text)


def task_from_dict(d: dict[str, Any], where: str, default_set: str | None = None) -> Task:
    """Build a :class:`Task`, with errors that name ``where`` (file and task index) and the bad field."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: a task must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {unknown}; allowed: {list(_FIELDS)}")
    for req in ("name", "dataset", "templates"):
        if not d.get(req):
            raise InputError(f"{where}: missing {req!r}")
    templates = d["templates"]
    if isinstance(templates, str):
        templates = [templates]
    for t in list(templates) + list(d.get("ensemble_templates") or []):
        if "{c}" not in t:
            raise InputError(f"{where} ({d['name']}): template {t!r} has no {{c}} placeholder")
    classes = d.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise InputError(f"{where} ({d['name']}): 'classes' must be a non-empty list of strings or null")
        if len(set(classes)) != len(classes):
            raise InputError(f"{where} ({d['name']}): duplicate class names")
    k = int(d.get("k", 1))
    if k < 1:
        raise InputError(f"{where} ({d['name']}): k must be >= 1")
    sets = tuple(d.get("sets") or ([default_set] if default_set else []))
    return Task(name=d["name"], dataset=d["dataset"], templates=tuple(templates), split=d.get("split", "test"),
                group=d.get("group", ""), classes=tuple(classes) if classes is not None else None,
                class_text=dict(d.get("class_text") or {}),
                ensemble_templates=tuple(d.get("ensemble_templates") or ()), k=k,
                multilabel=bool(d.get("multilabel", False)), options=dict(d.get("options") or {}),
                paper=dict(d.get("paper") or {}), note=d.get("note", ""), sets=sets)


def read_task_file(path: str | os.PathLike) -> tuple[list[Task], dict[str, Any]]:
    """Tasks of one JSON file and its ``headline`` spec (empty when it has none)."""
    path = Path(path)
    data = read_json(path, "task file")
    if isinstance(data, dict) and "tasks" in data:
        items, set_name, headline = data["tasks"], data.get("set"), data.get("headline") or {}
    else:
        items, set_name, headline = (data if isinstance(data, list) else [data]), None, {}
    tasks = [task_from_dict(d, f"{path}: task {i}", set_name) for i, d in enumerate(items)]
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"{path}: duplicate task names {dup}")
    return tasks, headline


def load_registry(tasks_dir: str | os.PathLike = TASKS_DIR) -> dict[str, Task]:
    """All built-in tasks by name, in file order (paper first)."""
    out: dict[str, Task] = {}
    files = sorted(Path(tasks_dir).glob("*.json"), key=lambda p: (p.stem != "paper", p.stem))
    for f in files:
        for t in read_task_file(f)[0]:
            if t.name in out:
                raise InputError(f"{f}: task {t.name!r} is already defined in another task file")
            out[t.name] = t
    return out


def headline_spec(tasks_dir: str | os.PathLike = TASKS_DIR) -> dict[str, Any]:
    """The paper's headline definition (``{"groups": {group: [task, ...]}, "published": {...}}``)."""
    return read_task_file(Path(tasks_dir) / "paper.json")[1]


def list_sets(registry: dict[str, Task]) -> list[str]:
    return sorted({s for t in registry.values() for s in t.sets} | {"all"})


def resolve_tasks(spec: str | Sequence[str], registry: dict[str, Task] | None = None) -> list[Task]:
    """Tasks named by ``spec``: set names (``paper``, ``all``, ``synthetic``...), task names, JSON file
    paths, comma separated or as a list. Unknown names fail with the list of known ones."""
    registry = load_registry() if registry is None else registry
    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else [str(p) for p in spec]
    out: dict[str, Task] = {}
    for p in filter(None, parts):
        if p.endswith(".json") or os.path.sep in p:
            if not Path(p).exists():
                raise MissingInput(f"task file {p} not found")
            picked = read_task_file(p)[0]
        elif p == "all":
            picked = list(registry.values())
        elif p in registry:
            picked = [registry[p]]
        else:
            picked = [t for t in registry.values() if p in t.sets]
            if not picked:
                raise UsageError(f"unknown task or set {p!r}.{did_you_mean(p, [*registry, *list_sets(registry)])} "
                                 f"Sets: {', '.join(list_sets(registry))}; tasks: {', '.join(registry)}")
        for t in picked:
            out[t.name] = t
    if not out:
        raise UsageError(f"no tasks selected by {spec!r}")
    return list(out.values())

"""Loaders for the zero-shot benchmarks, each reading the layout its dataset is distributed in.

``load_benchmark(name, root, split, **options) -> LoadedSet``; ``DATASETS`` maps names to loaders. A new
dataset is one new file in this folder with a loader decorated ``@register_dataset("name")``: every module
here is imported with the package, so the loader registers itself.
docs/datasets.md says where each dataset comes from and how to lay it out.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable

from focusclip.errors import UsageError
from focusclip.mappings import did_you_mean, parse_value
from focusclip.zeroshot.datasets.common import (
    DATASETS,
    DatasetAbsent,
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
    register_dataset,
)


def _import_loaders() -> None:
    """Import every module of this folder, so that each loader registers itself."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_loaders()


def load_benchmark(name: str, root: str | os.PathLike, split: str, **options: object) -> LoadedSet:
    """Load dataset ``name`` from ``root``; unknown names fail with the list of known ones."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}.{did_you_mean(name, DATASETS)} Known: {', '.join(DATASETS)}")
    return DATASETS[name](root, split=split, **options)


def parse_dataset_options(items: Iterable[str]) -> dict[str, dict[str, object]]:
    """Extra loader options written ``DATASET.KEY=VALUE`` (values parsed as YAML scalars), per dataset.

    >>> parse_dataset_options(["ferplus.fer2013_csv=x.csv", "emotic.min_area=0.5"])
    {'ferplus': {'fer2013_csv': 'x.csv'}, 'emotic': {'min_area': 0.5}}
    """
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        dataset, dot, option = key.strip().partition(".")
        if not (sep and dot and dataset and option):
            raise UsageError(f"--dataset-option {item!r}: expected DATASET.KEY=VALUE, e.g. "
                             "ferplus.fer2013_csv=data/fer2013/fer2013.csv")
        out.setdefault(dataset, {})[option] = parse_value(raw)
    return out


__all__ = ["DATASETS", "DatasetAbsent", "DatasetError", "DatasetLayoutError", "LoadedSet", "Sample",
           "load_benchmark", "parse_dataset_options", "register_dataset"]

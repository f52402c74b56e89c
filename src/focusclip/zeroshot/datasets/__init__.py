"""Loaders for the zero-shot benchmarks, each reading the layout its dataset is distributed in.

``load_benchmark(name, root, split, **options) -> LoadedSet``; ``DATASETS`` maps names to loaders.
docs/datasets.md says where each dataset comes from and how to lay it out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from types import MappingProxyType

from focusclip.errors import UsageError
from focusclip.mappings import did_you_mean, parse_value
from focusclip.zeroshot.datasets.actions import load_kinetics400, load_stanford40
from focusclip.zeroshot.datasets.birds import load_cub
from focusclip.zeroshot.datasets.common import (
    DatasetAbsent,
    DatasetError,
    DatasetLayoutError,
    LoadedSet,
    Sample,
)
from focusclip.zeroshot.datasets.emotic import load_emotic
from focusclip.zeroshot.datasets.faces import (
    load_fairface,
    load_fer2013,
    load_ferplus,
    load_lagenda,
    load_utkface,
)
from focusclip.zeroshot.datasets.generic import load_imagefolder, load_synthetic

DATASETS: MappingProxyType[str, Callable[..., LoadedSet]] = MappingProxyType({
    "stanford40": load_stanford40,
    "kinetics400": load_kinetics400,
    "emotic": load_emotic,
    "lagenda": load_lagenda,
    "utkface": load_utkface,
    "fairface": load_fairface,
    "fer2013": load_fer2013,
    "ferplus": load_ferplus,
    "cub": load_cub,
    "synthetic": load_synthetic,
    "imagefolder": load_imagefolder,
})


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
           "load_benchmark", "parse_dataset_options"]

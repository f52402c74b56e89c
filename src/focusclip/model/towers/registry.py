"""The tower-family registries: a family joins them where it is defined, with :func:`register_tower`
(a vision or text family) or :func:`register_clip_family` (a whole CLIP: both towers from one checkpoint).

A model config names its family by the key it carries (``vision.timm_model_name``, ``clip.open_clip_model``,
...). A whole-CLIP family also carries what differs between CLIP libraries, so no code outside its file
branches on the library: its text positions (:attr:`ClipFamily.context_length`), its tokenizer
(:attr:`ClipFamily.tokenizer`), its export (:attr:`ClipFamily.export`) and its one-line description.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from torch import nn

from focusclip.errors import UsageError
from focusclip.model.towers.base import ClipTowers

Builder = Callable[[Mapping[str, Any], "str | None"], nn.Module]
ClipBuilder = Callable[[Mapping[str, Any], "str | bool | None"], ClipTowers]


@dataclass(frozen=True)
class TowerFamily:
    build: Builder | ClipBuilder
    config_keys: tuple[str, ...]  #: keys of the config section the family reads beyond the common ones

    def name_of(self, cfg: Mapping[str, Any]) -> str:
        """A short name of the tower a config section describes (``focusclip models``): the value of the
        family key it carries (a config given inline: its ``model_type``), with the family's other keys that
        are set, e.g. ``efficientnet_lite0``, ``hybrid_backbone=efficientnet_lite0 (feature_stride=16, ...)`` or
        ``bert (hf_config)``."""
        key = next((k for k in self.config_keys if cfg.get(k)), self.config_keys[0])
        value = cfg.get(key, "?")
        if isinstance(value, Mapping):
            name = f"{value.get('model_type', 'custom')} ({key})"
        else:
            name = str(value) if key.endswith("model_name") else f"{key}={value}"
        extra = [f"{k}={cfg[k]}" for k in self.config_keys if k != key and k in cfg and not isinstance(cfg[k], Mapping)]
        return name + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class ClipFamily(TowerFamily):
    """A whole-CLIP family: ``build(clip_cfg, weights) -> ClipTowers`` and the library's own behaviour."""

    #: the checkpoint's text positions (``clip_cfg -> int``), before any long-text stretching
    context_length: Callable[[Mapping[str, Any]], int] = lambda clip: 77
    #: the checkpoint's tokenizer: ``clip_cfg -> (tokenizer backend, source name)``
    tokenizer: Callable[[Mapping[str, Any]], tuple[Any, str]] | None = None
    #: the name ``focusclip export --format`` knows the library's checkpoint format by
    export_format: str = ""
    #: ``export(model, state, out_dir, tokenizer)`` writes the library's checkpoint from the stripped state
    export: Callable[[Any, dict, Any, Any], None] | None = None
    #: one line naming the checkpoint (``focusclip models``)
    describe: Callable[[Mapping[str, Any]], str] = lambda clip: ""
    #: what was exported and how to load it, with ``{out}`` for the folder (``focusclip export``)
    exported: str = "checkpoint in {out}"


_VISION: dict[str, TowerFamily] = {}
_TEXT: dict[str, TowerFamily] = {}
_CLIP: dict[str, ClipFamily] = {}

#: the config key that selects a family -> the family, tried in order (read-only views; families join
#: with register_tower / register_clip_family)
VISION_FAMILIES: Mapping[str, TowerFamily] = MappingProxyType(_VISION)
TEXT_FAMILIES: Mapping[str, TowerFamily] = MappingProxyType(_TEXT)
#: whole CLIPs (the model config's ``clip`` section): both towers from one checkpoint
CLIP_FAMILIES: Mapping[str, ClipFamily] = MappingProxyType(_CLIP)

_SECTIONS = {"vision": _VISION, "text": _TEXT}
B = TypeVar("B", bound=Callable[..., Any])


def _add(registry: dict, key: str, family: TowerFamily) -> None:
    if registry.get(key, family) != family:
        raise ValueError(f"tower family key {key!r} is already registered")
    registry[key] = family


def register_tower(section: str, *keys: str, config_keys: tuple[str, ...] = ()) -> Callable[[B], B]:
    """Decorator of a builder ``(cfg, weights) -> tower``: the family of config section ``section``
    (``"vision"`` or ``"text"``) that a section carrying any of ``keys`` selects; ``config_keys`` are the
    keys it reads beyond the section's common ones (default: ``keys``).

    >>> @register_tower("vision", "my_model_name")      # doctest: +SKIP
    ... def build_my_tower(cfg, weights):
    ...     return MyTower(cfg["my_model_name"], weights)
    """
    if section not in _SECTIONS or not keys:
        raise ValueError(f"register_tower: section must be one of {', '.join(_SECTIONS)}, with a key")

    def register(build: B) -> B:
        family = TowerFamily(build, tuple(config_keys or keys))
        for key in keys:
            _add(_SECTIONS[section], key, family)
        return build

    return register


def register_clip_family(key: str, family: ClipFamily) -> ClipFamily:
    """Make ``family`` the whole-CLIP family that a ``clip`` section carrying ``key`` selects."""
    _add(_CLIP, key, family)
    return family


def tower_family(cfg: Mapping[str, Any], families: Mapping[str, TowerFamily], section: str) -> Any:
    """The family a config section selects; a clear error naming the keys otherwise."""
    if not isinstance(cfg, Mapping):
        raise UsageError(f"model config '{section}' must be an object")
    for key, family in families.items():
        if cfg.get(key):
            return family
    raise UsageError(f"model config '{section}' names no tower family: give one of {', '.join(families)}")


def clip_family(clip: Mapping[str, Any]) -> ClipFamily:
    """The family of a model config's ``clip`` section."""
    return tower_family(clip, CLIP_FAMILIES, "clip")

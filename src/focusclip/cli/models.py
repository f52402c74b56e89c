"""``focusclip models``: list the registered model configs."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list the registered model configs")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.model import get_model_config, list_models
    from focusclip.model.towers import TEXT_FAMILIES, VISION_FAMILIES, clip_family, tower_family

    for name in list_models():
        cfg = get_model_config(name)
        roi = f"ROI:{cfg['roi'].get('mode', 'highlight')}" if cfg.get("roi", {}).get("enabled") else ""
        clip = cfg.get("clip") or {}
        if clip:
            towers = clip_family(clip).describe(clip)
        else:
            vision = tower_family(cfg["vision"], VISION_FAMILIES, "vision").name_of(cfg["vision"])
            text = tower_family(cfg["text"], TEXT_FAMILIES, "text").name_of(cfg["text"])
            towers = f"vision={vision}  text={text}  embed_dim={cfg['embed_dim']}"
        print(f"{name:28s} {roi:15s} {towers}")
    print("\nany CLIP by name: openclip:ARCH/TAG, openclip:ARCH@FILE, openclip:local-dir:FOLDER, "
          "hfclip:HUB_ID_OR_FOLDER; prefix focusclip: adds the ROI branch (docs/pretrained-clip.md)")
    return 0

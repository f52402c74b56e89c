"""``focusclip models``: list the registered model configs."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list the registered model configs")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.model import get_model_config, list_models
    from focusclip.model.towers import clip_family

    for name in list_models():
        cfg = get_model_config(name)
        roi = f"ROI:{cfg['roi'].get('mode', 'highlight')}" if cfg.get("roi", {}).get("enabled") else ""
        clip = cfg.get("clip") or {}
        if clip:
            towers = clip_family(clip).describe(clip)
        else:
            towers = (f"vision={cfg['vision'].get('timm_model_name', '?')}  "
                      f"text={cfg['text'].get('hf_model_name', 'tiny')}  embed_dim={cfg['embed_dim']}")
        print(f"{name:28s} {roi:15s} {towers}")
    print("\nany CLIP by name: openclip:ARCH/TAG, openclip:ARCH@FILE, openclip:local-dir:FOLDER, "
          "hfclip:HUB_ID_OR_FOLDER; prefix focusclip: adds the ROI branch (docs/pretrained-clip.md)")
    return 0

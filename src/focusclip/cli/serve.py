"""``focusclip serve``: the web page and JSON API."""

from __future__ import annotations

import argparse

from focusclip.cli._args import (
    Subparsers,
    add_detector_options,
    detector_options,
    non_negative_int,
    positive_float,
    positive_int,
)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="web page + JSON API for zero-shot classification (needs focusclip[app])",
                       description="Start the web page (Gradio) and the JSON API (POST /api/predict, "
                       "/api/embed) on HOST:PORT. Offers every saved model below --models-root and the "
                       "registered configs; works offline. See docs/serve.md.")
    p.add_argument("--models-root", default="runs", help="folder searched for saved models (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=non_negative_int, default=7860, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--model", help="model preselected on the page and used by the API when none is named "
                   "(an id from GET /api/models, or hf-hub:ORG/NAME[@REVISION]: a saved model on the Hugging Face "
                   "Hub, offered too; default: a trained FocusCLIP model)")
    p.add_argument("--no-registered", action="store_true", help="offer only saved models, not registered configs")
    p.add_argument("--clip", action="append", default=[], metavar="NAME",
                   help="also offer this CLIP checkpoint, e.g. openclip:ViT-B-16/openai or hfclip:DIR (repeatable; "
                        "hub names need a network the first time)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=positive_int, help="CPU threads for inference (default: torch's, one per core); "
                   "1 answers faster on a busy machine")
    p.add_argument("--max-upload-mb", type=positive_float, default=20.0, help="largest photo in MB (default: %(default)s)")
    p.add_argument("--max-megapixels", type=positive_float, default=40.0,
                   help="largest photo in megapixels, checked before decoding (default: %(default)s)")
    p.add_argument("--max-images", type=positive_int, default=32, help="photos per request (default: %(default)s)")
    p.add_argument("--detect", choices=["auto", "mediapipe", "rtmo", "none"], default="auto", metavar="DETECTOR",
                   help="pose detector for photos without an ROI file: auto (mediapipe when installed, the "
                        "default), mediapipe, rtmo (needs --detector-weights) or none")
    add_detector_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.serve import missing_app_modules

    missing = missing_app_modules()
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed; pip install 'focusclip[app]'")
    from focusclip.serve.app import ServeConfig, serve
    from focusclip.serve.uploads import MIB, UploadLimits

    file_bytes = int(args.max_upload_mb * MIB)
    limits = UploadLimits(max_file_bytes=file_bytes, max_pixels=int(args.max_megapixels * 1e6),
                          max_images=args.max_images, max_request_bytes=max(128 * MIB, 2 * file_bytes))
    serve(ServeConfig(models_root=args.models_root, host=args.host, port=args.port, default_model=args.model,
                      registered=not args.no_registered, clip_models=tuple(args.clip), device=args.device,
                      threads=args.threads, limits=limits, detector=args.detect,
                      detector_options=detector_options(args.detect, args) if args.detect != "none" else {}))
    return 0

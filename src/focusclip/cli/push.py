"""``focusclip push``: a saved model folder to a Hugging Face Hub model repository, with a model card."""

from __future__ import annotations

import argparse

from focusclip.cli._args import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("push", help="upload a saved model to the Hugging Face Hub with a model card (hf-hub:ORG/NAME)",
                       description="Upload MODEL_DIR (config.json, model.safetensors, tokenizer/) and a README.md "
                       "model card written from the model: towers, focus mode, the training recipe (the run's "
                       "config.yaml next to the model), zero-shot results for the model's fingerprint (results "
                       "files beside it, or --results) as a table and model-index metadata. The token comes from "
                       "HF_TOKEN or `hf auth login`, never from the command line. Load it back with "
                       "--model hf-hub:ORG/NAME. See docs/sharing.md.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a saved model directory (focusclip.save_model)")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub model repository (created if missing)")
    p.add_argument("--revision", metavar="BRANCH", help="commit to this branch (created if missing; default main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--results", action="append", default=None, metavar="RESULTS_JSON",
                   help="a `focusclip eval` results file for the card (repeatable; default: the ones found beside "
                        "the model)")
    p.add_argument("--message", help="commit message")
    p.add_argument("--card-only", metavar="FILE",
                   help="write the model card to FILE (a new file) and upload nothing, to read or edit it first")
    p.add_argument("--card", metavar="FILE", help="upload this README.md instead of the generated card")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from focusclip.errors import OutputError, UsageError
    from focusclip.io import atomic_write_text, check_file_target, read_text
    from focusclip.model.names import parse_hub_name

    repo = args.repo[len("hf-hub:"):] if args.repo.startswith("hf-hub:") else args.repo
    parse_hub_name(repo)
    if args.card_only:
        if args.card:
            raise UsageError("--card-only writes the generated card; --card uploads your own: give one of them")
        from focusclip.model_card import model_card

        check_file_target("--card-only", args.card_only)
        if Path(args.card_only).exists():
            raise OutputError(f"{args.card_only} already exists; choose another --card-only file")
        if Path(args.card_only).resolve().is_relative_to(Path(args.model_dir).resolve()):
            raise UsageError(f"--card-only {args.card_only}: inside MODEL_DIR (an input); write the card elsewhere")
        atomic_write_text(args.card_only, model_card(args.model_dir, results=args.results, repo_id=repo))
        print(f"model card: {args.card_only}")
        return 0
    from focusclip.hub import push_to_hub

    card = read_text(args.card, "model card") if args.card else None
    out = push_to_hub(args.model_dir, repo, revision=args.revision, private=True if args.private else None,
                      commit_message=args.message, results=args.results, card=card)
    print(f"pushed {len(out['files'])} files to {out['repo_id']} ({out['url']})")
    print(f"load it with: --model {out['name']}   or   focusclip.load_model(\"{out['name']}\")")
    return 0

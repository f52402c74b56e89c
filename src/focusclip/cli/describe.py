"""``focusclip describe``: pose descriptions for records (LLM or rules), merging, statistics."""

from __future__ import annotations

import argparse
import sys

from focusclip.cli._args import Subparsers, add_describer_options, describer_kwargs, positive_int


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "describe",
        help="write pose descriptions for records (LLM or offline rules; resumable), merge them, or --stats",
        description="Describe each record's pose with the paper's single-shot LLM prompt (any OpenAI-"
        "compatible endpoint) or the offline rule-based describer. Results are appended to --out; "
        "rerunning the same command resumes (finished records are skipped, failed ones retried).",
    )
    p.add_argument("records", nargs="?", help="records JSONL, or a custom CSV/JSONL")
    p.add_argument("--out", help="descriptions JSONL (appended to; rerun to resume)")
    add_describer_options(p, concurrency=8)
    p.add_argument("--limit", type=positive_int, help="only the first N records")
    p.add_argument("--records-out", help="also write the records with their descriptions as captions here")
    p.add_argument("--merge-mode", choices=["replace", "append"], default="replace",
                   help="with --records-out: the description replaces the records' captions or is appended "
                        "to them (default: %(default)s)")
    p.add_argument("--merge", action="store_true", help="only merge --out into --records-out; describe nothing")
    p.add_argument("--stats", metavar="FILE", help="print statistics of a descriptions file and exit")
    p.add_argument("--json", action="store_true", help="with --stats: print JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.describe import (
        collect_descriptions,
        create_describer,
        describe_file,
        description_stats,
        format_description_stats,
        merge_captions,
    )
    from focusclip.errors import UsageError
    from focusclip.io import check_not_inputs, json_text

    if args.stats:
        stats = description_stats(collect_descriptions(args.stats))
        print(json_text(stats, indent=2) if args.json else format_description_stats(stats))
        return 0
    if not args.records or not args.out:
        raise UsageError("give a records JSONL and --out DESCRIPTIONS.jsonl (or --stats FILE)")
    check_not_inputs({"--out": args.out, "--records-out": args.records_out}, {"RECORDS": args.records})
    check_not_inputs({"--records-out": args.records_out}, {"--out": args.out})
    if args.merge:
        if not args.records_out:
            raise UsageError("--merge needs --records-out")
        n, described = merge_captions(args.records, args.out, args.records_out, args.merge_mode)
        print(f"{n} records ({described} with a description) -> {args.records_out}")
        return 0
    if args.backend is None:
        raise UsageError("choose --backend openai (LLM endpoint) or --backend rules (offline)")
    describer = create_describer(args.backend, **describer_kwargs(args))
    try:
        job = describe_file(args.records, args.out, describer, workers=args.concurrency, limit=args.limit,
                            records_out=args.records_out, merge_mode=args.merge_mode)
    except KeyboardInterrupt:
        print(f"interrupted; finished results are in {args.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    summary = job.summary
    print(f"{summary.described} described, {summary.failed} failed, {summary.skipped} already done "
          f"-> {args.out}")
    if job.merged:
        n, described = job.merged
        print(f"{n} records ({described} with a description) -> {args.records_out}")
    if summary.failed:
        print(f"{summary.failed} records failed (error lines in {args.out}); rerun the same command to "
              "retry them", file=sys.stderr)
        return 1
    return 0

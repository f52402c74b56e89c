"""``focusclip data build``: photos -> people -> descriptions -> WebDataset shards, resumable, local or Ray."""

from __future__ import annotations

import argparse
import sys

from focusclip.cli._args import (
    Subparsers,
    add_describer_options,
    add_detector_options,
    describer_kwargs,
    detector_options,
    positive_float,
    positive_int,
)


def add_parser(dsub: Subparsers) -> argparse.ArgumentParser:
    p = dsub.add_parser(
        "build", help="photos -> people -> descriptions -> shards in one resumable pass (local or Ray)",
        description="Detect the people in every photo of INPUTS (photo files, folders, .txt/.lst lists of paths, "
        "or WebDataset .tar shards), describe them (rules offline, or an OpenAI-compatible endpoint) and write "
        "WebDataset shards with an index into --out/shards (train with data.format=shards), one partition "
        "per shard. Rerun the same command to continue a killed or unfinished build: finished partitions "
        "are kept, a partition cut short resumes its detections and paid descriptions.")
    p.add_argument("inputs", nargs="+", help="photo files or folders, list files (.txt/.lst), or .tar shards")
    p.add_argument("--out", required=True, help="the build's folder (new, empty, or an earlier build to continue)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this machine's processes (default); ray: Ray Data on --address or a local instance")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="processes (local) or Ray actors, each with its own detector (default 1)")
    p.add_argument("--partition-size", type=positive_int, default=1000,
                   help="photos per partition = per shard; the unit of resumption (default: %(default)s)")
    p.add_argument("--address", help="ray: a running cluster's address (e.g. auto, ray://head:10001); "
                   "default: start a local instance with --workers CPUs")
    p.add_argument("--gpus-per-worker", type=positive_float, default=None,
                   help="ray: GPUs per detector actor (a GPU detector); default none")
    p.add_argument("--detector", choices=["mediapipe", "rtmo"], default="mediapipe",
                   help="mediapipe: offline (default); rtmo: needs --detector-weights")
    add_detector_options(p)
    add_describer_options(p, concurrency=8, backend="rules")
    return p


def run(args: argparse.Namespace) -> int:
    from focusclip.pipeline import BuildSpec, DescriberSpec, build_dataset, check_build_args

    check_build_args(args.inputs, args.out, args.engine, args.workers, args.concurrency, args.partition_size)
    spec = BuildSpec(out=args.out, detector=args.detector,
                     detector_options=detector_options(args.detector, args),
                     describer=DescriberSpec(args.backend, describer_kwargs(args)))
    try:
        summary = build_dataset(args.inputs, args.out, spec, engine=args.engine, workers=args.workers,
                                concurrency=args.concurrency, partition_size=args.partition_size,
                                address=args.address, gpus_per_worker=args.gpus_per_worker or 0.0)
    except KeyboardInterrupt:
        print(f"interrupted; finished partitions are in {args.out}; rerun the same command to continue",
              file=sys.stderr)
        return 130
    print(summary.format(args.out))
    if not summary.complete:
        print(f"{len(summary.waiting)} partitions are not finished (records without a description); rerun the "
              "same command to retry them", file=sys.stderr)
        return 1
    print(f"train with: data.format=shards data.train={args.out}/shards")
    return 0

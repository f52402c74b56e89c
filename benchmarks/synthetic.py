"""Benchmark: rendering speed of the built-in synthetic world (images/s with 1 and more workers).

    python benchmarks/synthetic.py                      # 240 images at 224 px, 1 and 2 workers
    python benchmarks/synthetic.py --n 2400 --markdown  # block for benchmarks/RESULTS.md

The output does not depend on the worker count (each image has its own generator); this checks that the
two runs wrote identical records and reports images/s for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402  (also puts src/ on sys.path for a checkout)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=240, help="training images per run (eval images: n/5)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    C.configure_logging()

    from focusclip.data.records import read_records
    from focusclip.data.synthetic import generate_world

    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for w in (int(x) for x in args.workers.split(",")):
            out = Path(tmp) / f"w{w}"
            t0 = time.perf_counter()
            info = generate_world(out, n=args.n, seed=0, image_size=args.size, workers=w, show_progress=False)
            seconds = time.perf_counter() - t0
            total = info["train"] + info["val"] + info["eval"]
            rows.append({"workers": w, "images": total, "seconds": seconds, "images_per_s": total / seconds})
            records.append(read_records(out / "train.jsonl"))
    identical = all(r == records[0] for r in records)
    result = {"machine": C.machine_description(), "command": C.command_line("synthetic.py", argv),
              "date": C.now_utc(), "size": args.size, "rows": rows, "identical_across_workers": identical}
    table = C.markdown_table(["workers", "images", "seconds", "images/s"],
                             [[r["workers"], r["images"], r["seconds"], r["images_per_s"]] for r in rows])
    if args.markdown:
        print(f"`{result['command']}` ({C.machine_line(result['machine'])}, {result['date']})\n")
    print(table)
    print(f"identical output across worker counts: {identical}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["identical_across_workers"] else 1)

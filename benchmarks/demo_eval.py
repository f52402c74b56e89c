"""The demo's zero-shot evaluation (three synthetic tasks on the same held-out images) with and without
the evaluation caches, on a saved model and a demo's data folder.

- ``no cache``: every task decodes, resizes and encodes every image (the pipeline before issue 15);
- ``first``: a fresh :class:`~focusclip.zeroshot.image_cache.EvalImageCache`: each image decoded once and
  encoded once for the three tasks;
- ``repeat``: the same cache again, as for the demo's second model: no decoding.

The three runs alternate ``--repeats`` times; the fastest of each is reported, with the accuracies (they
must be equal).

    PYTHONPATH=src python benchmarks/demo_eval.py --model runs/demo/runs/clip-seed0/model-final --data runs/demo/data
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

TASKS = ("synth-activity", "synth-age", "synth-expression")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="saved model directory")
    ap.add_argument("--data", required=True, help="the demo's data folder (synthetic dataset)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    C.configure_logging()
    import focusclip
    from focusclip.zeroshot.evaluate import evaluate
    from focusclip.zeroshot.image_cache import EvalImageCache
    from focusclip.zeroshot.tasks import resolve_tasks

    model = focusclip.load_model(args.model)
    tok = focusclip.get_tokenizer(args.model)
    tf = focusclip.eval_transform(model)
    tasks = resolve_tasks(list(TASKS))
    shared = EvalImageCache()
    runs = {"no cache": lambda: evaluate(model, tok, lambda im: tf(im), tasks, {"synthetic": args.data},
                                         workers=args.workers, device="cpu"),
            "first": lambda: evaluate(model, tok, tf, tasks, {"synthetic": args.data}, workers=args.workers,
                                      device="cpu", image_cache=EvalImageCache()),
            "repeat": lambda: evaluate(model, tok, tf, tasks, {"synthetic": args.data}, workers=args.workers,
                                       device="cpu", image_cache=shared)}
    evaluate(model, tok, tf, tasks, {"synthetic": args.data}, workers=args.workers, device="cpu",
             image_cache=shared)  # fills the shared cache (and warms up)
    times: dict[str, float] = {}
    accs: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            res = fn()
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - t)
            accs[name] = {e["task"]: e["metrics"]["acc"] for e in res["results"].values()}
    result = {"date": C.now_utc(), "command": C.command_line("demo_eval.py", argv),
              "machine": C.machine_line(C.machine_description("cpu")), "load_after": C.load_average(),
              "seconds": {k: round(v, 2) for k, v in times.items()},
              "speedup_first": round(times["no cache"] / times["first"], 2),
              "speedup_repeat": round(times["no cache"] / times["repeat"], 2),
              "same_accuracy": all(a == accs["no cache"] for a in accs.values()), "acc": accs["no cache"]}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

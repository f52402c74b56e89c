"""Helpers shared by the benchmarks: machine description, timing (warm-up + median), memory, markdown.

The benchmarks are scripts (``python benchmarks/<name>.py``), not part of the library; each has
``main(argv=None) -> dict`` so tests can call it. Importing this module puts ``src/`` on ``sys.path``
when focusclip is not installed, so the scripts run from a plain checkout.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def ensure_src_on_path() -> None:
    """Make ``import focusclip`` work from a checkout that is not pip-installed."""
    if importlib.util.find_spec("focusclip") is None:
        sys.path.insert(0, str(ROOT / "src"))


ensure_src_on_path()


# ------------------------------------------------------------------------------------ machine
def nproc() -> int:
    """CPUs this process may use, like ``nproc``."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_description(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on: CPUs, threads, library versions and, on CUDA, the GPU."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(), "nproc": nproc(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(terse=True), "load_avg_1m": load_average(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(idx)
        info.update(gpu=torch.cuda.get_device_name(idx), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


def load_average() -> float | None:
    """The 1-minute load average (other jobs on a shared machine slow every number down)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine_line(info: dict[str, Any]) -> str:
    """One markdown-friendly line from :func:`machine_description`."""
    parts = []
    if "gpu" in info:
        parts.append(f"{info['gpu']} ({info['gpu_memory_gib']} GiB), CUDA {info['cuda']}")
    parts.append(f"{info['nproc']} CPUs (nproc), {info['cpu']}; torch threads {info['torch_threads']}")
    parts.append(f"torch {info['torch']}, numpy {info['numpy']}, Python {info['python']}")
    if info.get("load_avg_1m") is not None:
        parts.append(f"1-min load average at start {info['load_avg_1m']}")
    return "; ".join(parts)


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"benchmarks/{script}", *args])


def parse_args(parser: Any, argv: Sequence[str] | None) -> Any:
    """``parser``'s arguments from ``argv``, with ``argv`` itself kept as ``args.argv`` (a result records the
    command line that measured it, :func:`command_line`)."""
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def configure_logging(*, silence_truncation: bool = False) -> None:
    """Warnings and up to stderr; ``silence_truncation`` hides the tokenizer's truncation warnings
    (focusclip-tiny's 128-token limit truncates long descriptions on every batch)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if silence_truncation:
        logging.getLogger("focusclip.model.tokenizer").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------------- timing
def synchronizer(device: Any) -> Callable[[], None]:
    """A function that waits for queued work on ``device`` (a no-op on CPU)."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def time_fn(fn: Callable[[], Any], warmup: int, repeats: int,
            sync: Callable[[], None] | None = None) -> dict[str, Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; seconds per call.

    Returns ``{"median_s", "min_s", "max_s", "times_s", "result"}`` (``result`` of the last call).
    ``sync`` is called before starting and after each call, so asynchronous devices are timed fully.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = sync or (lambda: None)
    result = None
    for _ in range(max(0, warmup)):
        result = fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "times_s": times, "result": result}


# ------------------------------------------------------------------------------------- memory
def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; falls back to the high-water mark)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """High-water resident set size of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


# ---------------------------------------------------------------------------------- subprocess
RESULT_PREFIX = "BENCH_RESULT "


def emit_result(result: dict[str, Any]) -> None:
    """Print a worker's result as one tagged JSON line (read back by :func:`run_worker`)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(script: Path, argv: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python script argv`` in a fresh interpreter and return the dict it emitted."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"benchmark worker {script.name} {' '.join(argv)} failed (exit {proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")


# ------------------------------------------------------------------------------------ markdown
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; ``align`` per column is "l" or "r" (numbers default to right)."""
    if align is None:
        align = ["l"] + ["r"] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers with ``digits`` significant digits (no exponent for everyday sizes), others as str."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 10 ** digits:
        return f"{value:.0f}"
    if a >= 1e-3:
        decimals = max(0, digits - 1 - int(f"{a:e}".split("e")[1]))
        return f"{value:.{decimals}f}"
    return f"{value:.1e}"


def text_stats(lengths: Sequence[int]) -> dict[str, float]:
    """min / median / mean / max of a list of lengths."""
    return {"min": min(lengths), "median": statistics.median(lengths),
            "mean": round(statistics.fmean(lengths), 1), "max": max(lengths)}

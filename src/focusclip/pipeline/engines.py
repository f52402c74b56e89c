"""Where the partitions of a build run. Each engine yields a :class:`PartitionResult` per partition as it
finishes (in any order) and runs the same :func:`build_partition` everywhere.

* ``local``: this machine. ``workers=1`` in this process; more in that many processes, each with its own
  detector. A worker process that dies (killed, out of memory) is replaced and its partition given to
  another; workers end with the driver (:func:`focusclip.processes.end_with_parent`).
* ``ray``: Ray Data on a running cluster (``address``) or a local Ray instance: the partitions are a
  dataset streamed through ``map_batches`` to a pool of actors, each holding a detector (on a CPU or,
  with ``gpus_per_worker``, a GPU). Ray restarts an actor that dies and retries its partition.

Description requests are limited across all workers by one :class:`~focusclip.pipeline.limit.LeaseLimiter`
(a manager process here, an actor on Ray).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
from collections.abc import Iterator, Sequence
from multiprocessing.managers import BaseManager
from typing import Any

from focusclip.errors import RunError, UsageError
from focusclip.pipeline.limit import LeaseLimiter, LimitedDescriber
from focusclip.pipeline.partition import BuildSpec, PartitionResult, build_partition
from focusclip.pipeline.plan import Partition
from focusclip.processes import end_with_parent

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")


#: a description slot held by a worker that stopped renewing it (killed) is free again after this long
LEASE_SECONDS = 30.0


class _Worker:
    """A detector and a describer for one process or actor, closed with it."""

    def __init__(self, spec: BuildSpec, limiter: Any):
        self.spec = spec
        self.detector = spec.create_detector()
        self.describer = LimitedDescriber(spec.describer.create(), limiter, renew_every=LEASE_SECONDS / 3)

    def build(self, part: Partition) -> PartitionResult:
        return build_partition(self.spec, part, self.detector, self.describer)

    def close(self) -> None:
        for thing in (self.detector, self.describer):
            with contextlib.suppress(Exception):
                thing.close()


def error_line(error: BaseException) -> str:
    """What a worker reports of an error it hit: its type and message, one line (no traceback)."""
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")


def partition_failed(index: int, line: str) -> RunError:
    """The driver's error for a partition whose worker failed (every engine's): the build stops; finished
    partitions stay, and a rerun resumes."""
    return RunError(f"partition {index}: {line}")


# --------------------------------------------------------------------------------------- local
class _LimiterManager(BaseManager):
    pass


_LimiterManager.register("LeaseLimiter", LeaseLimiter)


def _local_worker(spec: BuildSpec, limiter: Any, tasks: Any, results: Any) -> None:
    end_with_parent()
    worker = _Worker(spec, limiter)
    try:
        for part in iter(tasks.get, None):
            results.put(("start", part.index, os.getpid()))
            try:
                results.put(("done", part.index, worker.build(part).to_dict()))
            except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the build
                results.put(("error", part.index, error_line(e)))
    finally:
        worker.close()


def run_local(spec: BuildSpec, parts: Sequence[Partition], workers: int = 1, concurrency: int = 1
              ) -> Iterator[PartitionResult]:
    """Partitions on this machine: here (``workers=1``) or in ``workers`` processes (module docstring)."""
    if workers <= 1:
        worker = _Worker(spec, LeaseLimiter(concurrency, LEASE_SECONDS))
        try:
            for part in parts:
                yield worker.build(part)
        finally:
            worker.close()
        return
    yield from _run_processes(spec, parts, workers, concurrency)


def _run_processes(spec: BuildSpec, parts: Sequence[Partition], workers: int, concurrency: int
                   ) -> Iterator[PartitionResult]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    manager = _LimiterManager(ctx=ctx)
    manager.start(end_with_parent)  # the limiter's server process ends with the driver too
    try:
        limiter = manager.LeaseLimiter(concurrency, LEASE_SECONDS)
        tasks, results = ctx.Queue(), ctx.Queue()
        by_index = {p.index: p for p in parts}

        def start() -> Any:
            proc = ctx.Process(target=_local_worker, args=(spec, limiter, tasks, results), daemon=True)
            proc.start()
            return proc

        procs = [start() for _ in range(min(workers, len(parts)))]
        for part in parts:
            tasks.put(part)
        holding: dict[int, int] = {}  # pid -> partition index
        left = set(by_index)
        try:
            while left:
                try:
                    kind, index, payload = results.get(timeout=1.0)
                except queue.Empty:
                    procs = _replace_dead(procs, holding, by_index, tasks, start, limiter)
                    continue
                if kind == "start":
                    holding[payload] = index
                elif kind == "error":
                    raise partition_failed(index, payload)
                else:
                    holding = {pid: i for pid, i in holding.items() if i != index}
                    left.discard(index)
                    yield PartitionResult.from_dict(payload)
        finally:
            for _ in procs:
                tasks.put(None)
            for proc in procs:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
    finally:
        manager.shutdown()


def _replace_dead(procs: list, holding: dict[int, int], by_index: dict[int, Partition], tasks: Any,
                  start: Any, limiter: Any) -> list:
    """Workers that died are replaced; the partition each held goes back to the queue (its work folder
    lets the next worker resume it)."""
    alive = []
    for proc in procs:
        if proc.is_alive():
            alive.append(proc)
            continue
        lost = holding.pop(proc.pid, None)
        limiter.release_holder(proc.pid)  # its description slots, at once
        logger.warning("worker %s died (exit code %s)%s; starting another", proc.pid, proc.exitcode,
                       f", partition {lost} goes back to the queue" if lost is not None else "")
        if lost is not None:
            tasks.put(by_index[lost])
        alive.append(start())
    return alive


# ----------------------------------------------------------------------------------------- ray
def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is what the engine uses
    except ImportError as e:
        raise UsageError(f"--engine ray needs Ray Data: pip install 'focusclip[ray]' ({e})") from e
    return ray


class _RayPartitions:
    """The Ray Data actor: one worker (detector + describer) per actor, partitions as one-row batches."""

    def __init__(self, spec: BuildSpec, limiter: Any):
        self.spec, self.limiter = spec, limiter
        self.worker: _Worker | None = None  # made on the first partition, so its errors are reported too

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Each partition's result, or its error as one line (the driver stops the build, as ``run_local``
        does: Ray's own report of an exception in an actor is a long traceback)."""
        import numpy as np

        out = []
        for text in batch["partition"]:
            d = json.loads(str(text))
            try:
                if self.worker is None:
                    self.worker = _Worker(self.spec, _RayLimiterClient(self.limiter))
                done = self.worker.build(Partition(d["index"], d["first"], tuple(d["photos"])))
                out.append(json.dumps({"done": done.to_dict()}))
            except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the build
                out.append(json.dumps({"error": error_line(e), "index": d["index"]}))
        return {"result": np.array(out, dtype=object)}


class _RayLimiterClient:
    def __init__(self, actor: Any):
        self.actor = actor

    def acquire(self, holder: int | None = None) -> int:
        return _ray().get(self.actor.acquire.remote(holder))

    def release(self, lease: int) -> None:
        self.actor.release.remote(lease)

    def renew(self, leases: list[int]) -> None:
        self.actor.renew.remote(leases)


def ray_result(text: str) -> PartitionResult:
    """A partition's result as an actor of :func:`run_ray` returned it; its error, raised as the driver's."""
    result = json.loads(text)
    if "error" in result:
        raise partition_failed(result["index"], result["error"])
    return PartitionResult.from_dict(result["done"])


def run_ray(spec: BuildSpec, parts: Sequence[Partition], workers: int = 1, concurrency: int = 1,
            address: str | None = None, gpus_per_worker: float = 0.0) -> Iterator[PartitionResult]:
    """Partitions through Ray Data (module docstring); ``address`` of a running cluster (``auto`` finds
    the local node's), or None for a local instance with ``workers`` CPUs."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        limiter = ray.remote(num_cpus=0, max_concurrency=max(64, 4 * concurrency))(LeaseLimiter).remote(
            concurrency, LEASE_SECONDS)
        rows = [{"partition": json.dumps({"index": p.index, "first": p.first, "photos": list(p.photos)})}
                for p in parts]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
        ds = ds.map_batches(_RayPartitions, batch_size=1, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                            num_cpus=1, num_gpus=gpus_per_worker or None,
                            fn_constructor_kwargs={"spec": spec, "limiter": limiter})
        for row in ds.iter_rows():
            yield ray_result(str(row["result"]))
    finally:
        if started:
            ray.shutdown()

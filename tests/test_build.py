"""`focusclip data build`: photos -> people -> descriptions -> shards in one resumable pass, on the local
engine and on a local Ray instance, against the separate verbs; kills of the driver and of a worker, and
an LLM endpoint that fails some requests (a local fake server, 127.0.0.1 only)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

pytest.importorskip("mediapipe")

from fake_llm import FakeLLM  # noqa: E402
from focusclip.data.shards import read_index, write_shards  # noqa: E402
from focusclip.describe import RulesDescriber, describe_records, merge_captions  # noqa: E402
from focusclip.detect import create_detector  # noqa: E402
from focusclip.detect.run import detect_images  # noqa: E402
from focusclip.errors import UsageError  # noqa: E402
from focusclip.pipeline import BuildSpec, DescriberSpec, PlanError, build_dataset  # noqa: E402
from focusclip.pipeline.limit import LeaseLimiter  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


def _portraits() -> list[Image.Image]:
    from matplotlib import cbook

    out = [Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")]
    try:
        import skimage.data

        out.append(Image.fromarray(skimage.data.astronaut()))
    except ImportError:
        pass
    return out


def write_photos(folder: Path, n: int = 8) -> list[Path]:
    """``n`` real photos of one person each (the packaged portraits, mirrored and scaled)."""
    folder.mkdir(parents=True, exist_ok=True)
    portraits = _portraits()
    paths = []
    for i in range(n):
        im = portraits[i % len(portraits)]
        if i // len(portraits) % 2:
            im = ImageOps.mirror(im)
        scale = 0.6 + 0.1 * (i % 4)
        im = im.resize((int(im.width * scale), int(im.height * scale)))
        path = folder / f"photo_{i:02d}.{'png' if i % 3 == 0 else 'jpg'}"
        im.save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_photos(folder, 8)
    return folder


@pytest.fixture(scope="module")
def local_build(photos, tmp_path_factory) -> tuple[Path, object]:
    """The photos built once on the local engine (rules texts, partitions of 3): (folder, summary)."""
    built = tmp_path_factory.mktemp("local") / "built"
    return built, build_dataset([photos], built, rules_spec(), partition_size=3)


def shard_samples(folder: Path) -> dict[str, dict[str, bytes]]:
    """key -> {extension: bytes} of every sample of a shard folder (its index must be complete)."""
    index = read_index(folder)
    out: dict[str, dict[str, bytes]] = {}
    for entry in index["shards"]:
        with tarfile.open(folder / entry["file"]) as tar:
            for m in tar.getmembers():
                key, ext = m.name.split(".", 1)
                out.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return out


def comparable(samples: dict[str, dict[str, bytes]], texts: bool = True) -> dict[str, dict]:
    """The samples with each record's image path dropped (it is relative to where its records file was);
    without their texts when ``texts`` is false (another describer)."""
    out = {}
    for key, members in samples.items():
        record = json.loads(members["json"])
        record.pop("image")
        if not texts:
            record.pop("captions")
        out[key] = {"record": record, "txt": members["txt"] if texts else None,
                    "image": {k: v for k, v in members.items() if k not in ("json", "txt")}}
    return out


def rules_spec() -> BuildSpec:
    return BuildSpec(out="", describer=DescriberSpec("rules"))


def test_build_equals_the_separate_verbs_and_resumes_to_the_same_result(photos, local_build, tmp_path):
    built, summary = local_build
    assert summary.complete and summary.total == 3 and summary.photos == 8 and summary.samples == 8
    assert summary.people == 8 and summary.bad_photos == 0

    # the separate verbs on the same photos: detect, describe (rules) + merge, shards without shuffling
    detector = create_detector("mediapipe")
    try:
        detect_images([photos], tmp_path / "detected.jsonl", detector)
    finally:
        detector.close()
    from focusclip.data.records import read_records

    describe_records(read_records(tmp_path / "detected.jsonl"), tmp_path / "texts.jsonl", RulesDescriber())
    merge_captions(tmp_path / "detected.jsonl", tmp_path / "texts.jsonl", tmp_path / "captioned.jsonl")
    write_shards(tmp_path / "captioned.jsonl", tmp_path / "verbs", shard_size=3, shuffle=False)

    ours, theirs = shard_samples(built / "shards"), shard_samples(tmp_path / "verbs")
    assert sorted(ours) == sorted(theirs) == [f"{i:09d}" for i in range(8)]
    assert comparable(ours) == comparable(theirs)
    assert [e["samples"] for e in read_index(built / "shards")["shards"]] == [3, 3, 2]
    # records: one file per partition, captions set, images resolvable from the records folder
    records = [json.loads(line) for f in sorted((built / "records").glob("part-*.jsonl"))
               for line in f.read_text().splitlines()]
    assert len(records) == 8 and all(len(r["captions"]) == 1 for r in records)
    assert all((built / "records" / r["image"]).is_file() for r in records)
    assert not any((built / "work").iterdir())  # every partition finished: no work left behind
    # a rerun with the same arguments does nothing and reports the same
    again = build_dataset([photos], built, rules_spec(), partition_size=3)
    assert again.finished_now == 0 and again.samples == 8 and again.complete


def test_bad_and_empty_photos_are_counted_never_fatal(tmp_path):
    folder = tmp_path / "in"
    write_photos(folder, 2)
    (folder / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(np.full((120, 160, 3), 127, np.uint8)).save(folder / "grey.png")
    built = tmp_path / "built"
    summary = build_dataset([folder], built, rules_spec(), partition_size=2)
    assert summary.complete and summary.photos == 4 and summary.samples == 2
    assert summary.bad_photos == 1 and summary.no_person == 1
    errors = [json.loads(line) for f in (built / "errors").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert [Path(e["photo"]).name for e in errors] == ["broken.jpg"] and "Error" in errors[0]["error"]


def test_list_files_and_tar_shards_as_inputs(photos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# two photos\n" + "".join(f"{p}\n" for p in sorted(photos.iterdir())[:2]))
    tar_path = tmp_path / "in.tar"
    with tarfile.open(tar_path, "w") as tar:
        for p in sorted(photos.iterdir())[2:4]:
            tar.add(p, arcname=f"{p.stem}.{p.suffix[1:]}")
        info = tarfile.TarInfo("000.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))  # not a photo: ignored
    summary = build_dataset([listing, tar_path], tmp_path / "built", rules_spec(), partition_size=4)
    assert summary.photos == 4 and summary.samples == 4
    assert len(list((tmp_path / "built" / "photos").rglob("*.*"))) == 2  # the tar's photos, extracted


def test_changed_settings_overlapping_folders_and_bad_counts_are_refused(photos, tmp_path):
    built = tmp_path / "built"
    write_photos(tmp_path / "few", 1)
    build_dataset([tmp_path / "few"], built, rules_spec(), partition_size=2)
    with pytest.raises(PlanError, match="partition_size: 2 -> 3"):
        build_dataset([tmp_path / "few"], built, rules_spec(), partition_size=3)
    with pytest.raises(UsageError, match="overlap"):
        build_dataset([photos], photos / "out", rules_spec())
    with pytest.raises(UsageError, match="workers must be at least 1"):
        build_dataset([photos], tmp_path / "x", rules_spec(), workers=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "someone.txt").write_text("theirs")
    with pytest.raises(PlanError, match="not empty"):
        build_dataset([photos], tmp_path / "full", rules_spec())


def test_lease_limiter_bounds_requests_and_takes_back_lost_leases():
    limiter = LeaseLimiter(2, lease_seconds=0.3)
    peak, now, lock = [0], [0], threading.Lock()

    def work() -> None:
        lease = limiter.acquire()
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        limiter.release(lease)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    alive = limiter.acquire()
    limiter.acquire()  # both slots held; the second by a "dead" worker that never renews nor returns it
    start = time.monotonic()
    for _ in range(4):  # the live holder renews its lease while its request runs
        time.sleep(0.1)
        limiter.renew([alive])
    assert limiter.in_flight() == 1  # the dead holder's lease expired, the renewed one did not
    limiter.acquire()
    assert time.monotonic() - start >= 0.3
    # a holder the driver saw die gives its leases back at once
    limiter = LeaseLimiter(2, lease_seconds=60)
    limiter.acquire(holder=111)
    limiter.acquire(holder=111)
    assert limiter.release_holder(111) == 2 and limiter.in_flight() == 0


def _openai_spec(llm: FakeLLM, retries: int = 0) -> BuildSpec:
    return BuildSpec(out="", describer=DescriberSpec("openai", {"model": "test-model", "base_url": llm.url,
                                                               "max_retries": retries, "retry_base_delay": 0.01,
                                                               "timeout": 10}))


def test_llm_failures_leave_partitions_waiting_and_a_rerun_pays_only_for_what_failed(photos, tmp_path):
    failing = {"on": True}
    keys: list[str] = []

    def plan(key: str, attempt: int) -> tuple:
        if key not in keys:
            keys.append(key)
        return ("500",) if failing["on"] and keys.index(key) % 3 == 1 else ("ok",)

    llm = FakeLLM(plan, delay=0.05)
    llm.thread.start()
    try:
        built = tmp_path / "built"
        first = build_dataset([photos], built, _openai_spec(llm), partition_size=4, concurrency=3)
        assert not first.complete and first.waiting and first.failed_descriptions >= 1
        assert not read_index_or_none(built / "shards").get("complete")
        waiting = set(first.waiting)
        assert all(not (built / "done" / f"part-{i:06d}.json").exists() for i in waiting)
        n_first = len(llm.requests)
        failing["on"] = False
        second = build_dataset([photos], built, _openai_spec(llm), partition_size=4, concurrency=3)
        assert second.complete and second.samples == 8
        # only the records that failed were asked again
        assert len(llm.requests) - n_first == first.failed_descriptions
        texts = [s["txt"].decode() for s in shard_samples(built / "shards").values()]
        assert len(texts) == 8 and all(t.startswith("There are 1 people") for t in texts)
    finally:
        llm.server.shutdown()
        llm.server.server_close()


def read_index_or_none(folder: Path) -> dict:
    path = folder / "index.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_requests_in_flight_never_exceed_the_concurrency_over_all_workers(photos, tmp_path):
    inflight, peak, lock = [0], [0], threading.Lock()

    def plan(key: str, attempt: int) -> tuple:
        with lock:
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])
        time.sleep(0.2)
        with lock:
            inflight[0] -= 1
        return ("ok",)

    llm = FakeLLM(plan)
    llm.thread.start()
    try:
        spec = _openai_spec(llm)
        spec = BuildSpec(out="", describer=spec.describer, concurrency=4)  # each worker would send 4
        summary = build_dataset([photos], tmp_path / "built", spec, partition_size=2, workers=2, concurrency=2)
        assert summary.complete and peak[0] == 2
    finally:
        llm.server.shutdown()
        llm.server.server_close()


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "focusclip.cli", "data", "build", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 240.0) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.slow
def test_driver_killed_then_rerun_finishes_every_photo_exactly_once(photos, local_build, tmp_path):
    built = tmp_path / "built"
    proc = _cli(str(photos), "--out", str(built), "--partition-size", "2", "--workers", "2")
    try:
        _wait_for(lambda: len(list((built / "done").glob("*.json"))) >= 1 if (built / "done").is_dir() else False)
        children = _children(proc.pid)  # the workers and the limiter's server process
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list((built / "done").glob("*.json"))) < 4
    assert len(children) >= 3
    _wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in children), timeout=15)  # they end with it
    rerun = _cli(str(photos), "--out", str(built), "--partition-size", "2", "--workers", "2")
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    samples = shard_samples(built / "shards")
    assert sorted(samples) == [f"{i:09d}" for i in range(8)]
    assert comparable(samples) == comparable(shard_samples(local_build[0] / "shards"))


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(stat.parent.name))
    return out


def _kill_a_worker_mid_partition(built: Path) -> int:
    """SIGKILL the first process (not this one) that holds a partition's descriptions file open: a worker
    in the middle of describing its partition. Returns its pid."""
    work = str((built / "work").resolve())
    me = os.getpid()

    def holder() -> int | None:
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            pid = int(fd_dir.parent.name)
            if pid == me:
                continue
            try:
                targets = [os.readlink(fd) for fd in fd_dir.iterdir()]
            except OSError:
                continue
            if any(t.startswith(work) and t.endswith("descriptions.jsonl") for t in targets):
                return pid
        return None

    found: list[int] = []
    _wait_for(lambda: found.append(holder() or 0) or found[-1] > 0)
    os.kill(found[-1], signal.SIGKILL)
    return found[-1]


def _slow_llm() -> FakeLLM:
    llm = FakeLLM(lambda key, attempt: ("ok",), delay=0.4)  # slow texts: the kill lands mid-partition
    llm.thread.start()
    return llm


def _stop(llm: FakeLLM) -> None:
    llm.server.shutdown()
    llm.server.server_close()


def _check_complete(built: Path) -> None:
    samples = shard_samples(built / "shards")
    assert sorted(samples) == [f"{i:09d}" for i in range(8)]
    assert all(s["txt"].decode().startswith("There are 1 people") for s in samples.values())
    records = [line for f in (built / "records").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert len(records) == 8


@pytest.mark.slow
def test_a_local_worker_killed_mid_partition_is_replaced_and_nothing_is_lost(photos, tmp_path):
    llm = _slow_llm()
    built = tmp_path / "built"
    try:
        proc = _cli(str(photos), "--out", str(built), "--partition-size", "4", "--workers", "2",
                    "--backend", "openai", "--base-url", llm.url, "--model", "m", "--concurrency", "2")
        _kill_a_worker_mid_partition(built)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "died" in err
        _check_complete(built)
    finally:
        _stop(llm)


def test_a_partition_that_fails_in_a_ray_actor_comes_back_as_one_line(photos, tmp_path):
    """Ray reports an exception raised in an actor as a page of traceback; the actor returns the error as
    one line instead, and the driver raises the local engine's error for it."""
    from focusclip.errors import RunError
    from focusclip.pipeline.engines import _RayPartitions, ray_result
    from focusclip.pipeline.partition import part_name

    out = tmp_path / "built"
    (out / "work").mkdir(parents=True)
    (out / "work" / part_name(0)).write_text("in the way")  # the partition's work folder cannot be made
    actor = _RayPartitions(BuildSpec(out=str(out)), limiter=None)
    row = {"index": 0, "first": 0, "photos": [str(p) for p in sorted(photos.iterdir())[:2]]}
    text = str(actor({"partition": np.array([json.dumps(row)], dtype=object)})["result"][0])
    result = json.loads(text)
    assert result == {"index": 0, "error": result["error"]} and result["error"].startswith("FileExistsError: ")
    assert "\n" not in result["error"] and "Traceback" not in result["error"]
    with pytest.raises(RunError, match=r"^partition 0: FileExistsError: ") as info:  # what the driver does with it
        ray_result(text)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_ray_worker_killed_mid_partition_is_restarted_and_nothing_is_lost(photos, local_build, tmp_path):
    """Also: the Ray engine gives the local engine's samples (the same code per partition; the texts here
    are the fake LLM's, so they are compared on their own)."""
    pytest.importorskip("ray.data")
    llm = _slow_llm()
    built = tmp_path / "built"
    spec = BuildSpec(out="", describer=_openai_spec(llm).describer)
    result: dict = {}
    try:
        runner = threading.Thread(target=lambda: result.update(summary=build_dataset(
            [photos], built, spec, partition_size=4, engine="ray", workers=2, concurrency=2)))
        runner.start()
        _kill_a_worker_mid_partition(built)
        runner.join(timeout=600)
        assert result["summary"].complete
        _check_complete(built)
        assert comparable(shard_samples(built / "shards"), texts=False) == \
            comparable(shard_samples(local_build[0] / "shards"), texts=False)
    finally:
        _stop(llm)

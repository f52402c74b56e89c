"""The openai backend over real HTTP: a local OpenAI-compatible server injects 429 / 500 / timeouts /
4xx for chosen records and attempts and records every request; the real ``openai`` client talks to it."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openai")

from fake_llm import FakeLLM  # noqa: E402
from focusclip.cli import main  # noqa: E402
from focusclip.describe import (  # noqa: E402
    PROMPT_VERSION,
    OpenAIDescriber,
    RetryPolicy,
    describe_records,
    read_descriptions,
)
from focusclip.io import read_jsonl  # noqa: E402
from focusclip.skeleton import MPII_JOINT_NAMES  # noqa: E402

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c21e5"
SRC = Path(__file__).resolve().parents[1] / "src"

@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def make_record(i: int, invisible: tuple[int, ...] = ()) -> dict:
    joints = [[200 + 5 * j, 100 + 10 * j] for j in range(16)]
    visible = [0 if j in invisible else 1 for j in range(16)]
    for j in invisible:
        joints[j] = [-1, -1]
    return {
        "id": f"r{i:03d}", "image": f"images/{i:05d}.jpg", "video_id": 4242, "width": 640, "height": 480,
        "activity": {"id": 7, "name": "bicycling, mountain", "category": "bicycling"},
        "people": [{"center": [100 + i, 240.5], "scale": 2.25, "joints": joints, "visible": visible}],
    }


def describer(llm: FakeLLM, **kw: object) -> OpenAIDescriber:
    kw.setdefault("retry", RetryPolicy(max_retries=6, base_delay=0.01, max_delay=0.05))
    return OpenAIDescriber("test-model", base_url=llm.url, api_key=SECRET, **kw)


def test_exact_prompt_structure_over_http(llm: FakeLLM, tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    records = [make_record(1, invisible=(0, 5, 9)), make_record(2)]
    summary = describe_records(records, out, describer(llm), workers=2)
    assert (summary.described, summary.failed) == (2, 0)
    assert len(llm.requests) == 2
    req = next(r for r in llm.requests if r["key"] == "r001")
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.5 and body["max_tokens"] == 512 and body["frequency_penalty"] == 1.0
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    s = system["content"]
    assert "expert human activity and pose analyser" in s
    positions = [s.index(f"{i}. {name}") for i, name in enumerate(MPII_JOINT_NAMES)]
    assert positions == sorted(positions)  # the 16 joints, in MPII order
    assert "[-1, -1]" in s and "(x, y)" in s
    assert "There are [count in words] people in image who are [verb + activity]." in s
    assert "The [location of the person, from their centre and scale] person is [state] with their [limb]" in s
    for part in ("left leg", "right leg", "left arm", "right arm", "torso", "head"):
        assert part in s
    assert "gender-neutral" in s and "concise" in s.lower()
    payload = json.loads(user["content"])
    assert set(payload) == {"activity", "count", "people"}  # no image, video or record ids
    assert "image" not in user["content"] and "4242" not in user["content"] and "r001" not in user["content"]
    assert payload["activity"] == {"category": "bicycling", "name": "bicycling, mountain"}
    assert payload["count"] == 1
    person = payload["people"][0]
    assert person["center"] == [101, 240.5] and person["scale"] == 2.25
    assert len(person["keypoints"]) == 16
    assert person["keypoints"][0] == [-1, -1] and person["keypoints"][5] == [-1, -1]
    assert person["keypoints"][9] == [-1, -1] and person["keypoints"][1] == [205, 110]

    lines = {line["id"]: line for line in read_jsonl(out)}
    line = lines["r001"]
    assert line["description"] == "There are 1 people in image. Description of r001."
    assert line["image"] == "images/00001.jpg"
    assert line["backend"] == "openai" and line["model"] == "test-model"
    assert line["prompt_version"] == PROMPT_VERSION
    assert line["parameters"] == {"temperature": 0.5, "max_tokens": 512, "frequency_penalty": 1.0}
    assert line["usage"]["total_tokens"] == 18 and line["attempts"] == 1
    assert line["created"].startswith("20")


def test_retries_backoff_and_errors(llm: FakeLLM, tmp_path: Path) -> None:
    def plan(key: str, attempt: int) -> tuple:
        if key == "r001" and attempt == 0:
            return ("429", 0.3)  # honoured although the backoff base is 10 ms
        if key == "r002" and attempt < 2:
            return ("500",)
        if key == "r003" and attempt == 0:
            return ("sleep", 1.0)  # longer than the client timeout
        if key == "r004":
            return ("400",)  # not retried
        if key == "r005":
            return ("500",)  # retries exhausted
        return ("ok",)

    llm.plan = plan
    out = tmp_path / "d.jsonl"
    d = describer(llm, timeout=0.4, retry=RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05))
    summary = describe_records([make_record(i) for i in range(1, 7)], out, d, workers=3)
    assert (summary.described, summary.failed) == (4, 2)
    assert sorted(summary.failed_ids) == ["r004", "r005"]

    r1 = llm.requests_for("r001")
    assert len(r1) == 2 and r1[1]["time"] - r1[0]["time"] >= 0.28
    assert len(llm.requests_for("r002")) == 3
    assert len(llm.requests_for("r003")) == 2
    assert len(llm.requests_for("r004")) == 1
    assert len(llm.requests_for("r005")) == 4  # 1 + max_retries
    assert len(llm.requests_for("r006")) == 1

    ok, failed = read_descriptions(out)
    assert set(ok) == {"r001", "r002", "r003", "r006"}
    assert ok["r001"]["attempts"] == 2 and ok["r002"]["attempts"] == 3 and ok["r003"]["attempts"] == 2
    assert failed["r004"]["error"]["type"] == "BadRequestError"
    assert failed["r004"]["error"]["status"] == 400 and failed["r004"]["attempts"] == 1
    assert "bad request" in failed["r004"]["error"]["message"]
    assert failed["r005"]["error"]["status"] == 500 and failed["r005"]["attempts"] == 4
    assert failed["r005"]["id"] == "r005" and "description" not in failed["r005"]

    # A rerun retries only the failed records; successes are not requested again.
    llm.plan = lambda key, attempt: ("ok",)
    before = len(llm.requests)
    summary = describe_records([make_record(i) for i in range(1, 7)], out, d, workers=3)
    assert (summary.skipped, summary.described, summary.failed) == (4, 2, 0)
    assert sorted(r["key"] for r in llm.requests[before:]) == ["r004", "r005"]
    ok, failed = read_descriptions(out)
    assert set(ok) == {f"r{i:03d}" for i in range(1, 7)} and not failed
    successes = [x["id"] for x in read_jsonl(out) if "description" in x]
    assert sorted(successes) == sorted(set(successes))  # each record described once


def test_connection_error_is_retried_then_recorded(tmp_path: Path) -> None:
    # Nothing listens on this port (bind, read the port, close).
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    d = OpenAIDescriber("m", base_url=f"http://127.0.0.1:{port}/v1", api_key=SECRET, timeout=1.0,
                        retry=RetryPolicy(max_retries=2, base_delay=0.01), sleep=sleeps.append)
    outcome = d.describe(make_record(1))
    assert not outcome.ok and outcome.error_type == "APIConnectionError" and outcome.attempts == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9  # exponential backoff


def test_backoff_policy() -> None:
    import random

    rng = random.Random(0)
    p = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=5.0)
    for attempt, (lo, hi) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8)]):
        d = p.delay(attempt, None, rng)
        assert lo <= d <= hi
    assert p.delay(0, 2.5, rng) == 2.5 and p.delay(0, 60, rng) == 5.0


def test_api_key_never_logged_or_written(llm: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                         capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    llm.plan = lambda key, attempt: ("401-echo",) if key == "r002" else ("ok",)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(make_record(i)) + "\n" for i in (1, 2)))
    out = tmp_path / "d.jsonl"
    monkeypatch.setenv("MY_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    rc = main(["-v", "describe", str(records), "--out", str(out), "--backend", "openai", "--base-url", llm.url,
               "--model", "test-model", "--api-key-env", "MY_TEST_KEY", "--concurrency", "2",
               "--retry-base-delay", "0.01"])
    captured = capsys.readouterr()
    assert rc == 1  # one record failed
    assert all(r["auth"] == f"Bearer {SECRET}" for r in llm.requests)  # the key was used...
    text = out.read_text()
    assert SECRET not in text and SECRET not in caplog.text  # ...but never written or logged
    assert SECRET not in captured.out and SECRET not in captured.err
    _, failed = read_descriptions(out)
    assert failed["r002"]["error"]["status"] == 401 and "***" in failed["r002"]["error"]["message"]


def test_key_echoed_in_a_successful_completion_is_redacted(llm: FakeLLM, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    llm.plan = lambda key, attempt: ("ok-echo",)
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(make_record(1)) + "\n")
    monkeypatch.setenv("MY_TEST_KEY", SECRET)
    out, merged = tmp_path / "d.jsonl", tmp_path / "merged.jsonl"
    assert main(["describe", str(records), "--out", str(out), "--backend", "openai", "--base-url", llm.url,
                 "--api-key-env", "MY_TEST_KEY", "--records-out", str(merged)]) == 0
    assert SECRET not in out.read_text() and SECRET not in merged.read_text()
    assert "request header: Bearer ***" in out.read_text()


def test_a_refused_key_stops_after_the_first_record(llm: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    llm.plan = lambda key, attempt: ("401-echo",)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(make_record(i)) + "\n" for i in range(1, 7)))
    monkeypatch.setenv("MY_TEST_KEY", SECRET)
    rc = main(["describe", str(records), "--out", str(tmp_path / "d.jsonl"), "--backend", "openai",
               "--base-url", llm.url, "--api-key-env", "MY_TEST_KEY", "--concurrency", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "refused the request (HTTP 401" in err and "Traceback" not in err and SECRET not in err
    assert len(llm.requests) == 1  # not retried, and not tried again for the five other records


def test_missing_api_key_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(make_record(1)) + "\n")
    monkeypatch.delenv("NOPE_KEY", raising=False)
    rc = main(["describe", str(records), "--out", str(tmp_path / "d.jsonl"), "--backend", "openai",
               "--api-key-env", "NOPE_KEY"])
    assert rc == 2 and "NOPE_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "d.jsonl").exists()


@pytest.mark.slow
def test_cli_killed_mid_run_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    fake = FakeLLM(delay=0.15)
    fake.thread.start()
    try:
        n, workers = 30, 2
        records = tmp_path / "records.jsonl"
        records.write_text("".join(json.dumps(make_record(i)) + "\n" for i in range(n)))
        out = tmp_path / "d.jsonl"
        env = dict(os.environ, FOCUSCLIP_TEST_KEY=SECRET,
                   PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(SRC)])))
        cmd = [sys.executable, "-m", "focusclip.cli", "describe", str(records), "--out", str(out),
               "--backend", "openai", "--base-url", fake.url, "--model", "test-model",
               "--api-key-env", "FOCUSCLIP_TEST_KEY", "--concurrency", str(workers)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count("\n") >= 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the job finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        written = out.read_text().count("\n")
        assert 5 <= written < n
        with out.open("a") as f:  # as if the kill had torn a line in half
            f.write('{"id": "r007", "description": "torn')

        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
        lines = [json.loads(line) for line in out.read_text().splitlines()]  # every line parses
        ids = [line["id"] for line in lines if "description" in line]
        assert sorted(ids) == [f"r{i:03d}" for i in range(n)]  # all described, exactly once
        for line in lines:
            assert line["description"] == f"There are 1 people in image. Description of {line['id']}."
        # At most the requests in flight (or finished but not yet written) at the kill are redone.
        assert n <= len(fake.requests) <= n + 2 * workers
        assert SECRET not in out.read_text() and SECRET not in rerun.stderr
    finally:
        fake.server.shutdown()
        fake.server.server_close()

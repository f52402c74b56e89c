"""`focusclip serve`: who may use it (a secret from the environment), one error shape for every API
error, and the checks made when the server starts (port, device, CLIP names). Servers listen on
127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from focusclip.cli import main
from focusclip.errors import UsageError
from focusclip.serve.access import TOKEN_ENV, check_access, token_from_env, token_matches
from focusclip.serve.api import public_message
from focusclip.serve.app import ServeConfig, bind_socket
from serve_sites import FOCUS_ID, make_models_root, serving, write_photos

SECRET = "s3cret-Token-for-tests-only"
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_models_root(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"), n=1)


def _files(paths):
    return [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


# ------------------------------------------------------------------------------ access control
def test_a_host_other_than_loopback_needs_a_secret_or_open():
    with pytest.raises(UsageError, match=f"--host 0.0.0.0: anyone .* set {TOKEN_ENV} .* or pass --open"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="0.0.0.0", token=SECRET).token == SECRET
    assert ServeConfig(host="0.0.0.0", open=True).open
    assert ServeConfig(host="127.0.0.1").token is None  # loopback: nothing required
    with pytest.raises(UsageError, match="contradict"):
        check_access("0.0.0.0", SECRET, True)
    assert SECRET not in repr(ServeConfig(token=SECRET))


def test_the_secret_comes_from_the_environment_and_is_compared_in_constant_time(monkeypatch):
    import hmac

    assert token_from_env({}) is None and token_from_env({TOKEN_ENV: SECRET}) == SECRET
    with pytest.raises(UsageError, match="set but blank"):
        token_from_env({TOKEN_ENV: "  "})
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    assert token_matches(SECRET, SECRET) and not token_matches(SECRET[:-1], SECRET) and not token_matches(None, SECRET)
    assert token_matches(SECRET.encode(), SECRET) and not token_matches("ünïcode", SECRET)
    assert len(calls) == 4 and all(isinstance(a, bytes) for a, _ in calls)


def test_cli_host_needs_the_secret_or_open(monkeypatch, tmp_path, capsys):
    import focusclip.serve.app as app_module

    seen = []
    monkeypatch.setattr(app_module, "serve", seen.append)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["serve", "--models-root", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert f"set {TOKEN_ENV}" in err and "--open" in err and "Traceback" not in err and not seen
    assert main(["serve", "--models-root", str(tmp_path), "--host", "0.0.0.0", "--open"]) == 0
    assert seen[-1].open and seen[-1].token is None
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    assert main(["serve", "--models-root", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert seen[-1].token == SECRET and not seen[-1].open
    assert main(["serve", "--models-root", str(tmp_path)]) == 0 and seen[-1].token == SECRET  # loopback too
    assert SECRET not in capsys.readouterr().err


def test_with_a_secret_the_api_needs_the_bearer_token_and_the_page_its_login(root, photos, caplog):
    caplog.set_level(logging.DEBUG)
    with serving(models_root=root, registered=False, token=SECRET) as (server, client):
        r = client.get("/api/models")
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = client.get("/api/models", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json() == {"error": "wrong secret in the Authorization header"}
        r = client.post("/api/predict", files=_files(photos), data={"labels": "a, b"},
                        headers={"Authorization": f"Basic {SECRET}"})
        assert r.status_code == 401
        auth = {"Authorization": f"Bearer {SECRET}"}
        assert client.get("/api/models", headers=auth).json()["default"] == FOCUS_ID
        r = client.post("/api/predict", files=_files(photos), data={"labels": "a, b"}, headers=auth)
        assert r.status_code == 200 and r.json()["results"][0]["image"] == "photo0.jpg"
        # the page: Gradio's login (the page's config, uploads and its events are refused before it)
        assert client.get("/config").status_code == 401
        assert client.post("/gradio_api/upload", files=[("files", ("a.png", b"xx", "image/png"))]).status_code == 401
        assert client.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"}
                           ).status_code == 401
        assert client.post("/login", data={"username": "me", "password": "wrong"}).status_code == 400
        assert client.get("/config").status_code == 401
        ok = client.post("/login", data={"username": "anyone", "password": SECRET})
        assert ok.status_code == 200 and SECRET not in str(ok.cookies.values())
        assert client.get("/config").status_code == 200
        assert client.get("/api/models").status_code == 401  # the page's cookie is not the API's token
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert SECRET not in text


def test_without_a_secret_on_loopback_everything_is_open(root, photos):
    with serving(models_root=root, registered=False) as (_, client):
        assert client.get("/api/models").status_code == 200 and client.get("/config").status_code == 200


@pytest.mark.slow
def test_the_command_logs_the_port_it_took_and_never_the_secret(root, tmp_path):
    """`focusclip serve --port 0` with a secret, as a process: the log names the real port, the API on that
    port asks for the secret, and the secret is nowhere in the log (-v: debug logging)."""
    env = {**os.environ, TOKEN_ENV: SECRET, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "focusclip.cli", "-v", "serve", "--port", "0", "--models-root",
                                 str(root), "--no-registered", "--detect", "none", "--threads", "1"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 240
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"focusclip serve on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found.group(1)) if found else None
            time.sleep(0.2)
        assert port, log.read_text()
        assert port != 0 and "127.0.0.1:0 " not in log.read_text()
        for _ in range(600):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/models", headers={"Authorization": f"Bearer {SECRET}"})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["default"] == FOCUS_ID
        assert httpx.get(f"http://127.0.0.1:{port}/api/models").status_code == 401
        httpx.post(f"http://127.0.0.1:{port}/login", data={"username": "u", "password": SECRET})
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text()
    assert "the page and the API ask for the secret" in text and SECRET not in text


# ----------------------------------------------------------------------------- starting up
@pytest.mark.parametrize("port", ["99999", "65536"])
def test_a_port_out_of_range_is_one_line(port, capsys, tmp_path):
    assert main(["serve", "--models-root", str(tmp_path), "--port", port]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"focusclip serve: error: port {port} is out of range: expected 0 to 65535 (0 picks a free port)"


def test_a_port_in_use_is_one_line():
    from focusclip.errors import RunError

    taken = bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(RunError, match=rf"cannot listen on 127.0.0.1:{taken.getsockname()[1]}: "):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_a_device_this_machine_lacks_stops_the_start(root, capsys):
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    from focusclip.serve.app import build_service

    with pytest.raises(UsageError, match="cuda:7"):
        build_service(ServeConfig(models_root=root, registered=False, device="cuda:7"))


@pytest.mark.parametrize("name, message", [
    ("openclip:NoSuchArch/openai", "unknown open_clip architecture 'NoSuchArch'"),
    ("openclip:ViT-B-16/nosuchtag", "unknown pretrained tag 'nosuchtag'"),
    ("openclip:ViT-B-16@missing.safetensors", "checkpoint file not found"),
])
def test_an_unknown_clip_name_stops_the_start(root, name, message):
    from focusclip.serve.app import build_service

    with pytest.raises((UsageError, FileNotFoundError), match=message) as e:
        build_service(ServeConfig(models_root=root, registered=False, clip_models=(name,)))
    assert str(e.value).startswith(f"--clip {name!r}: ")


def test_cli_start_checks_come_before_serving(monkeypatch, root, capsys):
    import uvicorn

    ran = []

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: ran.append(self))
    assert main(["serve", "--models-root", str(root), "--device", "cuda:7", "--port", "0", "--detect", "none",
                 "--no-registered"]) == 2
    assert "cuda:7" in capsys.readouterr().err and not ran
    assert main(["serve", "--models-root", str(root), "--clip", "openclip:NoSuchArch", "--port", "0",
                 "--detect", "none", "--no-registered"]) == 2
    assert "NoSuchArch" in capsys.readouterr().err and not ran


# --------------------------------------------------------------------------------- error shape
@pytest.fixture(scope="module")
def site(root):
    with serving(models_root=root, registered=False) as (_, client):
        yield client


def _one_line_error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and "\n" not in body["error"], body
    return body["error"]


def test_framework_errors_have_the_documented_shape(site, photos):
    client = site
    assert _one_line_error(client.post("/api/predict", data={"labels": "a, b"}), 400) == \
        "missing field 'images' (required)"
    msg = _one_line_error(client.post("/api/predict", files=_files(photos), data={"labels": "a, b", "topk": "abc"}), 400)
    assert msg.startswith("topk: input should be a valid integer") and "'abc'" in msg
    msg = _one_line_error(client.post("/api/predict", files=_files(photos), data={"labels": "a, b", "topk": "0"}), 400)
    assert msg.startswith("topk: input should be greater than or equal to 1")
    msg = _one_line_error(client.post("/api/predict", content=b"garbage",
                                      headers={"content-type": "multipart/form-data; boundary=zz"}), 400)
    assert "multipart" in msg
    big = "a, " * 400_000  # a text field over the multipart parser's 1 MB per field
    msg = _one_line_error(client.post("/api/predict", files=_files(photos), data={"labels": big}), 400)
    assert "exceeded maximum size" in msg
    assert "no API endpoint /api/nothing" in _one_line_error(client.get("/api/nothing"), 404)
    assert "/api/predict takes POST" in _one_line_error(client.get("/api/predict"), 405)


def test_an_roi_file_nested_100000_deep_is_a_400(site, photos):
    deep = b"[" * 100_000 + b"]" * 100_000
    r = site.post("/api/predict", files=_files(photos) + [("rois", ("photo0.json", deep, "application/json"))],
                  data={"labels": "a, b"})
    assert "photo0.json: JSON nested too deeply" in _one_line_error(r, 400)


def test_the_413_message_gives_the_real_size(tmp_path, root):
    from focusclip.serve.uploads import MIB, UploadLimits, over_limit

    photo = tmp_path / "big.png"
    photo.write_bytes(b"\x89PNG" + os.urandom(int(2.4 * MIB)))
    with serving(models_root=root, registered=False, limits=UploadLimits(max_file_bytes=MIB)) as (_, client):
        r = client.post("/api/predict", files=[("images", ("big.png", photo.read_bytes(), "image/png"))],
                        data={"labels": "a, b"})
    assert _one_line_error(r, 413) == "big.png: 2.4 MB is over the upload limit of 1.0 MB"
    assert over_limit("x.png", MIB + 1, MIB) == "x.png: 1,048,577 bytes is over the upload limit of 1,048,576 bytes (1.0 MB)"


def test_api_errors_show_no_server_paths(tmp_path, photos):
    root = make_models_root(tmp_path / "models")
    (root / FOCUS_ID / "model.safetensors").write_bytes(b"not safetensors")
    with serving(models_root=root, registered=False) as (_, client):
        r = client.post("/api/predict", files=_files(photos), data={"labels": "a, b", "model": FOCUS_ID})
    msg = _one_line_error(r, 400)
    assert str(tmp_path) not in msg and not re.search(r"(?<![\w.])/(?:tmp|home|work|root)/", msg), msg
    assert FOCUS_ID in msg  # the model is named by its id
    from focusclip.serve.app import build_service
    from focusclip.serve.page import DownloadFolder, classify_photos
    from focusclip.serve.uploads import DecodedUploads

    service = build_service(ServeConfig(models_root=root, registered=False))
    downloads = DownloadFolder()
    try:  # the page says the same, without the path
        status = classify_photos(service, DecodedUploads(), downloads, FOCUS_ID, [str(photos[0])], None, "a, b",
                                 "", 3)[0]
    finally:
        downloads.cleanup()
    assert "fc-error" in status and FOCUS_ID in status and str(tmp_path) not in status, status
    assert public_message(f"{tmp_path}/models/a/b: bad", [tmp_path / "models"]) == "a/b: bad"
    assert public_message(f"{tmp_path}/y.json: bad; see https://example.org/a/b") == \
        "y.json: bad; see https://example.org/a/b"
    assert public_message("no API endpoint /api/nothing") == "no API endpoint /api/nothing"


def test_the_served_html_names_no_outside_url(site):
    page = site.get("/").text
    outside = [u for u in re.findall(r"https?://[^\s\"'<>)]+", page) if not u.startswith("http://127.0.0.1")]
    assert outside == [] and "og:image" not in page and "twitter:image" not in page
    config = json.dumps(site.get("/config").json())
    assert not [u for u in re.findall(r"https?://[^\s\"'<>)\\]+", config) if not u.startswith("http://127.0.0.1")]

"""Models on the Hugging Face Hub, offline: the model card of a trained model, loading by ``hf-hub:`` name from a
cache laid out as huggingface_hub lays it out, and pushing through huggingface_hub's own client to a fake Hub on
127.0.0.1 that records what is uploaded; plus the version a saved model records."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import focusclip
from focusclip.cli import main
from focusclip.errors import InputError, MissingInput, UsageError
from focusclip.model.factory import save_model
from focusclip.zeroshot.evaluate import model_fingerprint

REPO = "focus-lab/tiny-focusclip"
TOKEN = "hf_fakeTOKENforTHEtests0123456789"
SRC = Path(__file__).resolve().parents[1] / "src"


# ------------------------------------------------------------------------------- a trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny FocusCLIP trained for 2 steps (its run folder with config.yaml), evaluated by `focusclip eval` on
    the synthetic activity task into RUN/results.json, next to an evaluation of another model in the same file."""
    from focusclip.data.synthetic import generate_world
    from focusclip.train import train

    root = tmp_path_factory.mktemp("hub")
    generate_world(root / "synthetic", n=4, seed=0, image_size=64, eval_n=12, show_progress=False)
    run = root / "run"
    result = train({"name": "card-run", "out_dir": str(run), "seed": 3, "batch_size": 8, "max_steps": 2,
                    "data": {"format": "fake", "fake_size": 16}, "optim": {"name": "sgd", "lr": 0.05},
                    "log": {"every_steps": 1, "plot": False, "tensorboard": False}})
    model_dir = Path(result["model_final"])
    results = run / "results.json"
    common = ["--tasks", "synth-activity", "--data-root", str(root), "--out", str(results), "--workers", "0",
              "--no-confusion"]
    assert main(["eval", "--model", str(model_dir), *common]) == 0
    assert main(["eval", "--model", "clip-tiny", *common]) == 0  # another model's results in the same file
    return {"root": root, "run": run, "model": model_dir, "results": results}


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_card_from_a_trained_model_and_its_eval_results(trained):
    from huggingface_hub import ModelCard

    from focusclip.model_card import model_card

    model = focusclip.load_model(trained["model"])
    fp = model_fingerprint(model)
    data = json.loads(trained["results"].read_text())
    ours = data["results"][f"synth-activity@{fp}"]
    assert len({e["model"] for e in data["results"].values()}) == 2

    card = model_card(trained["model"], repo_id=REPO)
    meta = _front_matter(card)
    assert meta["library_name"] == "focusclip" and meta["pipeline_tag"] == "zero-shot-image-classification"
    assert "focus-highlight" in meta["tags"] and "license" not in meta  # the licence is the author's
    (index,) = meta["model-index"]
    assert index["name"] == "tiny-focusclip"
    (result,) = index["results"]  # only this model's fingerprint, not clip-tiny's
    assert result["task"]["type"] == "zero-shot-image-classification"
    assert result["dataset"] == {"name": "synth-activity", "type": "synthetic", "split": ours["split"]}
    (metric,) = result["metrics"]
    assert metric["type"] == "accuracy" and metric["value"] == round(ours["metrics"]["acc"], 2)
    # the Hub library reads our metadata back as evaluation results
    parsed = ModelCard(card).data
    assert parsed.eval_results[0].metric_value == metric["value"]
    # the body: towers, focus, recipe from RUN/config.yaml, the results table, how to load, the licence note
    assert "timm `test_vit` at 64 px" in card and "focus mode `highlight`" in card
    assert f"`{fp}`" in card and f"Written by focusclip {focusclip.__version__}" in card
    assert "| run | card-run |" in card and "| optimizer | sgd, lr 0.05," in card and "| batch size | 8 " in card
    assert "| exported at | step 2, epoch" in card
    row = next(line for line in card.splitlines() if line.startswith("| synth-activity |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["synth-activity", "synthetic", ours["group"], str(ours["n"]), f"{ours['metrics']['acc']:.2f}"]
    assert cells[-1] == "results.json"
    assert f'focusclip.load_model("hf-hub:{REPO}")' in card and f"--model hf-hub:{REPO}" in card
    assert "## License" in card


def test_card_without_results_says_how_to_add_them(trained, tmp_path):
    from focusclip.model_card import model_card

    other = tmp_path / "elsewhere" / "model"  # no run folder, no results beside it
    save_model(focusclip.load_model(trained["model"]), other)
    card = model_card(other)
    assert "model-index" not in _front_matter(card)
    assert "No zero-shot results were found" in card and "No run configuration was found" in card
    # results named explicitly are read (and a file that is not one is an error naming it)
    assert "| synth-activity |" in model_card(other, results=[trained["results"]])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="bad.json"):
        model_card(other, results=[bad])


# ------------------------------------------------------------------------ the Hub cache, offline
def _hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, refs: dict[str, str]) -> Path:
    """``folder`` as huggingface_hub caches a download: blobs named by content hash, snapshots/<commit>/ of
    relative links to them, refs/<name> holding the commit."""
    from huggingface_hub.file_download import repo_folder_name

    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    snap = repo / "snapshots" / commit
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref, sha in refs.items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(sha)
    return snap


@pytest.fixture
def offline_cache(trained, tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    cache = tmp_path / "hf-cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    _hub_cache(cache, REPO, trained["model"], commit, {"main": commit, "v1": commit})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    return {"cache": cache, "commit": commit}


def test_load_by_hub_name_from_the_cache_offline(trained, offline_cache, tmp_path, capsys):
    local = focusclip.load_model(trained["model"])
    for name in (f"hf-hub:{REPO}", f"hf-hub:{REPO}@v1", f"hf-hub:{REPO}@{offline_cache['commit']}"):
        hub = focusclip.load_model(name)
        assert model_fingerprint(hub) == model_fingerprint(local), name
    with pytest.raises(MissingInput, match="not in the Hugging Face cache"):
        focusclip.load_model(f"hf-hub:{REPO}@v2")
    with pytest.raises(MissingInput, match="not in the Hugging Face cache"):
        focusclip.load_model("hf-hub:focus-lab/not-cached")
    for bad in ("hf-hub:no-org", "hf-hub:a/b/c", f"hf-hub:{REPO}@", "hf-hub:../x"):
        with pytest.raises(UsageError, match="hf-hub:ORG/NAME|after '@'"):
            focusclip.load_model(bad)
    # the command line takes the same name (predict: same answers as the local folder)
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 64, 3), dtype=np.uint8)).save(image)
    answers = {}
    for model in (str(trained["model"]), f"hf-hub:{REPO}"):
        assert main(["predict", str(image), "--model", model, "--labels", "running,sitting", "--json"]) == 0
        answers[model] = json.loads(capsys.readouterr().out)
    assert answers[str(trained["model"])] == answers[f"hf-hub:{REPO}"]
    loaded = focusclip.ZeroShotClassifier.from_pretrained(f"hf-hub:{REPO}", ["running", "sitting"])
    assert loaded.model.roi_enabled
    # the verbs that read a model folder directly take the name too (merge: the same model twice is itself)
    out = tmp_path / "merged"
    assert main(["merge", "--base", f"hf-hub:{REPO}", "--finetuned", f"hf-hub:{REPO}@v1", "--out", str(out)]) == 0
    assert model_fingerprint(focusclip.load_model(out)) == model_fingerprint(local)
    assert focusclip.get_tokenizer(f"hf-hub:{REPO}")(["a person running"])["input_ids"].shape[0] == 1
    # training configs name a start model the same way (model.name / model.pretrained)
    again = focusclip.create_model(f"hf-hub:{REPO}", pretrained=f"hf-hub:{REPO}@v1")
    assert model_fingerprint(again) == model_fingerprint(local)


# --------------------------------------------------------------------------- a fake Hub on 127.0.0.1
class FakeHub:
    """The four endpoints huggingface_hub's create_repo / create_branch / create_commit call, answering as the
    Hub does for small files ("regular" upload mode: contents inline in the commit); records what arrives."""

    def __init__(self):
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self.repos: set[str] = set()
        self.commits: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.requests.append(("POST", self.path, self.headers.get("Authorization", "")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error": "Invalid credentials"})
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req['organization']}/{req['name']}"
                    hub.repos.add(repo)
                    return self._send(200, {"url": f"{hub.url}/{repo}", "name": repo})
                if path == "/api/validate-yaml":
                    yaml.safe_load(json.loads(body)["content"].split("---\n")[1])
                    return self._send(200, {"errors": [], "warnings": []})
                parts = path.split("/")  # /api/models/ORG/NAME/(preupload|commit|branch)/REV
                repo = "/".join(parts[3:5])
                if len(parts) == 7 and parts[:3] == ["", "api", "models"] and repo in hub.repos:
                    if parts[5] == "preupload":
                        files = json.loads(body)["files"]
                        return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                           "shouldIgnore": False} for f in files]})
                    if parts[5] == "branch":
                        return self._send(200, {})
                    if parts[5] == "commit":
                        lines = [json.loads(x) for x in body.splitlines() if x.strip()]
                        files = {x["value"]["path"]: base64.b64decode(x["value"]["content"])
                                 for x in lines if x["key"] == "file"}
                        header = next(x["value"] for x in lines if x["key"] == "header")
                        hub.commits.append({"repo": repo, "revision": parts[6], "summary": header["summary"],
                                            "files": files})
                        oid = hashlib.sha1(body).hexdigest()
                        return self._send(200, {"commitUrl": f"{hub.url}/{repo}/commit/{oid}", "commitOid": oid})
                return self._send(404, {"error": f"no route {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as hc

    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(hc, "ENDPOINT", hub.url)
        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))  # no saved login
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield hub


def test_push_uploads_the_model_folder_and_its_card(trained, fake_hub, caplog):
    from focusclip.hub import push_to_hub

    caplog.set_level(logging.DEBUG)
    before = sorted(p.relative_to(trained["model"]) for p in trained["model"].rglob("*"))
    out = focusclip.push_to_hub(trained["model"], REPO)
    assert push_to_hub is focusclip.push_to_hub
    assert out["name"] == f"hf-hub:{REPO}" and out["commit"] and out["url"].startswith(fake_hub.url)
    (commit,) = fake_hub.commits
    local = {p.relative_to(trained["model"]).as_posix(): p.read_bytes()
             for p in trained["model"].rglob("*") if p.is_file()}
    assert set(commit["files"]) == set(local) | {"README.md"} and commit["revision"] == "main"
    assert all(commit["files"][name] == data for name, data in local.items())  # byte for byte
    card = commit["files"]["README.md"].decode()
    assert _front_matter(card)["model-index"][0]["results"][0]["dataset"]["name"] == "synth-activity"
    # the token went only into the Authorization header, never into the logs
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in fake_hub.requests)
    assert TOKEN not in caplog.text
    # the model folder is an input: nothing was written into it
    assert sorted(p.relative_to(trained["model"]) for p in trained["model"].rglob("*")) == before
    # a branch
    focusclip.push_to_hub(trained["model"], REPO, revision="v1", commit_message="second")
    assert fake_hub.commits[-1]["revision"] == "v1" and fake_hub.commits[-1]["summary"] == "second"


def test_push_without_a_token_or_with_a_refused_one(trained, fake_hub, monkeypatch):
    from focusclip.errors import RunError

    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(UsageError, match="HF_TOKEN"):
        focusclip.push_to_hub(trained["model"], REPO)
    assert not fake_hub.requests  # refused before any request
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(RunError, match="may write to it") as e:
        focusclip.push_to_hub(trained["model"], REPO)
    assert "hf_wrong" not in str(e.value)
    with pytest.raises(UsageError, match="ORG/NAME"):
        focusclip.push_to_hub(trained["model"], "just-a-name")


def test_push_command_line_takes_the_token_from_the_environment_only(trained, fake_hub, tmp_path):
    """`focusclip push` in a fresh process: HF_ENDPOINT points at the fake Hub; -v logs everything, no token."""
    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "focusclip.cli", "-v", "push", str(trained["model"]), "--repo", REPO]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"hf-hub:{REPO}" in proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr
    assert set(fake_hub.commits[-1]["files"]) >= {"config.json", "model.safetensors", "README.md"}
    proc = subprocess.run([*cmd[:4], "push", "--help"], env=env, capture_output=True, text=True, timeout=600)
    assert "--token" not in proc.stdout


def test_push_card_only_writes_the_card_and_uploads_nothing(trained, fake_hub, tmp_path, capsys):
    card = tmp_path / "card.md"
    assert main(["push", str(trained["model"]), "--repo", REPO, "--card-only", str(card)]) == 0
    assert "| synth-activity |" in card.read_text() and not fake_hub.requests
    assert main(["push", str(trained["model"]), "--repo", REPO, "--card-only", str(card)]) == 1  # not replaced
    assert "already exists" in capsys.readouterr().err
    inside = trained["model"] / "README.md"
    assert main(["push", str(trained["model"]), "--repo", REPO, "--card-only", str(inside)]) == 2
    assert not inside.exists()
    # an edited card is uploaded as given
    card.write_text(card.read_text().replace("## License\n", "## License\n\nMIT.\n"))
    assert main(["push", str(trained["model"]), "--repo", REPO, "--card", str(card)]) == 0
    assert fake_hub.commits[-1]["files"]["README.md"] == card.read_bytes()


# ------------------------------------------------------------------------ the version a model records
def _rewrite_version(folder: Path, version: str, **extra) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["version"] = version
    for key, value in extra.items():
        cfg["model"][key] = value
    (folder / "config.json").write_text(json.dumps(cfg))


def test_saved_model_records_its_version_and_newer_ones_say_so(tiny_focus, tmp_path, caplog):
    model = tiny_focus[0]
    folder = save_model(model, tmp_path / "m")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["version"] == focusclip.__version__
    # written by an older focusclip (0.1.0): loads without a word
    _rewrite_version(folder, "0.1.0")
    with caplog.at_level(logging.WARNING):
        focusclip.load_model(folder)
    assert "newer" not in caplog.text
    # written by a newer one: loads, with a warning naming both versions
    _rewrite_version(folder, "99.1.0")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = focusclip.load_model(folder)
    assert model_fingerprint(again) == model_fingerprint(model)
    assert f"written by focusclip 99.1.0, newer than this focusclip {focusclip.__version__}" in caplog.text
    # ... and when it uses something this version does not know, the error says why
    _rewrite_version(folder, "99.1.0", future_setting=1)
    with pytest.raises(UsageError, match=r"future_setting.*written by focusclip 99\.1\.0.*pip install -U"):
        focusclip.load_model(folder)
    _rewrite_version(folder, "0.1.0", future_setting=1)
    with pytest.raises(UsageError) as e:
        focusclip.load_model(folder)
    assert "written by" not in str(e.value)


def test_version_comparison():
    from focusclip.versioning import is_newer, newer_version_note

    assert is_newer("0.3.0", "0.2.0") and is_newer("0.2.1", "0.2") and is_newer("1.0", "0.9.9")
    assert not is_newer("0.2.0", "0.2.0") and not is_newer("0.2", "0.2.0") and not is_newer("0.1.0", "0.2.0")
    assert not is_newer(None, "0.2.0") and not is_newer("garbage", "0.2.0") and not is_newer("9.0", "0+unknown")
    assert newer_version_note("0.3.0", "0.2.0") == "written by focusclip 0.3.0, newer than this focusclip 0.2.0"


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    assert focusclip.__version__ == version("focusclip")
    out = subprocess.run([sys.executable, "-m", "focusclip.cli", "--version"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    assert out.stdout.strip() == f"focusclip {focusclip.__version__}"


def test_the_page_serves_a_model_by_hub_name(trained, offline_cache, tmp_path):
    pytest.importorskip("gradio")
    import httpx

    from focusclip.serve.app import BackgroundServer, ServeConfig, create_app

    name = f"hf-hub:{REPO}"
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 64, 3), dtype=np.uint8)).save(photo)
    config = ServeConfig(models_root=None, registered=False, default_model=name, device="cpu")
    with BackgroundServer(create_app(config)) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        listed = client.get("/api/models").json()
        assert listed["default"] == name
        (entry,) = listed["models"]
        assert entry["kind"] == "hub" and entry["roi"] and entry["architecture"] == "focusclip-tiny"
        r = client.post("/api/predict", files={"images": ("photo.jpg", photo.read_bytes(), "image/jpeg")},
                        data={"labels": "running, sitting", "model": name})
        assert r.status_code == 200, r.text
        assert {p["label"] for p in r.json()["results"][0]["predictions"]} == {"running", "sitting"}

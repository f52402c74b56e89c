#!/usr/bin/env bash
# The package on its own: build the sdist and the wheel from it, install it into a new virtual environment and use it from a folder
# outside the checkout, so nothing can come from src/. Run by .ci/run after the test suite (make wheel-check).
#
# The new environment does not download the dependencies again (torch alone is gigabytes): it is created
# without them, the wheel is installed with --no-deps and --no-index, and the environment sees the
# dependencies of PYTHON's environment (the checkout's .venv) through a .pth path line. That line adds the
# folder only: .pth files inside it (such as the checkout's editable install) are not run, and the check
# asserts that focusclip is imported from the new environment. The declared dependencies are checked against
# what is installed (names and version bounds).
#
#   PYTHON=.venv/bin/python bash .ci/wheel_check.sh       (KEEP=1 keeps the work folder)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")
work=$(mktemp -d "${TMPDIR:-/tmp}/focusclip-wheel.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "work folder: $work"; fi
step() { echo "== wheel check: $*"; }

step "build (from a copy of the checkout's files: sdist, then the wheel from the sdist)"
# the copy keeps build/ and *.egg-info out of the checkout, and leftovers there out of the wheel
"$PYTHON" - "$repo" "$work/tree" <<'EOF'
import shutil, subprocess, sys
from pathlib import Path
repo, tree = Path(sys.argv[1]), Path(sys.argv[2])
try:
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
except (OSError, subprocess.CalledProcessError):  # not a git checkout: the files a build reads
    listed = [str(p.relative_to(repo)) for top in ("pyproject.toml", "README.md", "LICENSE", "src")
              for p in ([repo / top] if (repo / top).is_file() else (repo / top).rglob("*"))]
for rel in listed:
    src = repo / rel
    if rel and src.is_file() and "__pycache__" not in src.parts and ".egg-info" not in str(src.parent):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, tree / rel)
EOF
"$PYTHON" -m build --no-isolation --outdir "$work/dist" "$work/tree" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/focusclip-*.whl)
version=$("$PYTHON" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
echo "$wheel"

step "every packaged data file is in the wheel"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" ls-files --cached --others --exclude-standard -- src/focusclip | { grep -v '\.py$' || true; } \
        | sed 's|^src/||' >"$work/data-files.txt"
else
    (cd src && find focusclip -type f ! -name '*.py' ! -name '*.pyc' ! -path '*__pycache__*') >"$work/data-files.txt"
fi
"$PYTHON" - "$wheel" "$work/data-files.txt" <<'EOF'
import sys, zipfile
from pathlib import Path
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = sorted({w for w in (line.strip() for line in open(sys.argv[2])) if w and Path("src", w).is_file()})
missing = [w for w in wanted if w not in names]
if missing:
    sys.exit(f"not in the wheel (add them to [tool.setuptools.package-data]): {', '.join(missing)}")
print(f"{len(wanted)} data files, all packaged")
EOF

step "install into a new environment"
"$PYTHON" -m venv --without-pip "$work/venv"
venv_py="$work/venv/bin/python"
"$PYTHON" -m pip --python "$venv_py" install --quiet --no-deps --no-index "$wheel"
shared=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
own=$("$venv_py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$shared" >"$own/_focusclip_check_dependencies.pth"

mkdir -p "$work/run"
cd "$work/run"   # outside the checkout: only the installed package can be imported
unset PYTHONPATH
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$work/hf-home" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fc="$work/venv/bin/focusclip"

"$venv_py" - "$work/venv" "$version" <<'EOF'
import sys
from importlib.metadata import distribution, version
from pathlib import Path

from packaging.requirements import Requirement

import focusclip
venv, expected = Path(sys.argv[1]).resolve(), sys.argv[2]
where = Path(focusclip.__file__).resolve()
assert venv in where.parents, f"focusclip imported from {where}, not from the new environment {venv}"
assert focusclip.__version__ == version("focusclip") == expected, (focusclip.__version__, expected)
problems = []
for line in distribution("focusclip").requires or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra, or not for this Python
    try:
        have = version(req.name)
    except Exception:
        problems.append(f"{req.name} is not installed")
        continue
    if not req.specifier.contains(have, prereleases=True):
        problems.append(f"{req.name} {have} does not satisfy {req}")
assert not problems, "; ".join(problems)
print(f"focusclip {focusclip.__version__} from {where.parent}; core dependencies satisfied")
EOF

step "focusclip --version, models, the task registry"
test "$("$fc" --version)" = "focusclip $version"
"$fc" models >"$work/models.txt"
head -3 "$work/models.txt"
grep -q "focusclip-tiny" "$work/models.txt"
grep -q "focusclip-lite0-minilm" "$work/models.txt"
"$fc" eval --list >"$work/tasks.txt"
head -2 "$work/tasks.txt"
grep -q "synth-activity" "$work/tasks.txt"
grep -q "stanford40" "$work/tasks.txt"
"$fc" push --help >"$work/push-help.txt"
grep -q -- "--repo" "$work/push-help.txt"

step "focusclip demo (reduced: tiny towers, 48 images, one epoch)"
"$fc" -q demo --out demo --model tiny --n-train 48 --n-eval 24 --epochs 1 --image-size 64 --batch-size 16 \
    --workers 0 >"$work/demo.txt"
model=demo/runs/focusclip-seed0/model-final
test -f "$model/model.safetensors"
test -f demo/report.md

step "predict with the saved model (also by hf-hub: name from a Hugging Face cache, offline)"
find demo/data -name '*.jpg' | sort >"$work/photos.txt"
photo=$(head -1 "$work/photos.txt")
"$fc" predict "$photo" --model "$model" --labels "running, sitting, dancing" --json >"$work/predict.json"
"$venv_py" - "$model" "$photo" "$work/hf-cache" "$work/predict.json" <<'EOF'
import hashlib, json, os, subprocess, sys
from pathlib import Path
model, photo, cache, expected = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
snap = cache / "models--local--demo" / "snapshots" / ("0" * 40)
for f in (p for p in model.rglob("*") if p.is_file()):  # the Hub cache layout: blobs, snapshot links, refs
    blob = cache / "models--local--demo" / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(f.read_bytes())
    (snap / f.relative_to(model)).parent.mkdir(parents=True, exist_ok=True)
    (snap / f.relative_to(model)).symlink_to(os.path.relpath(blob, (snap / f.relative_to(model)).parent))
(cache / "models--local--demo" / "refs").mkdir()
(cache / "models--local--demo" / "refs" / "main").write_text("0" * 40)
env = {**os.environ, "HF_HUB_CACHE": str(cache)}
out = subprocess.run([str(Path(sys.executable).parent / "focusclip"), "predict", photo, "--model", "hf-hub:local/demo",
                      "--labels", "running, sitting, dancing", "--json"], env=env, capture_output=True, text=True)
assert out.returncode == 0, out.stderr
assert json.loads(out.stdout) == json.loads(expected.read_text()), "hf-hub:local/demo answers differently"
print("predict: the folder and hf-hub:local/demo give the same answers")
EOF

step "the page and its API"
"$venv_py" - "$photo" <<'EOF'
import sys
import httpx
from focusclip.serve.app import BackgroundServer, ServeConfig, create_app
with BackgroundServer(create_app(ServeConfig(models_root=".", device="cpu"))) as server:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        models = client.get("/api/models").json()
        ids = [m["id"] for m in (models["models"] if isinstance(models, dict) else models)]
        assert "demo/runs/focusclip-seed0/model-final" in ids, ids
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower(), page.status_code
        with open(sys.argv[1], "rb") as f:
            r = client.post("/api/predict", files={"images": ("photo.jpg", f.read(), "image/jpeg")},
                            data={"labels": "running, sitting", "model": "demo/runs/focusclip-seed0/model-final"})
        assert r.status_code == 200, r.text
print("serve: /api/models, the page and /api/predict answer")
EOF
step "passed: focusclip $version works from its wheel alone (${SECONDS} s)"

"""The package on its own: `.ci/wheel_check.sh` builds the wheel, installs it into a new environment and runs
`focusclip --version`, `models`, `eval --list`, a reduced `demo`, `predict` (by folder and by hf-hub: name from a
Hugging Face cache) and the page from a folder outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_works_without_the_checkout(tmp_path):
    pytest.importorskip("build", reason="the wheel check builds with `build` (in the dev extra)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHON=sys.executable, TMPDIR=str(tmp_path))
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "wheel_check.sh")], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "passed: focusclip" in proc.stdout
    assert "data files, all packaged" in proc.stdout

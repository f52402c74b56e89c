# Fresh machine: `make demo` and `make test` create .venv when missing and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo serve test test-fast lint bench clean wheel-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m focusclip.cli demo --out runs/demo

serve: $(STAMP)   # the web page + JSON API on http://127.0.0.1:7860 (docs/serve.md)
	$(PY) -m focusclip.cli serve --models-root runs

test: $(STAMP)
	$(PY) -m pytest -q -x --durations=15 tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

wheel-check: $(STAMP)   # build the wheel, install it into a new environment, use it outside the checkout
	PYTHON=$(PY) bash .ci/wheel_check.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)   # CPU benchmarks; the GPU one is `python benchmarks/gpu_paper.py --out results.json`
	$(PY) benchmarks/heatmaps.py --markdown
	$(PY) benchmarks/eval.py --images 1000 --workers 2
	$(PY) benchmarks/train_step.py --markdown
	$(PY) benchmarks/loader.py --markdown
	$(PY) benchmarks/synthetic.py --markdown
	$(PY) benchmarks/long_text.py --n-train 360 --n-eval 240 --epochs 4 --markdown
	$(PY) benchmarks/serve.py --markdown
	$(PY) benchmarks/detect.py --images 160 --workers 2 --markdown
	$(PY) benchmarks/shards.py --n 480 --markdown

clean:
	rm -rf runs build dist src/*.egg-info .pytest_cache

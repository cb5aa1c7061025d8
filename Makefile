# Entry points (see README): `make search` (the main job), `make test` (what CI
# runs) and `make demo` (the export demo). Each creates .venv and installs the
# pinned, tested dependency set on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml setup.py | sha1sum | cut -c1-12)
DEMO_OUT ?= runs/demo
# the main job's workspace: corpus, profiles of this host, predictors, study, export
WORKSPACE ?= runs/workspace
STUDY ?= main
SEED ?= 0

.PHONY: setup search search-tts demo test test-fast clean

$(STAMP):
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, by exact version: the CPU wheel (an unpinned torch pulls a CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e '.[all,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

# a complete small search for this CPU on the built-in corpus (~40 min): the
# baselines, the trials, the final phase, the verified finalists, the exported
# answer, then the report
search: setup
	HWNAS_WORKSPACE=$(WORKSPACE) OMP_NUM_THREADS=1 $(BIN)/hwnas search --target cpu \
	    --streaming --max-delay 500 --objectives cer,delay --trials 16 --study $(STUDY) \
	    --seed $(SEED)
	HWNAS_WORKSPACE=$(WORKSPACE) $(BIN)/hwnas report $(STUDY)

# the TTS search for this CPU (~15 min): FastSpeech 2-like space, RTF measured here
search-tts: setup
	HWNAS_WORKSPACE=$(WORKSPACE) OMP_NUM_THREADS=1 $(BIN)/hwnas search --task tts \
	    --target cpu --max-rtf 0.002 --trials 12 --tts-budget 60s --study tts

demo: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m hwnas.asr.demo --out $(DEMO_OUT)

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "slow or not slow" -q

test-fast: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache

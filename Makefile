# One command each: `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
PIP    := $(BIN)/python -m pip
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: all install demo test test-fast slow lint format docs bench clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints-dev.txt | $(BIN)/python
	$(PIP) install --quiet -e ".[test,torch]" -c constraints-dev.txt
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check skrobust skcausal skbandit tests

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format skrobust skcausal skbandit tests

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(PIP) install --quiet -e ".[docs]" -c constraints-dev.txt
	touch $@

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info docs/_build docs/auto_examples

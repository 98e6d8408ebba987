# One command each: `make demo` and `make test` create .venv on first use.
# Every install is pinned by the committed lock (requirements-lock.txt), so a new
# release upstream cannot change what `make test` tests; `make lock` refreshes it on
# purpose, and `make test-latest` runs the suite against the newest releases.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
PIP    := $(BIN)/python -m pip
LOCK   := requirements-lock.txt
# every extra goes into the one lock, so tests, docs and benchmarks agree
EXTRAS := test,torch,docs,plot,bench
LOCK_VENV   := .venv-lock
LATEST_VENV := .venv-latest
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
comma := ,

.PHONY: all install demo test test-fuzz test-latest slow lint format docs bench lock clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints-dev.txt $(LOCK) | $(BIN)/python
	$(PIP) install --quiet -e ".[test,torch]" -c $(LOCK)
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

# The property tests with newly drawn examples (`make test` draws the same ones
# each run, so that CI is reproducible): pin each failure found with @example.
test-fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n 2 -q \
		$$(grep -rl "from hypothesis" tests)

slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m slow tests

# The suite against the newest release of every dependency (only torch stays on the
# pinned CPU build of constraints-dev.txt): drift is seen here before users see it.
test-latest:
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
		-e ".[test,torch]" -c constraints-dev.txt
	$(LATEST_VENV)/bin/python -m pip list --format=freeze | grep -iE \
		'^(numpy|scipy|scikit-learn|pandas|torch|skorch|lightgbm|cvxpy)=='
	$(LATEST_VENV)/bin/ruff check .
	$(LATEST_VENV)/bin/python -m pytest -n 2 -q

# Refresh the lock on purpose: resolve the newest releases that pyproject.toml allows
# (torch pinned by constraints-dev.txt), with pip-tools in a venv of its own. A local
# build label (torch's +cpu) is not on PyPI, so it is dropped: the public version
# specifier matches the local build.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip pip-tools
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --strip-extras --no-emit-find-links \
		--no-emit-index-url --no-emit-trusted-host --extra $(subst $(comma), --extra ,$(EXTRAS)) \
		-c constraints-dev.txt -o $(LOCK) pyproject.toml
	sed -i -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+/\1/' $(LOCK)

$(DOCS_STAMP): pyproject.toml $(LOCK) | $(STAMP)
	$(PIP) install --quiet -e ".[docs]" -c $(LOCK)
	touch $@

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info docs/_build docs/auto_examples $(LOCK_VENV) $(LATEST_VENV)

# The two quick-start commands:  make demo   and   make test
# Both set up .venv first (CPU torch 2.13.0, then gensc with every extra), once.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gensc-installed

.PHONY: setup demo test test-fast lint proto bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gensc demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

proto: $(STAMP)
	$(PY) -m gensc.proto.generate

bench: $(STAMP)
	$(VENV)/bin/gensc bench services

clean:
	rm -rf $(VENV) build *.egg-info demo-out results

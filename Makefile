# Everything a fresh machine needs, in order. `make experiment` is the main job, `make test` the tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test experiment pretrain book exercises bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

experiment: setup
	$(PY) -m course_lib experiment --out results/experiment

clean:
	rm -rf _build .pytest_cache

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

# Rebuilds the source weights that finetune and feature_extraction start from (data/weights/).
CIFAR10 ?= ../shared/datasets/cifar10-jpg.zip
pretrain: setup
	$(PY) -m course_lib pretrain --source cifar10 --data $(CIFAR10) --out data/weights/resnet18-cifar10.pt

# Regenerates the student releases in exercises/ from the nbgrader sources in solutions/.
exercises: setup
	$(PY) scripts/release_exercises.py

book: setup
	$(VENV)/bin/jupyter-book build -W -n --keep-going .

# The CPU benchmarks (~20 min on 2 cores; bench/README.md holds the latest table). The time-to-90 %
# table reads results/experiment, so run `make experiment` first. GPU: scripts/gpu_check.sh.
bench: setup
	$(PY) bench/resnet_throughput.py
	$(PY) bench/trainer_vs_tutorial.py
	$(PY) bench/feature_cache.py
	$(PY) bench/time_to_target.py --out results/experiment

clean:
	rm -rf _build .pytest_cache

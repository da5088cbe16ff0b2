# Everything a fresh machine needs, in order. `make experiment` is the main job, `make test` the tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup system-packages test experiment pretrain book translations exercises bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[grading,book,test]"
	touch $(STAMP)

# Debian packages (bubblewrap, chromium, chromium-driver, slurm-wlm, munge): installed when this user can, else one
# message with the command to run, before anything else.
system-packages:
	bash scripts/system_packages.sh

test: system-packages setup
	$(PY) -m pytest -q

experiment: setup
	$(PY) -m course_lib experiment --seeds 0 1 2 --out results/experiment

# Rebuilds the source weights that finetune and feature_extraction start from (data/weights/), with
# the default recipe of `python -m course_lib pretrain --help`: a GPU job (add PRETRAIN_ARGS=--compile).
CIFAR10 ?= ../shared/datasets/cifar10-jpg.zip
PRETRAIN_ARGS ?=
pretrain: setup
	$(PY) -m course_lib pretrain --source cifar10 --data $(CIFAR10) --out data/weights/resnet18-cifar10.pt $(PRETRAIN_ARGS)

# Regenerates the student releases from the nbgrader sources in solutions/: exercises/ in English and
# exercises/es/ in Spanish, whose catalogs (locales/es/LC_MESSAGES/solutions/) first follow the English cells.
exercises: setup
	$(PY) scripts/translations.py assignments update
	$(PY) scripts/release_exercises.py

# The book in English and in Spanish (_build/html/en/, _build/html/es/): the chapters run once, the
# Spanish catalogs in locales/ are brought up to date with the English text, both editions are built
# with warnings as errors, and what is left to translate is listed (scripts/build_book.py).
book: setup
	$(PY) scripts/book_notebooks.py --check
	$(PY) scripts/build_book.py

# Fails, naming each page, catalog and message, until the assignments and the book are complete in Spanish.
translations: setup
	$(PY) scripts/translations.py assignments check
	$(PY) scripts/translations.py check

# The CPU benchmarks (~35 min on 2 idle cores; bench/README.md holds the latest table). The
# time-to-90 % table reads results/experiment, so run `make experiment` first. The tutorial loop
# is also timed on the full-size photos when GROCERY names them. GPU: scripts/gpu_check.sh.
GROCERY ?= ../shared/datasets/grocery-store/dataset
bench: setup
	$(PY) bench/resnet_throughput.py
	$(PY) bench/trainer_vs_tutorial.py
	$(if $(wildcard $(GROCERY)),$(PY) bench/trainer_vs_tutorial.py --data $(GROCERY))
	$(PY) bench/feature_cache.py --repeats 3
	$(PY) bench/sandbox_cost.py
	$(PY) bench/slurm_overhead.py
	$(PY) bench/time_to_target.py --out results/experiment

clean:
	rm -rf _build .pytest_cache

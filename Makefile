# The README's commands. Every target sets up what it needs first.
#   make demo   - set up, generate the release, grade three bundled submissions
#   make test   - set up, run the project's own tests (slow end-to-end ones included)
#   make test-nodata - the data-dependent tests again, on generated data only (a fresh
#                 machine: the data directory is an empty folder); CI runs both

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# nbgrader runs alembic from PATH: put the venv first.
export PATH := $(abspath $(BIN)):$(PATH)
# The declared assignments: every suite folder with a declaration (autograder/config.py).
ASSIGNMENTS ?= $(sort $(patsubst autograder/suites/%/tasks.toml,%,$(wildcard autograder/suites/*/tasks.toml)))
# Assignment 2's PyTorch part: the version pinned in pyproject.toml.
TORCH ?= torch==2.13.0
# Data directory (CVCOURSE_DATA_DIR): the offline course data beside the
# checkout when there is one; otherwise the tools fall back to generated data.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/cifar-10-batches-py),)
export CVCOURSE_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: setup demo test test-nodata test-fast release solutions lint clean

# Students build im2col_cython.pyx with Cython 3 on Python 3.11 or 3.12. When the
# machine has python3.12, `make test` also sets up a small 3.12 environment (Cython,
# numpy, setuptools) and tests/test_build.py builds the .pyx there too.
# (pyenv's shim exists even where 3.12 is not selected: ask the interpreter itself.)
PY312 ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12),\
           $(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)))
VENV312 ?= .venv-py312
ifneq ($(PY312),)
STUDENT_PYTHONS := $(VENV312)/.installed
export CS231N_STUDENT_PYTHONS := $(abspath $(VENV312))/bin/python
endif

$(VENV312)/.installed:
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet 'cython>=3.0,<4' 'numpy>=1.26' 'setuptools>=64'
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, the exact version pyproject.toml pins: the project install then
# finds it satisfied and never resolves another torch build (e.g. CUDA's).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

release: setup
	@for a in $(ASSIGNMENTS); do $(BIN)/python -m coursegen.release $$a || exit 1; done

solutions: setup
	@for a in $(ASSIGNMENTS); do $(BIN)/python -m coursegen.solutions $$a || exit 1; done

demo: release
	$(BIN)/python -m coursegen.demo

# The suite runs on every core (pytest-xdist), a test file per worker at a time
# (tests/test_grading.py: an assignment per worker; tests/conftest.py's scheduler);
# the performance tests are built to hold with the other core busy.
PYTEST_WORKERS ?= auto
test: setup $(STUDENT_PYTHONS)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The tests whose verdicts depend on the data, run on generated stand-ins only:
# CVCOURSE_DATA_DIR is an empty folder, as on a machine without the course data.
DATA_TESTS ?= tests/test_datasets.py tests/test_grading.py tests/test_assignment2_pytorch.py \
              tests/test_verdicts.py
test-nodata: setup $(STUDENT_PYTHONS)
	@empty=$$(mktemp -d) && echo "CVCOURSE_DATA_DIR=$$empty (empty: generated data only)" && \
	CVCOURSE_DATA_DIR=$$empty $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile \
	    $(DATA_TESTS); status=$$?; rm -rf "$$empty"; exit $$status

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV312) build .pytest_cache gradebook.db

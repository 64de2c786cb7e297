# The README's commands. Every target sets up what it needs first.
#   make demo   - set up, generate the release, grade three bundled submissions
#   make test   - set up, run the project's own tests (slow end-to-end ones included)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# nbgrader runs alembic from PATH: put the venv first.
export PATH := $(abspath $(BIN)):$(PATH)
ASSIGNMENTS ?= assignment1
# Data directory (CVCOURSE_DATA_DIR): the offline course data beside the
# checkout when there is one; otherwise the tools fall back to generated data.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/cifar-10-batches-py),)
export CVCOURSE_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: setup demo test test-fast release solutions lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

release: setup
	@for a in $(ASSIGNMENTS); do $(BIN)/nbgrader generate_assignment $$a --force --log-level=WARN || exit 1; done

solutions: setup
	@for a in $(ASSIGNMENTS); do $(BIN)/python -m coursegen.solutions $$a || exit 1; done

demo: release
	$(BIN)/python -m coursegen.demo

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache gradebook.db

# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
PORT ?= 5000

.PHONY: setup run test lint format lock ui compare study verify bench push pull clean

# the environment: exactly the versions in requirements.lock, then the project.
# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as in
# many CI images) Python would otherwise recompile TensorFlow's sources in every
# stage process, which triples each stage's start-up.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(STAMP)

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.run

# test files run three at a time, one file per worker: on two cores a third
# worker fills the time the others spend waiting on DVC's queue and servers
test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n 3 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# regenerate the lock file from the ranges in pyproject.toml
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --upgrade -o requirements.lock

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
		--artifacts-destination $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(PORT)

# the experiment's latest top-level runs side by side, curves in compare.png
compare: setup
	$(BIN)/python -m pipeline.compare --output compare.png

# the overfitting study as DVC experiments; writes its table into the README
study: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.study

# rerun the pipeline from scratch in a temporary copy; compare with dvc.lock
verify: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.verify

# the pipeline against a plain Keras script, side by side (about 35 minutes):
# prints the table and writes bench/results.md
bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/run.py $(BENCH_ARGS)

# data, models and DVC's run cache to and from the default DVC remote
push: setup
	$(BIN)/dvc push --run-cache

pull: setup
	$(BIN)/dvc pull --run-cache

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

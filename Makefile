# govfn — every target builds what it needs from the project's own files.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench]'
	touch $(STAMP)

## run: serve the built-in functions on localhost with the embedded Chronicle ledger
run: $(STAMP)
	$(BIN)/govfn serve --host $(HOST) --port $(PORT) --dev

## test: the whole test suite (real processes on loopback)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## lint: ruff and mypy on src/
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src
	$(BIN)/mypy

## bench: benchmarks against the peers (figures go to the README's Performance section)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.prepare
	$(BIN)/python -m benchmarks.invoke
	$(BIN)/python -m benchmarks.http
	$(BIN)/python -m benchmarks.coldstart
	$(BIN)/python -m benchmarks.report --write-readme README.md

clean:
	rm -rf $(VENV) .tools var build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# The two commands of the README: `make run` serves the demo, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Test processes: pytest-xdist workers sharing one set of servers.
WORKERS ?= 2

.PHONY: run test venv bench clean

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

run: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/run-demo

test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/with-test-services $(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

bench: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/with-test-services $(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

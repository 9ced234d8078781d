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

# The peers (llmfy, langgraph) go into their own virtualenv, never into the project's.
.venv-bench/.installed: requirements.txt bench/requirements.txt pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r requirements.txt -r bench/requirements.txt
	.venv-bench/bin/pip install --quiet --no-deps -e .
	touch $@

bench: .venv-bench/.installed
	PATH="$(CURDIR)/.venv-bench/bin:$$PATH" scripts/with-test-services .venv-bench/bin/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-bench build dist *.egg-info .pytest_cache .hypothesis

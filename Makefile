# The two commands of the README: `make run` serves the demo, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Test processes: pytest-xdist workers sharing one set of servers.
WORKERS ?= 2

.PHONY: run test lint venv bench clean

# The demo's runtime alone (make run), then the test and development set on top (make test).
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/run-demo

test: $(BIN)/.installed-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/with-test-services $(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

# ruff and mypy, configured in pyproject.toml; both run, and either failing fails the target.
# Formatting is not checked: the code base is not ruff-formatted.
lint: $(BIN)/.installed-dev
	status=0; $(BIN)/ruff check . || status=1; $(BIN)/mypy || status=1; exit $$status

# The peers (llmfy, langgraph) go into their own virtualenv, never into the project's.
.venv-bench/.installed: requirements.txt requirements-dev.txt bench/requirements.txt pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r requirements-dev.txt -r bench/requirements.txt
	.venv-bench/bin/pip install --quiet --no-deps -e .
	touch $@

# One run, two passes: servers tuned for speed (fsync off), then durable (fsync on; FLOWS_TEST_DURABLE=1,
# scripts/test-services.md). BENCH_PASSES="durable" (or "fast") runs one of them; BENCH_ARGS go to both.
BENCH_PASSES ?= $(if $(filter --durable,$(BENCH_ARGS)),durable,fast durable)
bench: .venv-bench/.installed
	@for pass in $(BENCH_PASSES); do \
		if [ "$$pass" = durable ]; then durable=1; flag=--durable; else durable=0; flag=; fi; \
		echo "== make bench: $$pass servers =="; \
		PATH="$(CURDIR)/.venv-bench/bin:$$PATH" FLOWS_TEST_DURABLE=$$durable \
			scripts/with-test-services .venv-bench/bin/python bench/run.py $$flag $(BENCH_ARGS) || exit 1; \
	done

clean:
	rm -rf $(VENV) .venv-bench build dist *.egg-info .pytest_cache .hypothesis .ruff_cache .mypy_cache

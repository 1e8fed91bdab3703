# Every target bootstraps what it needs: uv and .venv are created from the lock files when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
LOCKS := requirements/dev.lock requirements/service.lock
STAMP := $(VENV)/.synced
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements/dev.lock)
PYTEST_ARGS ?=
LINT_PATHS := app tests bench examples

.PHONY: help venv bytecode test test-fast fuzz lint types ci serve lock bench bench-engine bench-service bench-optimization example optimize-demo clean

help:
	@echo "make serve   start the server (SQLite, simulated endpoint) on http://127.0.0.1:8000"
	@echo "make test    run the whole test suite"
	@echo "make fuzz    schemathesis and the hostile-input suite (no 5xx, no stalls)"
	@echo "make lint    ruff + mypy"
	@echo "make bench   run the benchmarks under bench/"

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# Bytecode is compiled ahead: where PYTHONDONTWRITEBYTECODE is set (as in many images and CI
# machines) every process would otherwise compile every module it imports, and each server
# (HTTP process and runner child) would spend seconds of CPU on it at start.
$(STAMP): $(UV) $(LOCKS) pyproject.toml
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	@touch $(STAMP)

venv: $(STAMP)

# The project's own modules change between runs: compile what changed (a no-op otherwise).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 app

test: bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: bytecode
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Schemathesis against the OpenAPI document (keys and open mode) and the hostile-input suite;
# both are part of `make test` too.
fuzz: $(STAMP)
	$(BIN)/python -m pytest tests/integration/service/test_schemathesis.py tests/integration/service/hostile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

types: $(STAMP)
	$(BIN)/mypy

ci: lint test

# The embedded default: SQLite under ./data, migrated at start, simulated endpoints, no API
# keys (loopback only).
serve: bytecode
	$(BIN)/inf-engine serve --open

example: $(STAMP)
	$(BIN)/python examples/extract_and_compare.py

optimize-demo: $(STAMP)
	$(BIN)/python examples/optimize_demo.py

bench: bench-engine bench-service bench-optimization

bench-engine: $(STAMP)
	$(BIN)/python -m bench.engine_bench

# Evaluation vs a plain batch (ratios), the dry-run projection vs the calls a run makes (exact counts).
bench-optimization: $(STAMP)
	$(BIN)/python -m bench.optimization_bench

# SQLite always; Postgres too when TEST_DATABASE_URL names a server.
bench-service: $(STAMP)
	$(BIN)/python -m bench.service_bench

# The hardening probes (ReDoS, NUL, template bomb, stalled runner, event streams) against a real server;
# PROBE_ARGS="--database-url postgresql+asyncpg://..." runs them on a fresh Postgres database.
.PHONY: probes
probes: $(STAMP)
	$(BIN)/python -m bench.probes $(PROBE_ARGS)

# Re-pin every dependency (needs the registry); commit the changed lock files.
lock: $(UV)
	$(UV) pip compile pyproject.toml --python-version 3.11 --no-annotate --no-header --extra dev -o requirements/dev.lock
	$(UV) pip compile pyproject.toml --python-version 3.11 --no-annotate --no-header --extra service -o requirements/service.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

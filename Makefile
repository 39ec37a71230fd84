# The two commands of the quick start are `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NATS_URL ?= $(or $(SAFETYMON_NATS_URL),nats://127.0.0.1:4222)

.PHONY: demo test test-fast lint fmt bench chaos fuzz up down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	@touch $(STAMP)

demo: $(STAMP) ## set up, start the services on embedded defaults, run the demo trial feed
	$(BIN)/safetymon demo

test: $(STAMP) ## set up, then every layer: unit, contract, integration (real NATS + SMTP), e2e
	@scripts/ensure-nats.sh "$(NATS_URL)" "$(BIN)/nats-server"
	SAFETYMON_NATS_URL="$(NATS_URL)" $(BIN)/pytest -q
	$(MAKE) --no-print-directory lint

lint: $(STAMP) ## ruff + mypy + import contracts
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## the benchmarks in bench/, printing their figures
	@scripts/ensure-nats.sh "$(NATS_URL)" "$(BIN)/nats-server"
	SAFETYMON_NATS_URL="$(NATS_URL)" $(BIN)/python bench/ingest_throughput.py
	SAFETYMON_NATS_URL="$(NATS_URL)" $(BIN)/python bench/alert_latency.py
	SAFETYMON_NATS_URL="$(NATS_URL)" $(BIN)/python bench/import_lb.py
	$(BIN)/python bench/report_1m.py
	$(BIN)/python bench/replay_1m.py
	$(BIN)/python bench/chaos.py

chaos: $(STAMP) ## fault injection: 10,000 events, 24 kill -9s, a NATS restart, an SMTP outage (own NATS + SMTP; SEED=N repeats a run)
	$(BIN)/python bench/chaos.py $(if $(SEED),--seed $(SEED))

fuzz: $(STAMP) ## the full fuzzing profile: over 10,000 generated inputs (make test runs a sample)
	@scripts/ensure-nats.sh "$(NATS_URL)" "$(BIN)/nats-server"
	SAFETYMON_NATS_URL="$(NATS_URL)" SAFETYMON_FUZZ_PROFILE=full $(BIN)/pytest -q tests/fuzz

up: ## docker compose, for machines that have a Docker engine
	docker compose up --build -d

down:
	docker compose down

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

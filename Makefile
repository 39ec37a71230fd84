# The two commands of the quick start are `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NATS_URL ?= $(or $(SAFETYMON_NATS_URL),nats://127.0.0.1:4222)
# Lock files, made by `make lock` from pyproject.toml: every package with its version and hashes.
# The runtime lock is what a deployment installs; the dev lock adds every extra (test, lint, lock)
# under the runtime lock's pins, and is what the virtual environment here is built from.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# Programs the tests need that no Python package ships, installed from Debian's packages when
# missing (override a path to check another file): Chromium for the DSMB report's HTML test
# (playwright drives it; a browser download of playwright's own cannot be fetched here), and
# openssl for the SMTP STARTTLS test's self-signed certificate, and Prometheus for the test
# that scrapes the services' /metrics with a real one (tests/integration/test_prometheus.py).
CHROMIUM ?= /usr/bin/chromium
OPENSSL ?= /usr/bin/openssl
PROMETHEUS ?= /usr/bin/prometheus

.PHONY: demo dev-up test unit lint fmt bench chaos fault fuzz screenshots up down clean lock

# --require-hashes: pip refuses any file whose sha256 is not in the lock, and any package the
# lock does not pin. The project itself goes in last, without dependencies and without build
# isolation, so that even its build backend (setuptools) is the locked one.
$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "could not create $(VENV) with $(PYTHON): on Debian, apt-get install python3-venv" >&2; \
	  rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(CHROMIUM):
	@scripts/ensure-debian-package.sh chromium "$@"

$(OPENSSL):
	@scripts/ensure-debian-package.sh openssl "$@"

$(PROMETHEUS):
	@scripts/ensure-debian-package.sh prometheus "$@"

# Keeps the locked versions that still satisfy pyproject.toml; UPGRADE=1 takes the newest allowed.
lock: $(STAMP) ## regenerate the lock files from pyproject.toml (UPGRADE=1: newest versions allowed)
	scripts/lock.sh "$(BIN)/pip-compile" "$(LOCK)" "$(DEV_LOCK)" $(if $(UPGRADE),--upgrade)

# The demo and dev-up are developer tools (python -m tools, tools/cli.py): they start a private
# nats-server and an SMTP sink; `safetymon up` itself runs only against configured servers.
demo: $(STAMP) ## set up, start the services on embedded defaults, run the demo trial feed, keep them up for the console (Ctrl-C stops)
	$(BIN)/python -m tools demo --keep-running

dev-up: $(STAMP) ## the services on an embedded nats-server and SMTP sink with the demo routing, no feed (Ctrl-C stops)
	$(BIN)/python -m tools up

test: $(STAMP) $(CHROMIUM) $(OPENSSL) $(PROMETHEUS) ## set up, then every layer: unit, contract, integration (real NATS + SMTP), e2e
	@scripts/ensure-nats.sh "$(NATS_URL)" "$(BIN)/nats-server"
	SAFETYMON_NATS_URL="$(NATS_URL)" PROMETHEUS="$(PROMETHEUS)" $(BIN)/pytest -q
	$(MAKE) --no-print-directory lint

# The layer to run while editing; `make test` runs the slow tests too.
unit: $(STAMP) ## the fast unit layer: pytest tests/unit -m 'not slow'
	$(BIN)/pytest -q tests/unit -m 'not slow'

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

fault: $(STAMP) ## fault run on a 3-node JetStream cluster (R3) with partitioned rules workers: 10,000 events, kill -9 a NATS node and workers
	$(BIN)/python bench/fault_cluster.py --events 10000 $(if $(SEED),--seed $(SEED))

screenshots: $(STAMP) $(CHROMIUM) ## screenshots of the console's inbox, alert and participant pages -> docs/screenshots/
	$(BIN)/python scripts/screenshots.py docs/screenshots

fuzz: $(STAMP) ## the full fuzzing profile: over 10,000 generated inputs (make test runs a sample)
	@scripts/ensure-nats.sh "$(NATS_URL)" "$(BIN)/nats-server"
	SAFETYMON_NATS_URL="$(NATS_URL)" SAFETYMON_FUZZ_PROFILE=full $(BIN)/pytest -q tests/fuzz

up: ## docker compose, for machines that have a Docker engine
	docker compose up --build -d

down:
	docker compose down

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Relata: two commands on a fresh machine — `make run` and `make test`.
# Without RELATA_DATABASE_URL / RELATA_REDIS_URL, embedded PostgreSQL and Redis (Valkey)
# from PyPI wheels are started with their data under .relata/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint openapi bench bench-automations bench-webhooks bench-forms clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app.devservices --database relata -- $(BIN)/relata run

test: $(STAMP)
	$(BIN)/python -m app.devservices --data .relata/test --database postgres -- \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests

openapi: $(STAMP)
	$(BIN)/python -m app.export_schemas

# Load benchmarks against a database made by `python -m bench.generate` (see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.load $(BENCH_ARGS)

# Automations (issue 4): event -> effect latency and worker throughput vs a bare arq worker.
bench-automations: $(STAMP)
	$(BIN)/python -m bench.automations $(BENCH_ARGS)

bench-webhooks: $(STAMP)
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

# Web forms (issue 5): public submissions at 200/s vs a bare FastAPI endpoint doing one INSERT.
bench-forms: $(STAMP)
	$(BIN)/python -m bench.forms $(BENCH_ARGS)

clean:
	rm -rf .relata/test

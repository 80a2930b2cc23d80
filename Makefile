# buurtalert: `make run` brings the whole system up, `make test` runs every test.
# Both work on a fresh machine with Python 3.11, Java 17 + Maven and Go: they
# install what they need (uv and the Python packages, the Kafka jars, FerretDB).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
UV_VERSION := 0.13.9
TOOLS := $(CURDIR)/.local/tools
UV := $(TOOLS)/bin/uv
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
INGEST_PORT ?= 8080

.PHONY: help run down test lint bench eval train asyncapi infra env clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python python3
	@echo "building deduce's lookup tables (a minute or two, once per environment)"
	$(BIN)/python -c "from deduce import Deduce; Deduce()" 2>&1 | grep -v "^INFO" || true
	touch $@

env: $(VENV)/.synced ## Create the Python environment (.venv) from uv.lock

infra: ## Install and start Kafka and FerretDB (deploy/local/stack.sh up)
	deploy/local/stack.sh up

run: env infra ## Run the whole system locally: infrastructure, topics, demo data, services
	$(BIN)/buurtalert topics create
	$(BIN)/buurtalert directory load deploy/demo/weert/directory.yaml
	$(BIN)/buurtalert directory load deploy/demo/bocholt/directory.yaml --municipality-file deploy/demo/bocholt/municipality.yaml
	deploy/local/services.sh up
	@echo
	@echo "buurtalert is running. Post a report:"
	@echo "  curl -X POST http://127.0.0.1:$(INGEST_PORT)/reports \\"
	@echo "    -H 'Authorization: Bearer demo-token-buurtpreventie' -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"report_id\": \"demo-1\", \"group\": \"boshoven-noord\", \"reporter\": \"+31 6 12345678\", \"text\": \"Verdachte man met rode jas en rugzak probeert deuren, 112 gebeld\"}'"
	@echo "See it arrive at the regiegroep's mailbox: http://127.0.0.1:8025/"
	@echo "Logs: .local/logs/   Stop everything: make down"

down: ## Stop the services and the infrastructure (data is kept in .local/)
	deploy/local/services.sh down
	deploy/local/stack.sh down

lint: env ## ruff and mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: env ## Run every test: lint, types, AsyncAPI freshness, unit, integration, end to end
	deploy/local/stack.sh install
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest

eval: env ## Moderation judged on data it was not fitted on (grouped cross-validation, held-back sources); fails when a goal is missed
	$(BIN)/python -m buurtalert.moderation.evaluate

train: env ## Train moderation's model from the labelled corpus (writes services/moderation/.../models/)
	$(BIN)/python -m buurtalert.moderation.training

asyncapi: env ## Regenerate docs/asyncapi/ from the services' code
	$(BIN)/buurtalert asyncapi --out docs/asyncapi

bench: env infra ## Benchmarks against baselines measured in the same run; writes docs/benchmarks.md, fails when a goal is missed
	$(BIN)/python -m bench

clean: down ## Stop everything and delete local data, logs and environments
	rm -rf .local .venv

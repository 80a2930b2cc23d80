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
# FerretDB's backend for deploy/local/stack.sh: postgresql (the default) or sqlite. On PostgreSQL
# every lookup of the message path stays flat as the data grows, on SQLite it scans
# (`python -m bench.store`, docs/benchmarks.md; the whole pipeline's cost growth in `make bench`).
BUURTALERT_DB_BACKEND ?= postgresql
export BUURTALERT_DB_BACKEND
REVIEW_PORT ?= 8084
# Development only: the password of the demo users `make run` creates for the review console
# (a moderator; a coordinator of the Boshoven groups; the wijkagent of Boshoven).
DEMO_REVIEW_PASSWORD := demo-review-password

# Deployment files (deploy/docker, deploy/compose, deploy/helm), validated offline by `make manifests`
# with tools built or fetched once into .local/tools: helm and kubeconform from the Go module
# proxy, compose-check (deploy/compose/check, on compose-go) and the Kubernetes JSON schemas from
# the kubernetes-validate wheel on PyPI, and dockerfile-check (deploy/docker/check, on BuildKit's
# Dockerfile parser and linter). No image is ever built by a test.
HELM_VERSION := v3.22.0
KUBECONFORM_VERSION := v0.8.0
KUBERNETES_SCHEMAS_VERSION := 1.37.0
KUBERNETES_VERSION := 1.33.0
HELM := $(TOOLS)/bin/helm
KUBECONFORM := $(TOOLS)/bin/kubeconform
COMPOSE_CHECK := $(TOOLS)/bin/compose-check
DOCKERFILE_CHECK := $(TOOLS)/bin/dockerfile-check
K8S_SCHEMAS := $(TOOLS)/k8s-schemas
# The services with an image,
# and those that serve HTTP (their image has a HEALTHCHECK).
SERVICES := ingest moderation routing channels review
HTTP_SERVICES := ingest review
IMAGE_REGISTRY ?= buurtalert
IMAGE_TAG ?= latest

.PHONY: help run down test lint manifests helm-topics images bench eval train asyncapi infra env clean browser

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

infra: ## Install and start Kafka, FerretDB (on PostgreSQL or SQLite: BUURTALERT_DB_BACKEND) and Dovecot (deploy/local/stack.sh up)
	deploy/local/stack.sh up

run: env infra ## Run the whole system locally: infrastructure, topics, demo data, services
	$(BIN)/buurtalert topics create
	$(BIN)/buurtalert directory load deploy/demo/weert/directory.yaml
	$(BIN)/buurtalert directory load deploy/demo/bocholt/directory.yaml --municipality-file deploy/demo/bocholt/municipality.yaml
	@# development only: demo users for the review console (replaced if they exist)
	echo "$(DEMO_REVIEW_PASSWORD)" | $(BIN)/buurtalert review user add --municipality weert-demo --role moderator --password-stdin demo
	echo "$(DEMO_REVIEW_PASSWORD)" | $(BIN)/buurtalert review user add --municipality weert-demo --role coordinator --groups boshoven-noord,boshoven-zuid,boshoven-regie --password-stdin demo-coordinator
	echo "$(DEMO_REVIEW_PASSWORD)" | $(BIN)/buurtalert review user add --municipality weert-demo --role wijkagent --districts boshoven --password-stdin demo-wijkagent
	BUURTALERT_REVIEW_PORT=$(REVIEW_PORT) deploy/local/services.sh up
	@echo
	@echo "buurtalert is running. Post a report:"
	@echo "  curl -X POST http://127.0.0.1:$(INGEST_PORT)/reports \\"
	@echo "    -H 'Authorization: Bearer demo-token-buurtpreventie' -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"report_id\": \"demo-1\", \"group\": \"boshoven-noord\", \"reporter\": \"+31 6 12345678\", \"text\": \"Verdachte man met rode jas en rugzak probeert deuren, 112 gebeld\"}'"
	@echo "See it arrive at the regiegroep's mailbox: http://127.0.0.1:8025/"
	@echo "Review console (what moderation held): http://127.0.0.1:$(REVIEW_PORT)/"
	@echo "  demo users (development only), password $(DEMO_REVIEW_PASSWORD):"
	@echo "    demo (moderator), demo-coordinator (coordinator of boshoven-noord, boshoven-zuid, boshoven-regie),"
	@echo "    demo-wijkagent (wijkagent of the district boshoven)"
	@echo "Logs: .local/logs/   Stop everything: make down"

down: ## Stop the services and the infrastructure (data is kept in .local/)
	deploy/local/services.sh down
	deploy/local/stack.sh down

lint: env ## ruff (lint and format) and mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

browser: ## Install Debian's chromium for the browser tests, if missing (needs root or sudo)
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing chromium from Debian for the review console's browser tests"; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; \
	fi

test: env browser ## Run every test: lint, types, deployment files, AsyncAPI freshness, unit, integration, end to end (browser too)
	deploy/local/stack.sh install
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory manifests
	$(BIN)/python -m pytest

$(TOOLS)/.helm-$(HELM_VERSION):
	GOBIN=$(TOOLS)/bin go install -trimpath -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

$(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION):
	GOBIN=$(TOOLS)/bin go install -trimpath -ldflags "-X main.version=$(KUBECONFORM_VERSION)" github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $@

$(COMPOSE_CHECK): deploy/compose/check/main.go deploy/compose/check/go.mod deploy/compose/check/go.sum
	cd deploy/compose/check && go build -trimpath -o $@ .

$(DOCKERFILE_CHECK): deploy/docker/check/main.go deploy/docker/check/go.mod deploy/docker/check/go.sum
	cd deploy/docker/check && go build -trimpath -o $@ .

$(K8S_SCHEMAS)/.complete-$(KUBERNETES_SCHEMAS_VERSION)-$(KUBERNETES_VERSION): deploy/helm/k8s_schemas.py | $(UV)
	rm -rf $(K8S_SCHEMAS) $(TOOLS)/wheels
	$(TOOLS)/bin/pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	  -d $(TOOLS)/wheels kubernetes-validate==$(KUBERNETES_SCHEMAS_VERSION)
	python3 deploy/helm/k8s_schemas.py $(TOOLS)/wheels/kubernetes_validate-$(KUBERNETES_SCHEMAS_VERSION)-py3-none-any.whl \
	  $(KUBERNETES_VERSION) $(K8S_SCHEMAS)
	touch $@

manifests: env $(TOOLS)/.helm-$(HELM_VERSION) $(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION) $(COMPOSE_CHECK) $(DOCKERFILE_CHECK) $(K8S_SCHEMAS)/.complete-$(KUBERNETES_SCHEMAS_VERSION)-$(KUBERNETES_VERSION) ## Validate the deployment files offline: Dockerfile, compose file, Helm chart, generated topics
	$(BIN)/buurtalert topics manifest --format strimzi --check
	$(DOCKERFILE_CHECK) deploy/docker/Dockerfile build service http-service
	HELM=$(HELM) KUBECONFORM=$(KUBECONFORM) K8S_SCHEMAS=$(K8S_SCHEMAS) KUBERNETES_VERSION=$(KUBERNETES_VERSION) \
	  deploy/helm/validate.sh
	$(COMPOSE_CHECK) deploy/compose/compose.yaml deploy/compose/env/*.env

helm-topics: env ## Regenerate the chart's KafkaTopic resources from topics.py (deploy/helm/buurtalert/templates/topics.yaml)
	$(BIN)/buurtalert topics manifest --format strimzi --out deploy/helm/buurtalert/templates/topics.yaml

images: ## Build the services' images with Docker (IMAGE_REGISTRY, IMAGE_TAG); never run by the tests
	for service in $(SERVICES); do \
	  if [ ! -f services/$$service/pyproject.toml ]; then echo "skipping $$service: services/$$service is not there yet"; continue; fi; \
	  target=service; case " $(HTTP_SERVICES) " in *" $$service "*) target=http-service;; esac; \
	  docker build -f deploy/docker/Dockerfile --build-arg SERVICE=$$service --target $$target \
	    -t $(IMAGE_REGISTRY)/buurtalert-$$service:$(IMAGE_TAG) .; \
	done

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

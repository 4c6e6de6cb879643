# One target per common task; each is a one-line call of `inv` in the kit's own virtualenv.
# `make help` lists them. `make up` is the whole first-run: virtualenv, install, start, status.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INV := $(BIN)/inv

.DEFAULT_GOAL := help
.PHONY: help up install down restart status logs doctor backup config users test test-images host-tools unit lint smoke examples

help: ## list the targets
	@grep -E '^[a-z][a-z0-9_.-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[compose]'
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[compose,test]'
	@touch $@

up: $(VENV)/.installed ## first run and every run: create settings and secrets, start the server, show status
	$(INV) install up status

install: $(VENV)/.installed ## create or complete .env, secrets, data layout and config
	$(INV) install

down: $(VENV)/.installed ## stop the server (data is kept)
	$(INV) down

restart: $(VENV)/.installed ## restart every service and wait for health
	$(INV) restart

status: $(VENV)/.installed ## state, health and ports of every service
	$(INV) status

logs: $(VENV)/.installed ## recent logs of every service
	$(INV) logs

doctor: $(VENV)/.installed ## check the host and the stack; exits non-zero on any failure
	$(INV) doctor

backup: $(VENV)/.installed ## consistent backup of data, config, settings and users (stops the stack briefly)
	$(INV) backup

config: $(VENV)/.installed ## the merged compose file (secrets masked)
	$(INV) config

users: $(VENV)/.installed ## list web login users
	$(INV) users.list

smoke: $(VENV)/.installed ## prove the running server works: login, task, scalar, file upload and download
	$(INV) smoke

$(VENV)/.examples-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[compose,examples]'
	@touch $@

examples: $(VENV)/.examples-installed ## run the ClearML SDK examples against the server (agents needed for pipelines)
	$(INV) examples

# host tools the test images and the connect-script tests need, installed with apt-get if missing
# (quiet when all exist)
host-tools:
	@scripts/host-tools.sh

test-images: host-tools $(VENV)/.test-installed ## build the local test images (cached by content)
	$(BIN)/python -m tests.images.build

test: host-tools $(VENV)/.test-installed ## every test: unit, contract, integration (builds the test images first)
	$(BIN)/python -m tests.images.build
	$(BIN)/pytest

unit: $(VENV)/.test-installed ## unit and contract tests only (no Docker engine needed)
	$(BIN)/pytest -m "not integration and not real_images"

.PHONY: host
host: $(VENV)/.installed ## how client machines connect: URLs, connect.sh commands, next steps
	$(INV) host

# The two commands a new user needs: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# devtools/ (stand-ins, demo tooling) is imported from the checkout; the airflow_rollout package is installed.
export PYTHONPATH := $(CURDIR)

.PHONY: install chromium demo stop up down distributed distributed-down test test-distributed lint bench checklists

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

demo: install
	$(BIN)/python -m devtools.demo up

stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devtools.demo stop; else echo "nothing to stop"; fi

# Airflow on this machine over every profile in include/systems, connections from .env (see .env.example).
up: install
	$(BIN)/python -m devtools.up start

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devtools.up stop; else echo "nothing to stop"; fi

# What docker-compose.yml describes, without Docker: CeleryExecutor, Redis (Debian's redis-server, installed by apt-get when
# missing), PostgreSQL, and api-server, scheduler, dag-processor, triggerer and two Celery workers as processes of their
# own (devtools/distributed.py). Connections from .env, as for `make up`.
distributed: install
	$(BIN)/python -m devtools.distributed start

distributed-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devtools.distributed stop; else echo "nothing to stop"; fi

# Debian's chromium for the browser tests (tests/browser, driven by Playwright): apt-get installs it when it is missing
# (as root, `apt-get update` first); silent when it is there. Playwright's own browser download cannot reach its host here.
chromium: install
	@$(BIN)/python -m devtools.chromium

# A JUnit report and the failed tests' names stay under build/ (git-ignored), so a failed run can be read afterwards.
# The browser tests' screenshots go to build/ui/.
test: install chromium
	@mkdir -p build
	$(BIN)/python -m pytest --junitxml=build/junit.xml

# Releases on that distributed Airflow (tests/distributed, about 8 minutes): apart from `make test`, which excludes them.
test-distributed: install
	@mkdir -p build
	$(BIN)/python -m pytest -m distributed tests/distributed --junitxml=build/junit-distributed.xml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py

checklists: install
	$(BIN)/python -m devtools.checklist_summary

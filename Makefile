# Carely PEP: `make run` brings up the embedded default, `make test` runs the whole suite.
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
TYPED := carely/lib carely/orgs carely/api carely/web carely/audit carely/privacy contacts files consent messaging campaigns dsr

.PHONY: run test obligations lint format typecheck smoke install install-test chromium clean-var

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps make re-runs instant while pyproject.toml is unchanged.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test chromium

# Browser tests use Debian's chromium (never a downloaded browser build).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py bootstrap_demo
	@echo "Starting web (http://127.0.0.1:$${CARELY_PORT:-8000}), Celery worker and beat; Ctrl-C stops all."
	$(BIN)/honcho --procfile Procfile.embedded start 2>&1 || true

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

obligations: install-test
	$(BIN)/pytest -q -p no:randomly --obligations-report=var/obligations.json $(PYTEST_ARGS) || true
	$(BIN)/python -m carely.lib.obligations var/obligations.json

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

smoke: install
	bash .ci/smoke

clean-var:
	rm -rf var

# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCALES := ideaforge/i18n/locales

.PHONY: run test install lint typecheck check-migrations compose-config messages clean load

# torch goes first, pinned to the local CPU build, so sentence-transformers pulls no CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Load test (issue 8): locust against two web processes, PostgreSQL and Redis on this machine; a few
# minutes. Not part of `make test`. Arguments: make load LOAD_ARGS="--users 20,50 --seconds 30".
LOAD_STAMP := $(VENV)/.installed-load
LOAD_ARGS ?=
$(LOAD_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[load]"
	touch $(LOAD_STAMP)

load: $(LOAD_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/load/run.py $(LOAD_ARGS)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/ideaforge demo load
	HF_HUB_OFFLINE=1 $(BIN)/ideaforge serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ideaforge challenges ideas ml tests

typecheck: $(STAMP)
	$(BIN)/mypy ideaforge challenges ideas ml tests

# Validates compose.yaml with whichever compose client is installed (no Docker engine is needed).
COMPOSE_CHECK_ENV := IDEAFORGE_SECRET_KEY=compose-config-check-only-0123456789abcdef
compose-config:
	@if docker compose version >/dev/null 2>&1; then \
		$(COMPOSE_CHECK_ENV) docker compose config --quiet && echo "compose.yaml: valid (docker compose)"; \
	elif command -v docker-compose >/dev/null 2>&1; then \
		$(COMPOSE_CHECK_ENV) docker-compose config --quiet && echo "compose.yaml: valid (docker-compose)"; \
	elif [ "$$CI" = "true" ]; then echo "compose client missing in CI (apt-get install docker-compose)"; exit 1; \
	else echo "SKIPPED compose check: no compose client installed (apt-get install docker-compose)"; fi

test: $(STAMP) lint typecheck compose-config
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

messages: $(STAMP)
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -k _l -k gettext -k ngettext:1,2 \
		-o $(LOCALES)/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching -i $(LOCALES)/messages.pot -d $(LOCALES) -l fr

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# aimw: `make run` serves the demo gateway, `make test` runs the whole suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where `make run` listens: namespaced, so an exported HOST (shells and CI set one) never
# decides it; an empty value would listen on every interface, so it is refused.
AIMW_HOST ?= 127.0.0.1
AIMW_PORT ?= 8000
CLAUDE_CODE_VERSION := 2.1.329
CLAUDE_CODE_DIR := .cache/claude-code
CLAUDE_BIN := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude

.PHONY: setup run test claude-code bench bench-quick clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

run: setup
	@test -n "$(strip $(AIMW_HOST))" || { echo "make run: AIMW_HOST is empty (that would listen on every interface)" >&2; exit 2; }
	$(BIN)/hypercorn -k uvloop recipes.demo:app --bind $(strip $(AIMW_HOST)):$(AIMW_PORT)

$(CLAUDE_BIN):
	npm install --prefix $(CLAUDE_CODE_DIR) --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

claude-code: $(CLAUDE_BIN)

test: setup claude-code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	AIMW_CLAUDE_BIN=$(abspath $(CLAUDE_BIN)) $(BIN)/python -m pytest

bench:
	bench/run.sh $(BENCH_ARGS)

bench-quick:
	bench/run.sh --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache bench/.venv bench/.venv-litellm

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

.PHONY: setup run test claude-code redis-server bench bench-quick clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

run: setup
	@test -n "$(strip $(AIMW_HOST))" || { echo "make run: AIMW_HOST is empty (that would listen on every interface)" >&2; exit 2; }
	$(BIN)/hypercorn -k uvloop --config recipes/hypercorn.toml recipes.demo:app --bind $(strip $(AIMW_HOST)):$(AIMW_PORT)

$(CLAUDE_BIN):
	npm install --prefix $(CLAUDE_CODE_DIR) --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

claude-code: $(CLAUDE_BIN)

# The rate-limiting tests start their own redis-server (Debian's package) on a free loopback port.
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq redis-server; \
	  else \
	    echo "make test: redis-server is missing and cannot be installed here (not root, or no apt-get):" \
	      "install it (sudo apt-get install redis-server); until then the Redis tests are skipped" >&2; \
	  fi; }

test: setup claude-code redis-server
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	AIMW_CLAUDE_BIN=$(abspath $(CLAUDE_BIN)) $(BIN)/python -m pytest

bench:
	bench/run.sh $(BENCH_ARGS)

bench-quick:
	bench/run.sh --quick $(BENCH_ARGS)

# The long soak (bench/soak/README.md): 1,000 streams on one worker, 2,000 on two, then 1,000 through
# recipes.config; two rounds each, every token 20-50 ms apart, faults, clients leaving. ~17 min here.
.PHONY: soak
soak: setup
	status=0; \
	$(BIN)/python -m bench.soak --streams 1000 --workers 1 --rounds 2 --hold 10 --duration 20 --upstream-timeout 5 $(SOAK_ARGS) || status=1; \
	$(BIN)/python -m bench.soak --streams 2000 --workers 2 --rounds 2 --hold 10 --duration 20 --upstream-timeout 5 $(SOAK_ARGS) || status=1; \
	$(BIN)/python -m bench.soak --streams 1000 --workers 1 --rounds 2 --hold 10 --duration 20 --upstream-timeout 5 --recipe config $(SOAK_ARGS) || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) .cache .pytest_cache bench/.venv bench/.venv-litellm

#!/usr/bin/env bash
# The benchmark in one command: installs its tools (bench/setup.sh), then runs
# `python -m bench` with bench/.venv's Python. Options pass through, e.g.
#   bench/run.sh --quick --targets direct,aimw
#   bench/run.sh --scenarios stream-c32 --duration 20 --hypercorn-args '-k uvloop'
#   bench/run.sh --targets direct,aimw --baseline HEAD~1   # aimw before and after, in one run
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec bench/.venv/bin/python -m bench "$@"

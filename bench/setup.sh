#!/usr/bin/env bash
# Install the benchmark's tools, each into its own virtualenv (never into aimw's .venv):
#   bench/.venv          aimw[otel] (editable) + bench/requirements.txt (matplotlib, uvloop)
#   bench/.venv-litellm  bench/requirements-litellm.txt (the LiteLLM proxy), skipped with --no-litellm
# Re-running is cheap: a venv is rebuilt only when its requirements (or pyproject.toml) changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WITH_LITELLM=1
for arg in "$@"; do
  case "$arg" in
    --no-litellm) WITH_LITELLM=0 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "bench/setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# install_venv DIR STAMP_INPUTS... -- PIP_ARGS...
install_venv() {
  local dir="$1"; shift
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  local stamp="$dir/.installed"
  if [ -f "$stamp" ] && [ -z "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
    echo "bench/setup.sh: $dir is up to date"
    return
  fi
  echo "bench/setup.sh: installing $dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip
  "$dir/bin/python" -m pip install --quiet "$@"
  touch "$stamp"
}

install_venv bench/.venv bench/requirements.txt pyproject.toml -- -e '.[otel]' -r bench/requirements.txt
if [ "$WITH_LITELLM" = 1 ]; then
  install_venv bench/.venv-litellm bench/requirements-litellm.txt -- -r bench/requirements-litellm.txt
fi

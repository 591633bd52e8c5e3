#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: set-up, lint (ruff, mypy), then
# pytest. Extra arguments go to pytest (e.g. scripts/test.sh tests/icao -x); with
# arguments that name tests, the lint step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
names_tests=0
for arg in "$@"; do
  case "$arg" in tests*|*.py*) names_tests=1 ;; esac
done
if [ "$names_tests" = 0 ]; then
  echo "lint: ruff"
  .venv/bin/ruff check agent tests bench fuzz fixtures
  echo "lint: mypy"
  .venv/bin/mypy agent
fi
exec .venv/bin/python -m pytest "$@"

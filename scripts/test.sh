#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: set-up, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/icao -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

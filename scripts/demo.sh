#!/usr/bin/env bash
# The demo: pcscd with the built-in virtual card, the local BHYT test service and the
# agent with its counter page. No hardware needed. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m agent.demo "$@"

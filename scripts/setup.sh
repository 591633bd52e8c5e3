#!/usr/bin/env bash
# Installs what idagent needs on Debian 12: system packages, a virtual environment
# in .venv, and the package itself (editable) with its test extras.
# Idempotent: run it again and it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# pcscd + vsmartcard-vpcd: the real PC/SC daemon and the virtual reader driver for the
# built-in virtual card; swig + libpcsclite-dev + gcc: pyscard builds from source;
# libzbar0: pyzbar; chromium: the browser tests; python3-venv: the virtual environment;
# xvfb: the X server of the keyboard-wedge tests (XTest into Chromium).
DEB_PACKAGES="pcscd vsmartcard-vpcd pcsc-tools swig libpcsclite-dev libzbar0 gcc python3-dev python3-venv chromium libglib2.0-0 xvfb"
missing=""
for p in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  pcscd_before=$(pidof pcscd || true)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  # Without systemd, the pcscd package starts the daemon from its init script: a pcscd
  # nobody asked for, still running after the tests and the demo (which start and stop
  # their own, agent/sim/pcscd.py). Stop the one this install started, and only that
  # one. (With systemd, pcscd.socket starts it on demand and it exits when idle.)
  if [ ! -d /run/systemd/system ] && [ -z "$pcscd_before" ] && [ -n "$(pidof pcscd || true)" ]; then
    echo "setup: stopping the pcscd the package install started (tests and demo start their own)"
    $SUDO invoke-rc.d pcscd stop >/dev/null 2>&1 || $SUDO /etc/init.d/pcscd stop >/dev/null 2>&1 || true
  fi
fi

# prometheus: promtool checks and unit-tests the fleet alert rules, and a real Prometheus
# scrapes a running agent in the tests (config/prometheus/). Without its recommended
# node exporter, which would start a service on the machine.
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: installing Debian package: prometheus"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.idagent-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# Node + the npm socket.io-client that reader-kit desk software uses: the [compat] tests
# drive it under Node and in Chromium (tests/compat/node, pinned by its package-lock.json).
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing Debian packages: nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
node_stamp=tests/compat/node/node_modules/.idagent-installed
if [ ! -f "$node_stamp" ] || [ tests/compat/node/package-lock.json -nt "$node_stamp" ]; then
  echo "setup: installing the npm test clients (tests/compat/node)"
  (cd tests/compat/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$node_stamp"
fi

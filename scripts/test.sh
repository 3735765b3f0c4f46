#!/usr/bin/env bash
# Install Tutela with its test extras into .venv and run the whole test suite.
# Tests that need PostgreSQL start their own throw-away server from the Debian binaries
# (package `postgresql`); under CI=true a missing PostgreSQL is an error, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest "$@"

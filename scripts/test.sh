#!/usr/bin/env bash
# Installs fidelite with its test extras into ./.venv and runs the whole test suite.
# This is the README's test command; CI (.ci/run) calls this same script.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh tests/ledger -n 0
# The tests run on every core (pytest-xdist; FIDELITE_TEST_WORKERS=N or -n N to choose).
# Suites marked slow run under CI=true (as .ci/run sets) or with --run-slow, and are
# skipped with that reason otherwise (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -n "${FIDELITE_TEST_WORKERS:-auto}" "$@"

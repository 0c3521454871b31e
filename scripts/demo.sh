#!/usr/bin/env bash
# Installs fidelite into ./.venv and runs the main job: `fidelite demo`.
# This is the README's first Quick start command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/fidelite demo "$@"

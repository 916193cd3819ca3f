#!/usr/bin/env bash
# Create (or reuse) .venv and install stablestyle into it: torch first, from the
# local CPU build where one exists, so pip does not pull the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.4,<3"
python -m pip install -q -e ".[test,app]"

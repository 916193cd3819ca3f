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
# the browser test of `stablestyle app` (tests/test_app_browser.py) drives Debian's headless Chromium; it is
# skipped, with the reason printed, where neither is installed nor installable
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && command -v apt-get >/dev/null \
        && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
        || echo "setup_env: could not install chromium and chromium-driver; the app's browser test will be skipped"
fi

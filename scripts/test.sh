#!/usr/bin/env bash
# Set everything up (dev tools, system packages the tests need) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
scripts/setup.sh --dev
export BENTOML_DO_NOT_TRACK=true
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Run the checks and tests. Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
# Usage: scripts/test.sh [--fast] [pytest arguments...]
#   (default) what CI runs (.ci/run): installs what is missing (system packages through apt
#             when root: redis-server, chromium, podman, runc, debootstrap; the dev venvs), then
#             ruff, mypy and the whole suite.
#   --fast    the developer loop: no root, no podman, no browser, no system packages. The dev
#             venv (scripts/setup.sh --dev, cheap when nothing changed), ruff, mypy, then the
#             unit and integration tests not marked `slow`; tests that need redis-server skip
#             where it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
if [[ "${1:-}" == "--fast" ]]; then
  fast=true
  shift
fi
$fast || scripts/install-system-deps.sh
scripts/setup.sh --dev
export BENTOML_DO_NOT_TRACK=true
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
if $fast; then
  export TESTS_FAST=true  # tests/redis_server.py: a missing redis-server skips, not fails
  exec .venv/bin/python -m pytest -m "not slow" tests/unit tests/integration "$@"
fi
exec .venv/bin/python -m pytest "$@"

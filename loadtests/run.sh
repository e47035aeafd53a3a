#!/usr/bin/env bash
# Headless load test of the service and its summary: `loadtests/run.sh --help`, loadtests/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
exec "${PYTHON:-$ROOT/.venv/bin/python}" -m loadtests.run "$@"

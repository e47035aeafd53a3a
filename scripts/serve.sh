#!/usr/bin/env bash
# Serve on http://localhost:3000 with embedded defaults (in-process rate limits: no Redis
# needed), after scripts/setup.sh (which installs only what changed since the last run).
# Extra arguments go to `bentoml serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export BENTOML_DO_NOT_TRACK=true
exec .venv/bin/bentoml serve service:BackgroundRemover --port "${PORT:-3000}" "$@"

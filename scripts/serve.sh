#!/usr/bin/env bash
# Set everything up, then serve on http://localhost:3000 with embedded defaults
# (in-process rate limits: no Redis needed). Extra arguments go to `bentoml serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export BENTOML_DO_NOT_TRACK=true
exec .venv/bin/bentoml serve service:BackgroundRemover --port "${PORT:-3000}" "$@"

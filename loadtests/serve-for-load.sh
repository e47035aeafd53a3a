#!/usr/bin/env bash
# Start the service locally for a load test: rate limits off, UPLOAD_DIR holding the
# /read-file samples. Then, in another shell: UPLOAD_DIR=<same> loadtests/run.sh http://127.0.0.1:$PORT
#
#   PORT [3000]  UPLOAD_DIR [loadtests/.uploads]  OUTPUT_DIR [loadtests/.outputs]
#   extra arguments go to `bentoml serve`; any other service setting can be exported as usual
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export BENTOML_DO_NOT_TRACK=true
export RATE_LIMIT_ENABLED=false
export UPLOAD_DIR=${UPLOAD_DIR:-$ROOT/loadtests/.uploads}
export OUTPUT_DIR=${OUTPUT_DIR:-$ROOT/loadtests/.outputs}
.venv/bin/python -m loadtests.inputs write-uploads "$UPLOAD_DIR"
echo "serving on http://127.0.0.1:${PORT:-3000} with RATE_LIMIT_ENABLED=false, UPLOAD_DIR=$UPLOAD_DIR"
exec .venv/bin/bentoml serve service:BackgroundRemover --port "${PORT:-3000}" "$@"

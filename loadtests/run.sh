#!/usr/bin/env bash
# Headless step-load run of the background-removal service; see loadtests/README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: loadtests/run.sh HOST [extra locust args...]

  e.g. loadtests/run.sh http://127.0.0.1:3000
       MAX_USERS=4 RUN_SECONDS=60 loadtests/run.sh http://127.0.0.1:3999

Runs loadtests/locustfile.py headless with the step shape (+STEP_USERS users every
STEP_SECONDS up to MAX_USERS; stops by itself at RUN_SECONDS) and writes into
loadtests/results/<UTC timestamp>/ (or $RESULTS_DIR):
  locust_stats.csv, locust_failures.csv, locust_exceptions.csv, locust_stats_history.csv
  (--csv, --csv-full-history), report.html, locust.log, summary.md (loadtests/summarize.py).
Exit status: locust's (1 when any request failed).

THE TARGET MUST BE STARTED WITH ITS RATE LIMITS RAISED, or most requests are 429s
(defaults: 10-50 per hour per client). Either
  - RATE_LIMIT_ENABLED=false, or large RATE_LIMIT_*_PER_HOUR values
    (REMOVE_BG, PREVIEW, BASE64, READ_FILE, BATCH), e.g. 1000000; or
  - a load-test key: start it with API_KEYS=...,<key> and run with LOADTEST_API_KEY=<key>
    (sent as X-API-Key). Limits count per key, so that key still needs raised limits.
loadtests/serve-for-load.sh starts a local server that way (limits off, UPLOAD_DIR filled).

/read-file needs the samples in the server's UPLOAD_DIR: set UPLOAD_DIR=<that folder> here
(for a server on the same host) and this script writes them; otherwise ReadFileUser logs the
missing paths once and idles.

Environment:
  STEP_USERS [2]  STEP_SECONDS [30]  MAX_USERS [10]  RUN_SECONDS [300]  SPAWN_RATE
  LOADTEST_API_KEY  LOADTEST_SEED  LOADTEST_BUCKETS (e.g. 0.25MP,1MP)  LOADTEST_MAX_BACKOFF
  LOADTEST_REPEAT_SHARE [0.3: share of image requests repeating a recent one exactly]
  LOADTEST_READ_FILE_PATHS  UPLOAD_DIR  RESULTS_DIR  PYTHON [.venv/bin/python]
USAGE
}

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    usage
    [[ $# -ge 1 ]] && exit 0 || exit 2
fi
HOST=${1%/}
shift

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${RESULTS_DIR:-$ROOT/loadtests/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
cd "$ROOT"

if ! "$PYTHON" - "$HOST" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/health", timeout=10) as response:
        print(f"target {sys.argv[1]}: /health {response.status} {response.read(200).decode()}")
except urllib.error.HTTPError as error:
    print(f"target {sys.argv[1]}: /health {error.code} (running, not healthy)")
except OSError as error:
    sys.exit(f"target {sys.argv[1]} is not reachable: {error}")
PY
then
    exit 1
fi

if [[ -n ${UPLOAD_DIR:-} ]]; then
    "$PYTHON" -m loadtests.inputs write-uploads "$UPLOAD_DIR"
fi

echo "results: $OUT"
status=0
LOADTEST_CACHE_FILE="$OUT/cache.json" \
"$PYTHON" -m locust -f loadtests/locustfile.py --headless --host "$HOST" \
    --csv "$OUT/locust" --csv-full-history --html "$OUT/report.html" \
    --logfile "$OUT/locust.log" "$@" || status=$?

if [[ -f $OUT/locust_stats.csv ]]; then
    "$PYTHON" loadtests/summarize.py "$OUT" --host "$HOST" --out "$OUT/summary.md"
    echo "summary: $OUT/summary.md"
else
    echo "locust wrote no stats (exit $status); see $OUT/locust.log" >&2
fi
exit "$status"

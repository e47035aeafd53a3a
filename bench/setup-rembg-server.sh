#!/usr/bin/env bash
# Install rembg's own HTTP server (`rembg s`) in a venv of its own, for bench/performance.py.
#
#   bash bench/setup-rembg-server.sh            # creates /work/main/.venv-rembg (or $REMBG_VENV)
#
# rembg[cli] pins uvicorn<0.41, which conflicts with bentoml: it must never share the service's
# venv. The u2netp model is not downloaded: bench/performance.py points rembg at the file
# import_model.py put in rembg's cache, or says why rembg was not run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${REMBG_VENV:-$here/.venv-rembg}"
python="${PYTHON:-python3}"
version="2.0.86"

if [ -x "$venv/bin/rembg" ] && "$venv/bin/pip" show rembg 2>/dev/null | grep -qx "Version: $version"; then
    echo "rembg $version already in $venv"
    exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "rembg[cpu,cli]==$version"
# The first import compiles pymatting's numba code (~40 s); do it now, not inside the benchmark.
"$venv/bin/python" -c "import rembg.bg" >/dev/null
echo "rembg $version installed in $venv"

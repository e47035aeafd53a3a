#!/usr/bin/env bash
# Create .venv, install the pinned dependencies, import the model into BentoML's store.
# Usage: scripts/setup.sh [--dev]    (--dev adds the test and load-test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
export BENTOML_DO_NOT_TRACK=true
python3 -m venv .venv
requirements=requirements.txt
[[ "${1:-}" == "--dev" ]] && requirements=requirements-dev.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
.venv/bin/python import_model.py

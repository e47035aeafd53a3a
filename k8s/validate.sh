#!/usr/bin/env bash
# Render every kustomization under k8s/ and check it: Kubernetes schemas (kubernetes-validate,
# strict), policy (checkov with k8s/.checkov.yaml), then the acceptance assertions of
# tests/k8s/test_manifests.py. Installs nothing: it uses what it finds and says what is
# missing. No cluster is contacted.
#
#   k8s/validate.sh            # base, dev, prod, and prod with each optional component
#   k8s/validate.sh prod       # one target
#   k8s/validate.sh keda       # prod with components/keda listed first (so: model-pool)
#   KUBE_VERSION=1.31.0 k8s/validate.sh
#
# Tools, in this order of preference:
#   kubectl              .venv-policy/bin/kubectl (k8s/requirements-policy.txt), else PATH
#   kubernetes-validate  .venv/bin/kubernetes-validate, else PATH
#   checkov              .venv-policy/bin/checkov, else PATH
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
kube_version="${KUBE_VERSION:-1.30.0}"

find_tool() { # name, preferred path...
    local name="$1"
    shift
    for candidate in "$@"; do
        if [[ -x "$candidate" ]]; then
            echo "$candidate"
            return
        fi
    done
    command -v "$name" || true
}

kubectl_bin="$(find_tool kubectl "$root/.venv-policy/bin/kubectl")"
validate_bin="$(find_tool kubernetes-validate "$root/.venv/bin/kubernetes-validate")"
checkov_bin="$(find_tool checkov "$root/.venv-policy/bin/checkov")"

if [[ -z "$kubectl_bin" ]]; then
    echo "kubectl not found: python3 -m venv .venv-policy && .venv-policy/bin/pip install -r k8s/requirements-policy.txt" >&2
    exit 2
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(base dev prod keda model-pool)
fi

out="$(mktemp -d)"
trap 'rm -rf "$out" "$here"/overlays/.with-*-"$$"' EXIT
status=0

# prod with an optional component listed first among its components, as k8s/README.md says to
# enable one: a copy of the overlay next to it, so that its relative paths hold.
with_component() { # component name -> directory
    local dir="$here/overlays/.with-$1-$$"
    mkdir -p "$dir"
    cp "$here/overlays/prod/"* "$dir/"
    "$root/.venv/bin/python" - "$dir/kustomization.yaml" "$1" <<'EOF_PY'
import sys

import yaml

path, component = sys.argv[1], sys.argv[2]
kustomization = yaml.safe_load(open(path))
kustomization["components"].insert(0, f"../../components/{component}")
yaml.safe_dump(kustomization, open(path, "w"), sort_keys=False)
EOF_PY
    echo "$dir"
}

for target in "${targets[@]}"; do
    case "$target" in
        base) dir="$here/base" ;;
        dev | prod) dir="$here/overlays/$target" ;;
        *) dir="$(with_component "$target")" ;;
    esac
    file="$out/$target/rendered.yaml"
    mkdir -p "$out/$target"
    echo "== $target: kubectl kustomize ${dir#"$root"/}"
    "$kubectl_bin" kustomize "$dir" >"$file"
    echo "   $(grep -c '^kind:' "$file") documents: $(grep '^kind:' "$file" | cut -d' ' -f2 | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"

    if [[ -n "$validate_bin" ]]; then
        echo "== $target: kubernetes-validate --strict -k $kube_version (CRDs have no schema: warned, not failed)"
        "$validate_bin" --strict --quiet -k "$kube_version" "$file" || status=1
    else
        echo "!! kubernetes-validate not found (pip install kubernetes-validate): schema check skipped"
    fi

    if [[ -n "$checkov_bin" ]]; then
        skip=()
        # The base's image is `bg-remover:latest` until an overlay pins a tag; the dev image is
        # loaded locally, never pulled (k8s/.checkov.yaml).
        case "$target" in
            base) extra=CKV_K8S_14 ;;
            dev) extra=CKV_K8S_15 ;;
            *) extra="" ;;
        esac
        if [[ -n "$extra" ]]; then
            skips="$("$root/.venv/bin/python" -c 'import sys, yaml; print(",".join(yaml.safe_load(open(sys.argv[1]))["skip-check"]))' "$here/.checkov.yaml" 2>/dev/null || echo CKV_K8S_43,CKV_K8S_35,CKV_K8S_40)"
            skip=(--skip-check "$skips,$extra")
        fi
        echo "== $target: checkov --config-file k8s/.checkov.yaml ${skip[*]:-}"
        (cd "$out/$target" && BC_SKIP_MAPPING=TRUE "$checkov_bin" --config-file "$here/.checkov.yaml" \
            --directory . "${skip[@]}" --quiet) || status=1
    else
        echo "!! checkov not found (k8s/requirements-policy.txt): policy check skipped"
    fi
done

if [[ -x "$root/.venv/bin/pytest" ]]; then
    echo "== acceptance assertions: pytest tests/k8s"
    (cd "$root" && .venv/bin/pytest tests/k8s -q) || status=1
else
    echo "!! $root/.venv/bin/pytest not found: acceptance assertions skipped"
fi

if [[ $status -eq 0 ]]; then
    echo "OK: all checks passed"
else
    echo "FAILED: see above" >&2
fi
exit $status

#!/usr/bin/env bash
# Build the service's OCI image from its Bento with podman, tagged
# localhost/bg-remover:<Bento version> and localhost/bg-remover:latest, and print its size.
#
# Usage: scripts/build-image.sh [--force] [--tag TAG]...
#   Does nothing but print the size when :latest was built from the same inputs (the Bento's
#   sources, bentofile.yaml, deploy/container/ and this script, hashed into the image label
#   bg-remover.inputs-sha256); --force rebuilds anyway. --tag adds tags of the same image, e.g.
#   `--tag dev` for what the dev overlay runs (localhost/bg-remover:dev, loaded into a local
#   cluster: k8s/README.md, "Local cluster").
# Environment:
#   IMAGE          image name without tag (default localhost/bg-remover)
#   BASE_IMAGE     base image to use as is (default: docker.io/library/python:3.11-slim when a
#                  registry answers, else Python 3.11 built from Debian's packages)
#   DEBIAN_MIRROR  for that Debian base (default: the Debian mirror apt uses here)
#   EXTRA_CA_DIR   CA certificates to trust while building, e.g. a TLS-intercepting proxy's
#                  (default /usr/local/share/ca-certificates); they never reach the image
#
# Installs what is missing: podman, runc and debootstrap from Debian's packages (as root), the
# project venv with the model (scripts/setup.sh). podman reads deploy/container/containers.conf
# through CONTAINERS_CONF; nothing host-wide is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENTOML_DO_NOT_TRACK=true
export CONTAINERS_CONF="$PWD/deploy/container/containers.conf"

IMAGE=${IMAGE:-localhost/bg-remover}
OFFICIAL_BASE=docker.io/library/python:3.11-slim
DEBIAN_BASE=localhost/debian:bookworm-min
DEBIAN_PYTHON_BASE=localhost/bg-remover-python:3.11-bookworm
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
HASH_LABEL=bg-remover.inputs-sha256
WORK=build/container
force=false
extra_tags=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=true ;;
    --tag)
      [[ $# -ge 2 && "$2" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] \
        || { echo "--tag needs a tag (letters, digits, _ . -)" >&2; exit 2; }
      extra_tags+=("$2")
      shift
      ;;
    *) echo "usage: $0 [--force] [--tag TAG]..." >&2; exit 2 ;;
  esac
  shift
done

started=$SECONDS
log() { printf '[build-image %4ss] %s\n' "$((SECONDS - started))" "$*" >&2; }

install_tools() {
  local missing=() tool
  for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
}

# What the image is made from; the model is pinned by its md5 in segmentation/catalog.py.
inputs_hash() {
  .venv/bin/python - <<'EOF'
import hashlib
from pathlib import Path

import yaml

config = yaml.safe_load(Path("bentofile.yaml").read_text())
files = {Path("bentofile.yaml"), Path("requirements-serve.txt"), Path("scripts/build-image.sh")}
files |= {path for path in Path("deploy/container").rglob("*")}
for pattern in config.get("include", []):
    files |= set(Path(".").glob(pattern.lstrip("/")))
digest = hashlib.sha256()
for path in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
    digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
print(digest.hexdigest())
EOF
}

tag_extra() {
  local tag
  for tag in "${extra_tags[@]}"; do
    podman tag "$IMAGE:latest" "$IMAGE:$tag"
    log "tagged $IMAGE:$tag"
  done
}

print_size() {
  local bytes version
  bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE:latest")
  version=$(podman image inspect \
    --format '{{index .Labels "org.opencontainers.image.version"}}' "$IMAGE:latest")
  echo "$IMAGE:latest ($version): $((bytes / 1000000)) MB"
}

debian_mirror() {
  local found
  found=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d \
    2>/dev/null | head -n1 | tr -d ' ' || true)
  echo "${found%/}"
}

# Debian 12 minbase, slimmed like Debian's own -slim images (no docs, man pages or locales).
make_debian_base() {
  podman image exists "$DEBIAN_BASE" && return
  local mirror=${DEBIAN_MIRROR:-$(debian_mirror)} rootfs="$WORK/rootfs"
  mirror=${mirror:-http://deb.debian.org/debian}
  log "debootstrap bookworm from $mirror"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$DEBIAN_BASE" >"$WORK/base-build.log" 2>&1 \
    || { tail -n 20 "$WORK/base-build.log" >&2; exit 1; }
  rm -rf "$rootfs"
}

choose_base() {
  if [[ -n "${BASE_IMAGE:-}" ]]; then
    echo "$BASE_IMAGE"
  elif podman image exists "$OFFICIAL_BASE" \
      || timeout 60 podman pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    echo "$OFFICIAL_BASE"
  else
    log "no registry answered: Python 3.11 from Debian's packages"
    make_debian_base
    if ! podman image exists "$DEBIAN_PYTHON_BASE"; then
      podman build --network host --build-arg DEBIAN_IMAGE="$DEBIAN_BASE" \
        -f deploy/container/python-base.Containerfile -t "$DEBIAN_PYTHON_BASE" deploy/container \
        >"$WORK/base-build.log" 2>&1 || { tail -n 20 "$WORK/base-build.log" >&2; exit 1; }
    fi
    echo "$DEBIAN_PYTHON_BASE"
  fi
}

install_tools
if [[ ! -x .venv/bin/bentoml ]]; then
  log "creating .venv (scripts/setup.sh)"
  scripts/setup.sh
fi
mkdir -p "$WORK"
hash=$(inputs_hash)
if ! $force && [[ $(podman image inspect --format "{{index .Labels \"$HASH_LABEL\"}}" \
    "$IMAGE:latest" 2>/dev/null) == "$hash" ]]; then
  log "$IMAGE:latest is up to date (inputs $hash)"
  tag_extra
  print_size
  exit 0
fi

.venv/bin/python import_model.py >/dev/null 2>&1 \
  || .venv/bin/python import_model.py  # idempotent; the Bento packs the stored model
base=$(choose_base)
log "base image $base"

tag=$(.venv/bin/bentoml build -o tag | sed -n 's/^__tag__://p')
version=${tag#*:}
log "built Bento $tag"
rm -rf "$WORK/context" "$WORK/bento.tar"
# An absolute path: bentoml resolves a relative one elsewhere.
.venv/bin/bentoml export "$tag" "$PWD/$WORK/bento.tar" >/dev/null
mkdir -p "$WORK/context/bento"
tar -C "$WORK/context/bento" -xf "$WORK/bento.tar"
cp deploy/container/entrypoint.py "$WORK/context/"
# Files owned by root in the image and readable by the service's user: the export keeps the
# store's owner-only modes.
chmod -R u=rwX,go=rX "$WORK/context"

extra_ca="$WORK/extra-ca.pem"
: >"$extra_ca"
chmod 600 "$extra_ca"
if [[ -d "$EXTRA_CA_DIR" ]]; then
  find "$EXTRA_CA_DIR" -type f -name '*.crt' -exec cat {} + >>"$extra_ca"
fi

podman build --network host --secret "id=extra-ca,src=$extra_ca" \
  --build-arg "BASE_IMAGE=$base" \
  --label "org.opencontainers.image.title=bg-remover" \
  --label "org.opencontainers.image.version=$version" \
  --label "bg-remover.bento=$tag" \
  --label "$HASH_LABEL=$hash" \
  -f deploy/container/Containerfile -t "$IMAGE:$version" -t "$IMAGE:latest" \
  "$WORK/context" >"$WORK/podman-build.log" 2>&1 \
  || { tail -n 40 "$WORK/podman-build.log" >&2; exit 1; }
rm -rf "$WORK/context" "$WORK/bento.tar" "$extra_ca"
log "tagged $IMAGE:$version and $IMAGE:latest"
# Earlier builds' version tags only hold space (the build stage stays cached for the next
# build); extra tags (--tag) are moved to the new image below.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' "$IMAGE"); do
  [[ "$old" == "$IMAGE:$version" || "$old" == "$IMAGE:latest" || ! "${old##*:}" =~ ^[a-z0-9]{16}$ ]] \
    || podman rmi "$old" >/dev/null 2>&1 || true
done
tag_extra
print_size

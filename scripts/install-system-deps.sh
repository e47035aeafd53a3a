#!/usr/bin/env bash
# System packages the tests use: redis-server (own instances for the fault tests) and Debian's
# chromium (driven by Playwright in the playground tests; Playwright's own browser download is
# never used), podman with runc and debootstrap (tests/container build and run the image with
# scripts/build-image.sh), and Debian's prometheus (a real Prometheus server scraping a real
# service in tests/e2e/test_prometheus.py, and promtool for the alert rules' unit tests), and
# node with npm (remove.bg's own npm client runs against the service in
# tests/integration/test_removebg_clients.py; npm installs it and remove.bg's API description).
# Installs with apt-get when missing and we are root; otherwise says what to install.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x ${CHROMIUM_PATH:-/usr/bin/chromium} ]] || missing+=(chromium)
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi

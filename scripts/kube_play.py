"""Run the service's Kubernetes Deployment from a kustomize overlay with `podman kube play`.

    .venv/bin/python scripts/kube_play.py up [--overlay k8s/overlays/dev] [--port 3000]
    .venv/bin/python scripts/kube_play.py render      # the adapted YAML, to read
    .venv/bin/python scripts/kube_play.py down

The manifests stay the source of truth: the overlay is rendered with kustomize and only what
podman 4.3 cannot do is adapted, so the pod gets the manifests' env, args, probes, resources,
securityContext and volumes. What changes, and why:

- Only the service's Deployment and its ConfigMap are played. kube play ignores Services,
  HPA, PDB, Ingress and NetworkPolicies, and the overlay's Redis would publish 6379 on the host.
- The Redis URLs are dropped: they name the Redis Services (`redis://redis-budgets`,
  `redis://redis-cache`), which do not resolve here; the pod runs on in-process limits and an
  in-process cache (one replica).
- The Secret becomes a podman secret of the same name holding its keys as a JSON object of
  base64 values, which is what `secretKeyRef` reads (kube play fails on `kind: Secret` in
  the YAML with "not valid JSON").
- The image is rewritten to the local tag with `imagePullPolicy: IfNotPresent`.
- The container port is published on a chosen host port (kube play publishes every
  containerPort on the same host port otherwise).

podman turns only the liveness probe into a health check, runs it on a systemd timer only,
and in 4.3 gets it wrong anyway (`curl`, which the image does not have, on port 0 for the
named port): poll /readyz yourself. Crash loops restart at once (no backoff), and
`kube down` stops at the first missing pod, hence `down` removes the pod by name.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = ROOT / "deploy" / "container" / "containers.conf"
DEPLOYMENT = "bg-remover"
POD = f"{DEPLOYMENT}-pod-0"  # kube play's name for a Deployment's (first) pod
DROPPED_SETTINGS = ("REDIS_URL", "RATE_LIMIT_REDIS_URL", "CACHE_REDIS_URL")
# podman 4.3 makes each emptyDir a named volume called like the pod's volume ("tmp"): prefixed,
# they cannot meet anyone else's volumes, and `down` removes them.
VOLUME_PREFIX = f"{DEPLOYMENT}-kube-play-"


def kubectl() -> str:
    pinned = ROOT / ".venv-policy" / "bin" / "kubectl"
    found = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if found is None:
        sys.exit("kubectl not found: scripts/setup.sh --dev installs a pinned one")
    return found


def render(overlay: Path) -> list[dict[str, Any]]:
    text = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def adapt(
    documents: list[dict[str, Any]], image: str, host_port: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(what to play, the Secrets to create as podman secrets)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], []).append(doc)
    deployment = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == DEPLOYMENT)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["image"] = image
    container["imagePullPolicy"] = "IfNotPresent"
    for port in container.get("ports", []):
        port["hostPort"] = host_port
    for volume in pod.get("volumes", []):
        volume["name"] = VOLUME_PREFIX + volume["name"]
    for mount in container.get("volumeMounts", []):
        mount["name"] = VOLUME_PREFIX + mount["name"]

    referenced = {
        ref["configMapRef"]["name"] for ref in container.get("envFrom", []) if "configMapRef" in ref
    }
    config_maps = [c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"] in referenced]
    for config_map in config_maps:
        for name in DROPPED_SETTINGS:
            config_map.get("data", {}).pop(name, None)

    secret_names = {
        env["valueFrom"]["secretKeyRef"]["name"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    secrets = [s for s in by_kind.get("Secret", []) if s["metadata"]["name"] in secret_names]
    return [*config_maps, deployment], secrets


def podman(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    return subprocess.run(["podman", *args], check=check, text=True, env=env, **kwargs)


def up(documents: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> None:
    down(documents, secrets)  # a fresh pod with empty emptyDirs, as on a cluster
    for secret in secrets:
        name = secret["metadata"]["name"]
        # podman 4.3 reads a secretKeyRef's secret as a JSON object of base64 values.
        data = {
            key: base64.b64encode(value.encode()).decode()
            for key, value in secret.get("stringData", {}).items()
        }
        as_json = json.dumps({**secret.get("data", {}), **data})
        podman("secret", "rm", name, check=False, capture_output=True)
        podman("secret", "create", name, "-", input=as_json, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as played:
        yaml.safe_dump_all(documents, played)
        played.flush()
        podman("kube", "play", "--replace", played.name)


def down(documents: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> None:
    podman("pod", "rm", "-f", "-t", "10", POD, check=False)
    pod = documents[-1]["spec"]["template"]["spec"]
    for volume in pod.get("volumes", []):
        if "emptyDir" in volume:
            podman("volume", "rm", "-f", volume["name"], check=False, capture_output=True)
    for secret in secrets:
        podman("secret", "rm", secret["metadata"]["name"], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "render", "down"))
    parser.add_argument("--overlay", type=Path, default=ROOT / "k8s" / "overlays" / "dev")
    parser.add_argument("--image", default="localhost/bg-remover:latest")
    parser.add_argument("--port", type=int, default=3000, help="host port of the pod's http port")
    args = parser.parse_args()
    documents, secrets = adapt(render(args.overlay), args.image, args.port)
    if args.action == "render":
        yaml.safe_dump_all(documents, sys.stdout)
    elif args.action == "up":
        up(documents, secrets)
        print(f"{POD}: http://127.0.0.1:{args.port} (poll /readyz)")
    else:
        down(documents, secrets)


if __name__ == "__main__":
    main()

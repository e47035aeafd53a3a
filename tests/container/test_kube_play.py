"""The dev overlay's Deployment run with `podman kube play` (scripts/kube_play.py renders it
with kustomize and adapts only what podman 4.3 cannot do): the pod gets ready and serves a
real cut-out with the manifests' image settings, env, Secret, args, limits and
securityContext."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.container.conftest import ROOT, free_port, podman, podman_env, quantity_bytes, wait_ready

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts" / "kube_play.py"
OVERLAY = ROOT / "k8s" / "overlays" / "dev"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kube_play", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Pod:
    url: str
    container: str
    manifest: dict[str, Any]  # the rendered container spec of the Deployment
    api_key: str


@pytest.fixture(scope="module")
def pod(image: str) -> Iterator[Pod]:
    kube_play = load_script()
    rendered = kube_play.render(OVERLAY)
    deployment = next(
        d
        for d in rendered
        if d["kind"] == "Deployment" and d["metadata"]["name"] == kube_play.DEPLOYMENT
    )
    secret = next(d for d in rendered if d["kind"] == "Secret")
    port = free_port()
    command = [
        sys.executable,
        str(SCRIPT),
        "--overlay",
        str(OVERLAY),
        "--image",
        image,
        "--port",
        str(port),
    ]
    container = f"{kube_play.POD}-{deployment['spec']['template']['spec']['containers'][0]['name']}"
    try:
        up = subprocess.run(
            [*command[:2], "up", *command[2:]],
            capture_output=True,
            text=True,
            env=podman_env(),
            timeout=300,
        )
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, 90)
        except AssertionError as error:
            logs = podman("logs", container, check=False)
            raise AssertionError(f"{error}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}") from None
        yield Pod(
            url,
            container,
            deployment["spec"]["template"]["spec"]["containers"][0],
            secret["stringData"]["API_KEYS"].split(",")[0],
        )
    finally:
        subprocess.run(
            [*command[:2], "down", *command[2:]], capture_output=True, env=podman_env(), timeout=120
        )


def test_pod_runs_with_the_manifests_settings(pod: Pod, image: str) -> None:
    inspected = json.loads(podman("inspect", pod.container).stdout)[0]
    config, host = inspected["Config"], inspected["HostConfig"]
    security = pod.manifest["securityContext"]
    assert inspected["ImageName"] == image
    assert config["Cmd"] == pod.manifest["args"]
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert host["ReadonlyRootfs"] is security["readOnlyRootFilesystem"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert security["capabilities"]["drop"] == ["ALL"] and "CAP_CHOWN" in host["CapDrop"]
    assert host["Memory"] == quantity_bytes(pod.manifest["resources"]["limits"]["memory"])
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["LOG_LEVEL"] == "DEBUG"  # the dev overlay's ConfigMap merge
    assert env["API_KEYS"] == pod.api_key  # from the Secret, through a podman secret
    assert not {"REDIS_URL", "RATE_LIMIT_REDIS_URL", "CACHE_REDIS_URL"} & env.keys()


def test_pod_serves_a_cutout_to_a_key_holder_only(pod: Pod) -> None:
    photo = images.photo("astronaut", "JPEG")
    refused = httpx.post(
        f"{pod.url}/remove-background", timeout=60, files={"file": ("astronaut.jpg", photo)}
    )
    assert refused.status_code == 401
    response = httpx.post(
        f"{pod.url}/remove-background",
        timeout=120,
        headers={"X-API-Key": pod.api_key},
        files={"file": ("astronaut.jpg", photo)},
    )
    assert response.status_code == 200, response.text[:500]
    result = Image.open(io.BytesIO(response.content))
    alpha = np.asarray(result.getchannel("A"))
    assert result.size == (512, 512) and alpha.min() < 10 and alpha.max() > 245

"""Helpers and fixtures for the tests that run the service's OCI image with podman.

The image comes from scripts/build-image.sh, which installs podman, runc and debootstrap when
missing and rebuilds only when the image's inputs changed (a hash in an image label), so one
image serves every test here and a second run of the suite builds nothing. podman reads the
project's deploy/container/containers.conf (runc, no default ulimits) through CONTAINERS_CONF.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "container" / "containers.conf"
IMAGE = "localhost/bg-remover:latest"
DEPLOYMENT = ROOT / "k8s" / "base" / "deployment.yaml"
CONFIG_ENV = ROOT / "k8s" / "base" / "config.env"
BUILD_TIMEOUT_S = 1800
# Kubernetes quantities as podman wants them (bytes).
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF), "BENTOML_DO_NOT_TRACK": "true"}


def podman(
    *args: str, check: bool = True, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=timeout,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def wait_ready(url: str, timeout_s: float, alive: Any = None) -> float:
    """Seconds until `url`/readyz answered 200; `alive()` false means the server died."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if alive is not None and not alive():
            raise AssertionError(f"the server behind {url} stopped before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url}/readyz not ready after {timeout_s:.0f} s")


def quantity_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)([kMG]i?)?", quantity)
    assert match, f"unsupported quantity {quantity!r}"
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def bentofile_envs() -> dict[str, str]:
    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    return {env["name"]: str(env.get("value", "")) for env in config.get("envs", [])}


@dataclass(frozen=True)
class PodSpec:
    """What k8s/base/deployment.yaml asks of the service's container, as `podman run` options."""

    args: list[str]
    options: list[str]
    user: str

    @classmethod
    def from_deployment(cls) -> PodSpec:
        pod = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
        container = pod["containers"][0]
        security = {**pod.get("securityContext", {}), **container["securityContext"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        options: list[str] = []
        for mount in container["volumeMounts"]:
            empty_dir = volumes[mount["name"]]["emptyDir"]
            size = empty_dir.get("sizeLimit")
            options += [
                "--tmpfs",
                mount["mountPath"] + (f":rw,size={quantity_bytes(size)}" if size else ""),
            ]
        if security.get("readOnlyRootFilesystem"):
            options.append("--read-only")
        if security.get("allowPrivilegeEscalation") is False:
            options += ["--security-opt", "no-new-privileges"]
        options += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
        user = f"{security['runAsUser']}:{security['runAsGroup']}"
        memory = container["resources"]["limits"]["memory"]
        options += ["--user", user, "--memory", str(quantity_bytes(memory))]
        return cls(args=list(container["args"]), options=options, user=user)


@dataclass
class Container:
    name: str
    url: str
    ready_after_s: float

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-5000:]


@pytest.fixture(scope="session")
def image() -> str:
    """The service's image, built (or found up to date) by scripts/build-image.sh, also tagged
    as the dev overlay names it (`--tag dev`)."""
    if shutil.which("podman") is None and os.geteuid() != 0:
        pytest.skip(
            "podman is not installed and only root may install it "
            "(apt-get install podman runc debootstrap)"
        )
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh"), "--tag", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env=podman_env(),
    )
    assert built.returncode == 0, f"build-image.sh failed:\n{built.stdout}\n{built.stderr}"
    return IMAGE


def run_container(
    image: str, name: str, port: int, extra: list[str], args: list[str]
) -> subprocess.CompletedProcess[str]:
    return podman(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        f"PORT={port}",
        "--env-file",
        str(CONFIG_ENV),
        *extra,
        image,
        *args,
    )


def remove_container(name: str) -> None:
    podman("rm", "-f", "-t", "0", name, check=False)


def started_container(image: str, extra: list[str], name_prefix: str) -> Iterator[Container]:
    """Run the image the way the Deployment does (see PodSpec) on a free host port."""
    spec = PodSpec.from_deployment()
    port = free_port()
    name = f"{name_prefix}-{port}"
    remove_container(name)
    run_container(image, name, port, [*spec.options, *extra], spec.args)
    container = Container(name, f"http://127.0.0.1:{port}", 0.0)
    try:
        container.ready_after_s = wait_ready(container.url, 60, container.running)
    except AssertionError as error:
        logs = container.logs()
        remove_container(name)
        raise AssertionError(f"{error}\n{logs}") from None
    try:
        yield container
    finally:
        remove_container(name)

"""The service's OCI image, run the way Kubernetes runs it (k8s/base: config.env as its
environment, read-only root with tmpfs where the Deployment mounts volumes, uid 1034, no
capabilities, no privilege escalation, the memory limit, the Deployment's args) on a free
PORT, with API_KEYS set as the Secret would."""

from __future__ import annotations

import concurrent.futures
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.container.conftest import (
    Container,
    PodSpec,
    bentofile_envs,
    podman,
    started_container,
)
from tests.waiting import metric_sum, wait_until

pytestmark = pytest.mark.slow

# One key per test that spends budget: with API_KEYS set the key is the client identity.
KEYS = {"cutout": "key-cutout", "drain": "key-drain", "spare": "key-spare"}
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
IN_FLIGHT = 4


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    yield from started_container(
        image, ["-e", f"API_KEYS={','.join(KEYS.values())}"], "bg-remover-test"
    )


def cutout_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:500]
    result = Image.open(io.BytesIO(response.content))
    assert result.mode == "RGBA"
    alpha = np.asarray(result.getchannel("A"))
    assert alpha.min() < 10 and alpha.max() > 245


def test_image_holds_what_runs_and_nothing_to_build_with(image: str) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert {name: env.get(name) for name in bentofile_envs()} == bentofile_envs()
    assert config["User"] == PodSpec.from_deployment().user
    # Found by `command -v` or importable: nothing of this may be in the image.
    probe = podman(
        "run",
        "--rm",
        "--entrypoint",
        "bash",
        image,
        "-c",
        "for tool in gcc cc make git gpg curl pip pip3; do command -v $tool; done; "
        "python -c 'import importlib.util as u; "
        'print(*[m for m in ("rembg", "pip", "onnx") if u.find_spec(m)])\'; '
        "ls /usr/local/share/ca-certificates",
    )
    assert probe.stdout.strip() == ""
    # The build's extra CA certificates (a TLS-intercepting proxy's) stay out of the image.
    bundle = "".join(
        podman(
            "run", "--rm", "--entrypoint", "cat", image, "/etc/ssl/certs/ca-certificates.crt"
        ).stdout.split()
    )
    for extra in sorted(EXTRA_CA_DIR.glob("*.crt")) if EXTRA_CA_DIR.is_dir() else []:
        body = "".join(extra.read_text().split("-----")[2].split())
        assert body[:300] not in bundle, f"{extra.name} was left in the image"


def test_ready_within_a_minute_on_the_given_port(container: Container) -> None:
    assert container.ready_after_s < 60
    assert f"listening on http://localhost:{container.url.rsplit(':', 1)[1]}" in container.logs()


def test_serves_a_cutout(container: Container) -> None:
    response = httpx.post(
        f"{container.url}/remove-background",
        timeout=120,
        headers={"X-API-Key": KEYS["cutout"]},
        files={"file": ("astronaut.jpg", images.photo("astronaut", "JPEG"))},
    )
    cutout_ok(response)
    assert response.headers["x-ratelimit-limit"] == "10"  # config.env's budget


def test_refuses_requests_without_a_key(container: Container) -> None:
    response = httpx.post(
        f"{container.url}/remove-background",
        timeout=60,
        files={"file": ("astronaut.jpg", images.photo("astronaut", "JPEG"))},
    )
    assert response.status_code == 401
    assert "unauthorized" in response.text


def test_metrics_answer_an_allowed_peer(container: Container) -> None:
    response = httpx.get(f"{container.url}/metrics", timeout=30)
    assert response.status_code == 200
    assert "bg_remover_requests_total" in response.text


def test_root_filesystem_is_read_only_and_the_user_unprivileged(container: Container) -> None:
    probe = podman(
        "exec",
        container.name,
        "bash",
        "-c",
        "id -u; grep CapEff /proc/self/status; "
        "touch /home/bentoml/bento/x 2>/dev/null && echo wrote-root || echo ro; "
        "touch /tmp/x && echo wrote-tmp",
    )
    uid, capabilities, root, tmp = probe.stdout.split("\n")[:4]
    assert uid == PodSpec.from_deployment().user.split(":")[0]
    assert capabilities.split()[-1] == "0000000000000000"
    assert (root, tmp) == ("ro", "wrote-tmp")


def test_sigterm_lets_in_flight_requests_finish(container: Container) -> None:
    """Last in this module: the container is gone afterwards."""
    photo = images.large_jpeg()  # 12 MP: about a second of work each on 2 cores

    def slow_request() -> httpx.Response:
        return httpx.post(
            f"{container.url}/remove-background",
            timeout=120,
            headers={"X-API-Key": KEYS["drain"]},
            files={"file": ("large.jpg", photo)},
        )

    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending = [pool.submit(slow_request) for _ in range(IN_FLIGHT)]
        # Early: a request is being decoded, before its model call, which is when stopping
        # both services at once loses it.
        wait_until(
            lambda: metric_sum(container.url, "bg_remover_admitted_memory_bytes") > 0,
            60,
            "a 12 MP photo admitted to processing",
        )
        assert not any(future.done() for future in pending)
        stopped_at = time.monotonic()
        podman("kill", "--signal", "TERM", container.name)
        responses = [future.result() for future in pending]
    exit_code = podman("wait", container.name, timeout=120).stdout.strip()
    stop_took = time.monotonic() - stopped_at
    for response in responses:
        cutout_ok(response)
    assert exit_code == "0"
    assert stop_took < 100  # --timeout-graceful-shutdown of the Deployment's args

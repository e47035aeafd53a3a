"""compose.yaml brought up with podman-compose: the service behind nginx, one Redis holding the
rate-limit budgets and one the result cache. Free host port and unused subnets per run;
everything is torn down afterwards, also on failure.

Where no registry can be reached, Redis and nginx are local stand-ins built from Debian's
packages (deploy/compose/stand-ins/) and tagged with the names compose.yaml uses.

Clients on the host reach nginx through the published port, but rootful podman masquerades
loopback clients to the network's gateway, so every 127.0.0.x looks the same to nginx. The
two clients with separate budgets are therefore containers on the stack's frontend network
with addresses of their own, which is where real clients' connections arrive too.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import images
from tests.container.conftest import ROOT, free_port, podman, podman_env, wait_ready
from tests.k8s.test_manifests import public_paths

pytestmark = pytest.mark.slow

COMPOSE_FILE = ROOT / "compose.yaml"
STAND_INS = ROOT / "deploy" / "compose" / "stand-ins"
DEBIAN_BASE = "localhost/debian:bookworm-min"
BUDGET = 3  # RATE_LIMIT_REMOVE_BG_PER_HOUR for this stack
# Sends the image (base64 on stdin) N times to nginx; prints [status, X-RateLimit-Remaining] each.
CLIENT_SCRIPT = """
import base64, json, sys, httpx
data = base64.b64decode(sys.stdin.read())
answers = []
for _ in range(int(sys.argv[1])):
    r = httpx.post("http://nginx/remove-background", files={"file": ("a.png", data)}, timeout=120)
    answers.append([r.status_code, r.headers.get("x-ratelimit-remaining")])
print(json.dumps(answers))
"""


def compose_defaults() -> dict[str, str]:
    """`${NAME:-default}` of compose.yaml."""
    return dict(re.findall(r"\$\{(\w+):-([^}]+)\}", COMPOSE_FILE.read_text()))


def unused_subnets(count: int) -> list[str]:
    names = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    networks = json.loads(podman("network", "inspect", *names).stdout) if names else []
    taken = {
        ipaddress.ip_network(subnet["subnet"])
        for network in networks
        for subnet in network.get("subnets") or []
    }
    ip = shutil.which("ip")
    routes = (
        subprocess.run([ip, "-4", "route"], capture_output=True, text=True).stdout if ip else ""
    )
    taken |= {
        ipaddress.ip_network(word, strict=False)
        for word in re.findall(r"^(\d+\.\d+\.\d+\.\d+/\d+)", routes, re.MULTILINE)
    }
    free = (
        f"172.30.{n}.0/24"
        for n in range(120, 250)
        if not any(ipaddress.ip_network(f"172.30.{n}.0/24").overlaps(t) for t in taken)
    )
    return [next(free) for _ in range(count)]


def ensure_image(name: str, containerfile: Path) -> None:
    if podman("image", "exists", name, check=False).returncode == 0:
        return
    if podman("pull", "-q", name, check=False, timeout=120).returncode == 0:
        return
    assert podman("image", "exists", DEBIAN_BASE, check=False).returncode == 0, (
        f"{name} cannot be pulled and {DEBIAN_BASE} is missing (scripts/build-image.sh makes "
        "it when no registry answers)"
    )
    podman(
        "build",
        "-q",
        "--network",
        "host",
        "--build-arg",
        f"DEBIAN_IMAGE={DEBIAN_BASE}",
        "-f",
        str(containerfile),
        "-t",
        name,
        str(containerfile.parent),
        timeout=600,
    )


@dataclass
class Stack:
    project: str
    url: str
    frontend_subnet: str

    def container(self, service: str) -> str:
        names = podman(
            "ps",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.Names}}",
        ).stdout.split()
        assert len(names) == 1, f"{service}: {names}"
        return names[0]


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[Stack]:
    defaults = compose_defaults()
    ensure_image(defaults["REDIS_IMAGE"], STAND_INS / "redis.Containerfile")
    ensure_image(defaults["NGINX_IMAGE"], STAND_INS / "nginx.Containerfile")
    port = free_port()
    project = f"bg-remover-test-{port}"
    backend, frontend = unused_subnets(2)
    env = {
        **podman_env(),
        "HTTP_PORT": str(port),
        "BACKEND_SUBNET": backend,
        "FRONTEND_SUBNET": frontend,
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": str(BUDGET),
        "BG_REMOVER_IMAGE": image,
    }
    compose = [
        str(Path(sys.executable).with_name("podman-compose")),
        "-p",
        project,
        "-f",
        str(COMPOSE_FILE),
    ]
    try:
        up = subprocess.run(
            [*compose, "up", "-d"], env=env, capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, 90)
        yield Stack(project, url, frontend)
    finally:
        subprocess.run(
            [*compose, "down", "-v", "-t", "10"], env=env, capture_output=True, timeout=300
        )


def test_every_service_passes_its_health_check(stack: Stack) -> None:
    # podman runs health checks on a systemd timer; without systemd, run them directly.
    for service in ("redis-budgets", "redis-cache", "bg-remover", "nginx"):
        check = podman("healthcheck", "run", stack.container(service), check=False)
        assert check.returncode == 0, f"{service}: {check.stdout} {check.stderr}"


def test_cutout_through_nginx(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.url}/remove-background",
        timeout=120,
        files={"file": ("astronaut.jpg", images.photo("astronaut", "JPEG"))},
    )
    assert response.status_code == 200, response.text[:500]
    result = Image.open(io.BytesIO(response.content))
    alpha = np.asarray(result.getchannel("A"))
    assert result.size == (512, 512) and alpha.min() < 10 and alpha.max() > 245
    assert httpx.get(f"{stack.url}/metrics", timeout=30).status_code == 404


def client(
    stack: Stack, image: str, host: int, requests: int, photo: bytes | None = None
) -> list[list[object]]:
    """`requests` cut-outs sent to nginx from a container with its own address on the
    frontend network (host number `host` of its subnet); [status, remaining] of each."""
    address = list(ipaddress.ip_network(stack.frontend_subnet).hosts())[host]
    ran = podman(
        "run",
        "--rm",
        "-i",
        "--network",
        f"{stack.project}_frontend",
        "--ip",
        str(address),
        "--entrypoint",
        "python",
        image,
        "-c",
        CLIENT_SCRIPT,
        str(requests),
        input=base64.b64encode(photo or images.rgba_png()).decode(),
        timeout=300,
    )
    return json.loads(ran.stdout.strip().splitlines()[-1])


def redis_cli(stack: Stack, service: str, *command: str, stdin: str | None = None) -> str:
    args = ["exec", "-i", stack.container(service), "redis-cli", *command]
    return podman(*args, input=stdin, timeout=300).stdout


def test_clients_behind_nginx_get_separate_budgets(stack: Stack, image: str) -> None:
    first = client(stack, image, 20, BUDGET + 1)
    second = client(stack, image, 21, 1)
    assert first == [[200, str(BUDGET - n - 1)] for n in range(BUDGET)] + [[429, "0"]]
    assert second == [[200, str(BUDGET - 1)]]


def test_each_role_lives_in_its_own_redis(stack: Stack) -> None:
    budgets = redis_cli(stack, "redis-budgets", "--scan", "--pattern", "bg_remover*").split()
    cached = redis_cli(stack, "redis-cache", "--scan", "--pattern", "bg_remover*").split()
    assert any("remove-background" in key for key in budgets), budgets
    assert all(key.startswith("bg_remover:cache:") for key in cached) and cached, cached
    assert not [key for key in budgets if key.startswith("bg_remover:cache:")]
    assert "maxmemory_policy:noeviction" in redis_cli(stack, "redis-budgets", "info", "memory")
    assert "aof_enabled:1" in redis_cli(stack, "redis-budgets", "info", "persistence")


def test_the_budget_holds_after_the_cache_redis_is_filled(stack: Stack, image: str) -> None:
    photo = images.rgba_png((160, 90))
    spent = client(stack, image, 30, BUDGET + 1, photo)
    assert [status for status, _ in spent] == [200] * BUDGET + [429]
    # Twice the cache Redis's maxmemory in 1 MB values, one command each, as results would.
    maxmemory = int(redis_cli(stack, "redis-cache", "config", "get", "maxmemory").split()[-1])
    fill = "EVAL \"redis.call('SET', KEYS[1], string.rep('x', 1048576))\" 1 fill:{}\n"
    commands = "".join(fill.format(n) for n in range(2 * maxmemory >> 20))
    redis_cli(stack, "redis-cache", stdin=commands)
    stats = redis_cli(stack, "redis-cache", "info", "stats")
    assert int(re.search(r"evicted_keys:(\d+)", stats).group(1)) > 0, stats
    assert client(stack, image, 30, 1, photo) == [[429, "0"]]
    assert client(stack, image, 31, 1, photo) == [[200, str(BUDGET - 1)]]
    # The full cache Redis makes room for new results by evicting old ones.
    fresh = {"file": ("a.png", images.fresh(images.rgba_png((170, 90))))}
    answers = [httpx.post(f"{stack.url}/remove-background-preview", files=fresh, timeout=120)]
    answers.append(httpx.post(f"{stack.url}/remove-background-preview", files=fresh, timeout=120))
    assert [answer.headers.get("x-cache") for answer in answers] == ["miss", "hit"]


def test_every_public_route_reaches_the_service(stack: Stack) -> None:
    """Answered by the service (which sets X-Request-ID on every answer), not by nginx."""
    for path in sorted(public_paths()):
        response = httpx.get(f"{stack.url}{path}", timeout=60)
        assert "x-request-id" in response.headers, (path, response.status_code)


def test_request_ids_pass_through_nginx(stack: Stack) -> None:
    sent = httpx.get(f"{stack.url}/presets", headers={"X-Request-ID": "trace-42"}, timeout=30)
    assert sent.headers["x-request-id"] == "trace-42"
    made = httpx.get(f"{stack.url}/presets", timeout=30).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made), made  # nginx's $request_id, kept by the service

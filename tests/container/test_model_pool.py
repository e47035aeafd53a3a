"""The model pool apart, as two containers of the service's image (k8s/components/model-pool):
the model container serves the model service alone, the API container serves the API and calls
the model container over HTTP at the URL BENTOML_SERVE_DEPENDS gives. Both run with the
arguments the rendered component gives them, the way the Deployment runs the image (read-only
root, uid 1034, no capabilities, the memory limit). A missing or wrong model-service URL makes
the API container refuse to start, with a message that says why."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.container.conftest import (
    Container,
    PodSpec,
    podman,
    remove_container,
    run_container,
    wait_ready,
)
from tests.e2e.test_operations import total
from tests.k8s.test_manifests import api_container, one, render
from tests.model_pool import (
    RENEWED,
    assert_the_model_ran_apart,
    cutouts_while_connections_renew,
)
from tests.serving import free_port

pytestmark = pytest.mark.slow

MAX_AGE_S = "2"
EXIT_TIMEOUT_S = 90


def component() -> tuple[list[str], list[str], dict[str, str]]:
    """(model container args, API container args, API env) of the rendered component."""
    docs = render("model-pool")
    model = one(docs, "Deployment", "bg-remover-model")["spec"]["template"]["spec"]
    api = api_container(docs)
    env = {e["name"]: e["value"] for e in api.get("env", []) if "value" in e}
    return model["containers"][0]["args"], api["args"], env


def started(image: str, name: str, args: list[str], env: dict[str, str]) -> Container:
    port = free_port()
    name = f"{name}-{port}"
    remove_container(name)
    pairs = [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
    run_container(image, name, port, [*PodSpec.from_deployment().options, *pairs], args)
    return Container(name, f"http://127.0.0.1:{port}", 0.0)


def ready(container: Container) -> Container:
    try:
        container.ready_after_s = wait_ready(container.url, 90, container.running)
    except AssertionError as error:
        logs = container.logs()
        remove_container(container.name)
        raise AssertionError(f"{error}\n{logs}") from None
    return container


@pytest.fixture(scope="module")
def model(image: str) -> Iterator[Container]:
    model_args, _, _ = component()
    container = ready(started(image, "bg-remover-model", model_args, {}))
    yield container
    remove_container(container.name)


def api_env(model_url: str) -> dict[str, str]:
    """The component's API environment with the model's address on this host (no Service
    here), no rate limits (a load test) and a connection renewed every 2 s."""
    _, _, env = component()
    service, _ = env["BENTOML_SERVE_DEPENDS"].split("=", 1)
    return {
        **env,
        "BENTOML_SERVE_DEPENDS": f"{service}={model_url}",
        "RATE_LIMIT_ENABLED": "false",
        "CACHE_ENABLED": "false",
        "MODEL_CONNECTION_MAX_AGE_S": MAX_AGE_S,
    }


@pytest.fixture(scope="module")
def api(image: str, model: Container) -> Iterator[Container]:
    _, api_args, _ = component()
    container = ready(started(image, "bg-remover-api", api_args, api_env(model.url)))
    yield container
    remove_container(container.name)


def scrape(container: Container) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{container.url}/metrics", timeout=30).text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_the_api_container_calls_the_model_container(api: Container, model: Container) -> None:
    def inferences(container: Container) -> float:
        return total(scrape(container), "bg_remover_inference_duration_seconds_count")

    assert_the_model_ran_apart(api.url, lambda: inferences(model), lambda: inferences(api))
    processes = podman("top", api.name, "args").stdout
    assert "--service-name bg_remover" in processes
    assert "--service-name segmenter" not in processes  # no model worker in the API container


def test_connections_to_the_pool_are_renewed_without_failing_a_call(
    api: Container, model: Container
) -> None:
    model_port = int(model.url.rsplit(":", 1)[1])
    renewed, answers = cutouts_while_connections_renew(api.url, model_port, 180)
    assert renewed >= RENEWED, f"{renewed} new connections"
    assert [a.status_code for a in answers if a.status_code != 200] == []


def refused(image: str, env: dict[str, str]) -> str:
    """Start an API container that must not start; its exit code and logs."""
    _, api_args, _ = component()
    container = started(image, "bg-remover-refused", api_args, env)
    try:
        code = podman("wait", container.name, timeout=EXIT_TIMEOUT_S).stdout.strip()
        assert code not in ("", "0"), code
        return container.logs()
    finally:
        remove_container(container.name)


def test_without_the_model_service_url_the_api_refuses_to_start(image: str) -> None:
    env = {k: v for k, v in api_env("http://unused").items() if k != "BENTOML_SERVE_DEPENDS"}
    logs = refused(image, env)
    assert "No address for the model service 'segmenter'" in logs
    assert "--depends segmenter=http://<host>:<port>" in logs


def test_with_a_wrong_model_service_url_the_api_refuses_to_start(image: str) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    logs = refused(image, {**api_env(nowhere), "MODEL_SERVICE_WAIT_S": "3"})
    assert re.search(rf"The model service 'segmenter' at {re.escape(nowhere)} did not answer", logs)


def test_build_image_tags_what_the_dev_overlay_runs(image: str) -> None:
    """The `image` fixture builds with `--tag dev`; the dev overlay names that image."""
    dev_image = api_container(render("dev"))["image"]
    assert podman("image", "exists", dev_image, check=False).returncode == 0, dev_image
    ids = {
        podman("image", "inspect", "--format", "{{.Id}}", name).stdout
        for name in (image, dev_image)
    }
    assert len(ids) == 1

"""The model service apart from the API service, as k8s/components/model-pool runs them: each
served alone (BentoML's `start-http-server --service-name`), the API reaching the model over
HTTP through `--depends segmenter=<url>`. The same with two containers: tests/container."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import BentoServer
from tests.e2e.test_operations import scrape, total
from tests.model_pool import (
    RENEWED,
    assert_the_model_ran_apart,
    cutouts_while_connections_renew,
)
from tests.serving import free_port

pytestmark = pytest.mark.slow

MAX_AGE_S = 1  # MODEL_CONNECTION_MAX_AGE_S of the API under test: renewed all the time
LOAD_DEADLINE_S = 90
EXIT_TIMEOUT_S = 60
# Without BENTOML_CONTAINERIZED BentoML restarts a failing worker for ever; inside the image it
# is set, and a worker that cannot start stops the server.
AS_IN_THE_IMAGE = {"BENTOML_CONTAINERIZED": "true"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    with BentoServer(tmp_path_factory.mktemp("model"), service_name="segmenter") as server:
        yield server


@pytest.fixture(scope="module")
def api(model: BentoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    env = {"MODEL_CONNECTION_MAX_AGE_S": str(MAX_AGE_S), "CACHE_ENABLED": "false"}
    with BentoServer(
        tmp_path_factory.mktemp("api"),
        env=env,
        service_name="bg_remover",
        depends={"segmenter": model.url},
    ) as server:
        yield server


def test_the_model_runs_in_the_model_service(api: BentoServer, model: BentoServer) -> None:
    def inferences(server: BentoServer) -> float:
        return total(scrape(server), "bg_remover_inference_duration_seconds_count")

    assert_the_model_ran_apart(api.url, lambda: inferences(model), lambda: inferences(api))


def test_connections_are_renewed_without_failing_a_call(
    api: BentoServer, model: BentoServer
) -> None:
    """With BentoML's own renewal, each renewal failed the calls still running on the old
    connection (docs: k8s/README.md, "Model pool apart")."""
    renewed, answers = cutouts_while_connections_renew(api.url, model.port, LOAD_DEADLINE_S)
    assert renewed >= RENEWED, f"{renewed} new connections"
    assert [a.status_code for a in answers if a.status_code != 200] == []


def exited(server: BentoServer) -> str:
    assert server.process is not None
    code = server.process.wait(timeout=EXIT_TIMEOUT_S)
    assert code != 0
    return server.log()


def test_refuses_to_start_without_the_model_service_url(tmp_path: Path) -> None:
    server = BentoServer(tmp_path, env=AS_IN_THE_IMAGE, service_name="bg_remover")
    log = exited(server.start(wait=False))
    assert "No address for the model service 'segmenter'" in log
    assert "--depends segmenter=http://<host>:<port>" in log


def test_refuses_to_start_when_the_url_does_not_answer(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    server = BentoServer(
        tmp_path,
        env={**AS_IN_THE_IMAGE, "MODEL_SERVICE_WAIT_S": "2"},
        service_name="bg_remover",
        depends={"segmenter": nowhere},
    )
    log = exited(server.start(wait=False))
    assert f"The model service 'segmenter' at {nowhere} did not answer within 2 s" in log


def test_refuses_a_url_that_is_not_the_model_service(api: BentoServer, tmp_path: Path) -> None:
    server = BentoServer(
        tmp_path, env=AS_IN_THE_IMAGE, service_name="bg_remover", depends={"segmenter": api.url}
    )
    log = exited(server.start(wait=False))
    assert f"{api.url} answers, but not as the model service 'segmenter'" in log

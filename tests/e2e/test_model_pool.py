"""The model service apart from the API service, as k8s/components/model-pool runs them: each
served alone (BentoML's `start-http-server --service-name`), the API reaching the model over
HTTP through `--depends segmenter=<url>`. The same with two containers: tests/container."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from tests import images
from tests.e2e.server import BentoServer
from tests.e2e.test_operations import scrape, total
from tests.serving import free_port

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
MAX_AGE_S = 1  # MODEL_CONNECTION_MAX_AGE_S of the API under test: renewed all the time
CONCURRENCY = 6
# Connections opened while calls run: without renewal CONCURRENCY would be the most.
RENEWED = 3 * CONCURRENCY
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


def cutout(url: str) -> httpx.Response:
    return httpx.post(
        f"{url}/remove-background",
        files={"file": ("cat.jpg", PHOTO)},
        data={"max_width": "400"},
        timeout=120,
    )


def test_the_model_runs_in_the_model_service(api: BentoServer, model: BentoServer) -> None:
    before = total(scrape(model), "bg_remover_inference_duration_seconds_count")
    response = cutout(api.url)
    assert response.status_code == 200, response.text
    alpha = np.asarray(Image.open(io.BytesIO(response.content)).getchannel("A"))
    assert alpha.min() < 10 and alpha.max() > 245
    assert total(scrape(model), "bg_remover_inference_duration_seconds_count") == before + 1
    # Nothing ran the model inside the API's process tree.
    assert total(scrape(api), "bg_remover_inference_duration_seconds_count") == 0


def client_ports_of(server: BentoServer) -> set[int]:
    """Local ports of the connections open to `server` right now (from this host)."""
    return {
        connection.laddr.port
        for connection in psutil.net_connections("tcp")
        if connection.raddr
        and connection.raddr.port == server.port
        and connection.status == psutil.CONN_ESTABLISHED
    }


def test_connections_are_renewed_without_failing_a_call(
    api: BentoServer, model: BentoServer
) -> None:
    """With BentoML's own renewal, each renewal failed the calls still running on the old
    connection (docs: k8s/README.md, "Model pool apart")."""
    seen = client_ports_of(model)
    initial = set(seen)
    deadline = time.monotonic() + LOAD_DEADLINE_S
    answers: list[httpx.Response] = []
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        pending = {pool.submit(cutout, api.url) for _ in range(CONCURRENCY)}
        while len(seen - initial) < RENEWED and time.monotonic() < deadline:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            answers += [future.result() for future in done]
            pending |= {pool.submit(cutout, api.url) for _ in done}
            seen |= client_ports_of(model)
        answers += [future.result() for future in pending]
    assert len(seen - initial) >= RENEWED, f"{len(seen - initial)} new connections"
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

"""Who the client is, where it takes a real `bentoml serve`: `/metrics` and the probes and docs
are BentoML's routes, and the log is the service process's. Everything else about identity and
keys runs in process (tests/integration/test_api_identity_and_keys.py).

One server: API keys, `/metrics` for 127.0.0.1 only, and 127.0.0.1 a trusted proxy; every test
speaks from its own loopback address (127.0.0.N) unless it is about 127.0.0.1.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from tests import images
from tests.answers import assert_error
from tests.e2e.server import BentoServer
from tests.serving import Connect

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
PROXY = "127.0.0.1"
KEYS = ("key-one", "key-two", "key-three")
KEYED_LIMIT = 2  # every budget on the keyed server
LOG_WAIT_S = 5.0


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    limits = {
        name: str(KEYED_LIMIT)
        for name in (
            "RATE_LIMIT_REMOVE_BG_PER_HOUR",
            "RATE_LIMIT_PREVIEW_PER_HOUR",
            "RATE_LIMIT_BASE64_PER_HOUR",
            "RATE_LIMIT_READ_FILE_PER_HOUR",
            "RATE_LIMIT_BATCH_PER_HOUR",
        )
    }
    env = {
        **limits,
        "API_KEYS": ",".join(KEYS),
        "METRICS_ALLOW": "127.0.0.1/32",
        "TRUSTED_PROXIES": "127.0.0.1/32",
    }
    with BentoServer(tmp_path_factory.mktemp("identity"), env=env) as server:
        yield server


# --- /metrics: refused by our middleware, served by BentoML ----------------------------------


class TestMetricsRoute:
    def test_metrics_refused_to_an_outside_peer_claiming_loopback(
        self, keyed: BentoServer, connect: Connect
    ) -> None:
        outsider = connect(keyed, "127.0.0.5")
        for headers in (
            {"X-Forwarded-For": PROXY},
            {"Forwarded": f"for={PROXY}"},
            {"X-Real-IP": PROXY},
        ):
            assert_error(outsider.get("/metrics", headers=headers), 403, "forbidden")
        assert_error(outsider.get("/metrics"), 403, "forbidden")
        allowed = connect(keyed, PROXY).get("/metrics")
        assert allowed.status_code == 200
        assert "bg_remover_requests_total" in allowed.text

    def test_metrics_refused_to_an_untrusted_peer_claiming_loopback(
        self, keyed: BentoServer, connect: Connect
    ) -> None:
        outsider = connect(keyed, "127.0.0.5")
        assert_error(outsider.get("/metrics", headers={"X-Forwarded-For": PROXY}), 403, "forbidden")
        assert connect(keyed, PROXY).get("/metrics").status_code == 200

    def test_metrics_follow_metrics_allow_not_the_key(
        self, keyed: BentoServer, connect: Connect
    ) -> None:
        assert connect(keyed, PROXY).get("/metrics").status_code == 200  # no key
        outsider = connect(keyed, "127.0.0.5")
        assert_error(outsider.get("/metrics", headers={"X-API-Key": KEYS[0]}), 403, "forbidden")


# --- API keys ---------------------------------------------------------------------------------


class TestApiKeys:
    @pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json"])
    def test_open_routes_need_no_key(self, keyed: BentoServer, connect: Connect, path: str) -> None:
        assert connect(keyed).get(path).status_code == 200

    def test_keys_never_reach_the_log(self, keyed: BentoServer, connect: Connect) -> None:
        client = connect(keyed)
        for key in (*KEYS[:2], "KEY-ONE"):
            client.post(
                "/remove-background-base64",
                json={"image": PHOTO_B64, "quality": 5},
                headers={"X-API-Key": key},
            )
        response = client.post(
            "/remove-background", files={"file": ("cat.jpg", PHOTO)}, headers={"X-API-Key": KEYS[1]}
        )
        assert response.status_code == 200, response.text
        request_id = response.headers["x-request-id"]
        deadline = time.monotonic() + LOG_WAIT_S  # the line follows the response
        while request_id not in (log := keyed.log_path.read_text(errors="replace")):
            assert time.monotonic() < deadline, "the request was never logged"
            time.sleep(0.05)
        for key in KEYS:
            assert key not in log  # ...without its key

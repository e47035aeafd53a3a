"""Running the service, through the whole HTTP API in process: CORS and security headers,
errors outside the routes, the concurrency cap, and the files it keeps. Health with the real
model service, metrics and the request log file need a real `bentoml serve`
(tests/e2e/test_operations.py)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.answers import assert_ok
from tests.integration.api_server import InProcessServer
from tests.serving import Connect, meet_base64_limit

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
SLOW_PHOTO = images.photo("astronaut", "PNG")
BASE64_LIMIT = 1  # on the `ops` server: a 429 is two requests away
APP_ORIGIN, EVIL_ORIGIN = "https://app.example", "https://evil.example"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
CONCURRENT_REQUESTS = 4


def serve(workdir: Path, env: dict[str, str]) -> InProcessServer:
    return InProcessServer(workdir, env=env)


@pytest.fixture(scope="module")
def ops_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operations")


@pytest.fixture(scope="module")
def ops(ops_dir: Path) -> Iterator[InProcessServer]:
    """Saved outputs, folders that do not exist yet, a base64 budget of 1; otherwise defaults
    (no CORS_ORIGINS, default METRICS_ALLOW, no Redis)."""
    env = {
        "SAVE_OUTPUTS": "true",
        "UPLOAD_DIR": str(ops_dir / "not" / "yet" / "uploads"),
        "OUTPUT_DIR": str(ops_dir / "not" / "yet" / "outputs"),
        "RATE_LIMIT_BASE64_PER_HOUR": str(BASE64_LIMIT),
    }
    with serve(ops_dir, env) as server:
        yield server


@pytest.fixture(scope="class")
def cors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {"CORS_ORIGINS": APP_ORIGIN, "API_KEYS": "secret-key"}
    with serve(tmp_path_factory.mktemp("cors"), env) as server:
        yield server


@pytest.fixture(scope="class")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serve(tmp_path_factory.mktemp("narrow"), {"MAX_CONCURRENCY": "1"}) as server:
        yield server


def remove(client: httpx.Client, data: bytes = PHOTO, **options: str) -> httpx.Response:
    return client.post("/remove-background", files={"file": ("cat.jpg", data)}, data=options)


# --- HTTP hardening ----------------------------------------------------------------------------


def assert_no_cors(response: httpx.Response) -> None:
    assert "access-control-allow-origin" not in response.headers, response.headers


def preflight(
    client: httpx.Client, origin: str, path: str = "/remove-background"
) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )


SECURED = {
    "200": lambda client: remove(client),
    "400": lambda client: remove(client, quality="5"),
    "404": lambda client: client.post("/read-file", json={"path": "missing.jpg"}),
    "429": lambda client: meet_base64_limit(client, PHOTO_B64, BASE64_LIMIT),
    "health": lambda client: client.get("/health"),
}


class TestHardening:
    def test_no_cors_by_default(self, ops: InProcessServer, connect: Connect) -> None:
        client = connect(ops)
        assert_no_cors(client.get("/health", headers={"Origin": EVIL_ORIGIN}))
        post = client.post(
            "/remove-background",
            files={"file": ("cat.jpg", PHOTO)},
            headers={"Origin": EVIL_ORIGIN},
        )
        assert_ok(post)
        assert_no_cors(post)
        assert_no_cors(preflight(client, EVIL_ORIGIN))

    # /livez is BentoML's: its case is in tests/e2e/test_operations.py
    @pytest.mark.parametrize("case", SECURED)
    def test_security_headers(self, ops: InProcessServer, connect: Connect, case: str) -> None:
        response = SECURED[case](connect(ops))
        if case.isdigit():
            assert response.status_code == int(case), response.text
        else:
            assert_ok(response)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (name, response.headers)


class TestErrorsOutsideRoutes:
    """ "Every error is JSON with a stable machine-readable `code`" (docs/api.md, "Errors")."""

    def test_unknown_path_is_json_not_found(self, ops: InProcessServer, connect: Connect) -> None:
        response = connect(ops).get("/no-such-route")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert response.json()["code"] == "not_found"

    def test_wrong_method_is_405_with_allow(self, ops: InProcessServer, connect: Connect) -> None:
        response = connect(ops).get("/remove-background")
        assert response.status_code == 405, response.text
        assert "POST" in response.headers.get("allow", "")
        assert "code" in response.json()


class TestCors:
    def test_preflight_from_allowed_origin_needs_no_key(
        self, cors: InProcessServer, connect: Connect
    ) -> None:
        response = preflight(connect(cors), APP_ORIGIN)
        assert_ok(response)
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "x-api-key" in response.headers["access-control-allow-headers"].lower()
        assert "POST" in response.headers["access-control-allow-methods"]

    def test_other_origin_gets_nothing(self, cors: InProcessServer, connect: Connect) -> None:
        client = connect(cors)
        assert_no_cors(preflight(client, EVIL_ORIGIN))
        assert_no_cors(client.get("/health", headers={"Origin": EVIL_ORIGIN}))

    def test_simple_requests_from_allowed_origin(
        self, cors: InProcessServer, connect: Connect
    ) -> None:
        client = connect(cors)
        response = client.get("/presets", headers={"Origin": APP_ORIGIN, "X-API-Key": "secret-key"})
        assert_ok(response)
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        # The browser may read the error too; the key is still demanded.
        refused = client.get("/presets", headers={"Origin": APP_ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP_ORIGIN


class TestConcurrency:
    def test_over_the_cap_is_overloaded_then_serves_again(
        self, narrow: InProcessServer, connect: Connect
    ) -> None:
        clients = [connect(narrow) for _ in range(CONCURRENT_REQUESTS)]
        barrier = threading.Barrier(CONCURRENT_REQUESTS)
        responses: list[httpx.Response] = []

        def fire(client: httpx.Client) -> None:
            barrier.wait()
            responses.append(remove(client, SLOW_PHOTO, format="PNG"))

        threads = [threading.Thread(target=fire, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        statuses = sorted(response.status_code for response in responses)
        assert len(statuses) == CONCURRENT_REQUESTS
        assert set(statuses) == {200, 503}, statuses
        for response in responses:
            if response.status_code == 503:
                assert response.json()["code"] == "overloaded"
                retry_after = response.headers["retry-after"]
                assert retry_after.isdigit() and int(retry_after) >= 1
        for client in clients[:2]:  # one at a time is served normally
            assert_ok(remove(client))

    def test_health_is_not_capped(self, narrow: InProcessServer, connect: Connect) -> None:
        assert_ok(connect(narrow).get("/health"))


# --- files -------------------------------------------------------------------------------------


class TestFiles:
    def test_missing_folders_are_created_at_start(self, ops: InProcessServer) -> None:
        assert Path(ops.env["UPLOAD_DIR"]).is_dir()
        assert Path(ops.env["OUTPUT_DIR"]).is_dir()

    def test_saved_output_equals_the_response(self, ops: InProcessServer, connect: Connect) -> None:
        outputs = Path(ops.env["OUTPUT_DIR"])
        before = set(outputs.iterdir())
        response = remove(connect(ops), format="WEBP")
        assert_ok(response)
        new = set(outputs.iterdir()) - before
        assert [path.read_bytes() == response.content for path in new] == [True], new

    def test_read_file_finds_files_in_the_created_upload_dir(
        self, ops: InProcessServer, connect: Connect
    ) -> None:
        (Path(ops.env["UPLOAD_DIR"]) / "cat.jpg").write_bytes(PHOTO)
        response = connect(ops).post("/read-file", json={"path": "cat.jpg"})
        assert_ok(response)
        assert base64.b64decode(response.json()["image"]) == PHOTO

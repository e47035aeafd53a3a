"""BentoML's own routes (probes, `/docs.json`, Swagger UI) next to ours on a real
`bentoml serve`: the in-process server has none of them."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow


def read(client: httpx.Client, path: object) -> httpx.Response:
    return client.post("/read-file", json={"path": path})


def test_bentoml_routes_stay(client: httpx.Client) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    paths = client.get("/docs.json").json()["paths"]
    for route in (
        "/remove-background",
        "/remove-background-preview",
        "/remove-background-base64",
        "/remove-background-batch",
        "/read-file",
        "/presets",
    ):
        assert route in paths
    assert client.get("/").status_code == 200  # Swagger UI


def test_security_headers_on_every_response(client: httpx.Client) -> None:
    for response in (client.get("/presets"), client.get("/livez"), read(client, "/etc/passwd")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_route_is_in_the_openapi_document(client: httpx.Client) -> None:
    """remove.bg's route is documented in BentoML's `/docs.json` too."""
    paths = client.get("/docs.json").json()["paths"]
    assert "/v1.0/removebg" in paths and "post" in paths["/v1.0/removebg"]

"""BentoML's own routes (probes, `/docs.json`, Swagger UI) next to ours on a real
`bentoml serve`: the in-process server has none of them. Our routes' own headers and answers are
checked in process (tests/integration)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow


BENTOML_ROUTES = ("/livez", "/readyz", "/docs.json", "/")  # "/": Swagger UI


def test_bentoml_routes_stay(client: httpx.Client) -> None:
    for route in BENTOML_ROUTES:
        assert client.get(route).status_code == 200, route
    paths = client.get("/docs.json").json()["paths"]
    for route in (
        "/remove-background",
        "/remove-background-preview",
        "/remove-background-base64",
        "/remove-background-batch",
        "/read-file",
        "/presets",
    ):
        assert "post" in paths[route] or "get" in paths[route], route
    assert "post" in paths["/v1.0/removebg"]  # remove.bg's route is documented too


def test_security_headers_on_bentomls_routes(client: httpx.Client) -> None:
    """Our middleware wraps BentoML's own routes as well."""
    for route in BENTOML_ROUTES:
        response = client.get(route)
        assert response.headers["x-content-type-options"] == "nosniff", route
        assert response.headers["x-frame-options"] == "DENY", route
        assert response.headers["referrer-policy"] == "no-referrer", route

"""CACHE_SCOPE: one result cache shared by every client (the default), or one per client for
multi-tenant servers, where `X-Cache: hit` (or a matching ETag) would tell one tenant that
another processed the same image."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import images
from tests.answers import assert_ok
from tests.integration.api_server import InProcessServer

pytestmark = pytest.mark.slow

TENANTS = ("tenant-a-key", "tenant-b-key")


@pytest.fixture(scope="module", params=["shared", "client"])
def scoped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    env = {"API_KEYS": ",".join(TENANTS), "CACHE_SCOPE": request.param}
    with InProcessServer(tmp_path_factory.mktemp(f"scope-{request.param}"), env=env) as server:
        yield server


def remove(server: InProcessServer, key: str, photo: bytes, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        response = client.post(
            "/remove-background",
            files={"file": ("cat.jpg", photo)},
            headers={"X-API-Key": key, **headers},
        )
    return response


def test_what_one_tenant_learns_about_anothers_images(scoped: InProcessServer) -> None:
    photo, (first, second) = images.fresh(images.photo("chelsea", "JPEG")), TENANTS
    made = remove(scoped, first, photo)
    assert_ok(made)
    other = remove(scoped, second, photo)
    assert_ok(other)
    again = remove(scoped, first, photo)
    assert again.headers["x-cache"] == "hit"  # each tenant's own cache works
    revalidated = remove(scoped, second, photo, **{"If-None-Match": made.headers["etag"]})
    if scoped.settings.cache_scope == "shared":
        assert other.headers["x-cache"] == "hit"
        assert other.headers["etag"] == made.headers["etag"]
        assert revalidated.status_code == 304
    else:
        assert other.headers["x-cache"] == "miss"  # nothing told about the first tenant
        assert other.headers["etag"] != made.headers["etag"]
        assert revalidated.status_code == 200
    assert other.content == made.content  # the same result either way

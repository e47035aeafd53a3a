"""The result cache through the whole HTTP API in process, with the real model: hits, mask
hits, conditional requests, Server-Timing, the in-process bound; then two replicas sharing a
real Redis, which is killed and started again mid-run."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator

import httpx
import psutil
import pytest

from cache import MemoryStore
from optimizer import parse_options
from tests import images
from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer, running_redis
from tests.serving import Connect

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
TTL_S = 600


def remove(
    client: httpx.Client,
    data: bytes,
    path: str = "/remove-background",
    headers: dict[str, str] | None = None,
    **options: str,
) -> httpx.Response:
    return client.post(path, files={"file": ("cat.jpg", data)}, data=options, headers=headers or {})


def timing(response: httpx.Response) -> dict[str, str]:
    """Server-Timing as {name: dur or desc}."""
    entries = {}
    for part in response.headers["server-timing"].split(","):
        name, _, value = part.strip().partition(";")
        entries[name] = value.split("=", 1)[1]
    return entries


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    env = {
        "CACHE_TTL_S": str(TTL_S),
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": "100",
        "CACHE_MAX_BYTES": str(24 << 20),
    }
    with InProcessServer(tmp_path_factory.mktemp("cache"), env=env) as server:
        yield server


class TestOneReplica:
    def test_a_repeat_is_a_byte_identical_hit(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        miss = remove(client, photo)
        hit = remove(client, photo)
        assert (miss.status_code, hit.status_code) == (200, 200)
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
        assert hit.content == miss.content
        assert hit.headers["etag"] == miss.headers["etag"]
        assert hit.headers["cache-control"] == f"private, max-age={TTL_S}"
        assert {"decode", "inference", "compose", "encode", "total"} <= timing(miss).keys()
        assert timing(miss)["cache"] == "miss"
        assert set(timing(hit)) == {"total", "cache"} and timing(hit)["cache"] == "hit"
        assert (
            int(hit.headers["x-ratelimit-remaining"])
            == int(miss.headers["x-ratelimit-remaining"]) - 1
        )  # a hit spends budget too

    def test_other_options_reuse_the_mask(self, cached: InProcessServer, connect: Connect) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        first = remove(client, photo)
        webp = remove(client, photo, format="WEBP", max_width="300")
        assert (first.headers["x-cache"], webp.headers["x-cache"]) == ("miss", "mask")
        assert "inference" not in timing(webp) and "decode" in timing(webp)
        assert webp.headers["content-type"] == "image/webp"
        assert webp.headers["etag"] != first.headers["etag"]
        fresh = remove(connect(cached), images.fresh(PHOTO), format="WEBP", max_width="300")
        assert webp.content == fresh.content  # the cached mask is the model's mask

    def test_if_none_match_is_304_without_body_or_budget(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        first = remove(client, photo)
        etag, left = first.headers["etag"], int(first.headers["x-ratelimit-remaining"])
        for header in (etag, f'"nope", {etag}', "*", f"W/{etag}"):
            again = remove(client, photo, headers={"If-None-Match": header})
            assert again.status_code == 304, header
            assert again.content == b"" and again.headers["etag"] == etag
        other = remove(client, photo, headers={"If-None-Match": etag}, format="JPEG")
        assert other.status_code == 200  # another result: its ETag is another
        assert int(other.headers["x-ratelimit-remaining"]) == left - 1  # only this one spent

    def test_json_routes_hit_and_revalidate(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        body = {"image": base64.b64encode(photo).decode(), "preset": "thumbnail"}
        miss = client.post("/remove-background-base64", json=body)
        hit = client.post("/remove-background-base64", json=body)
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
        assert hit.json()["image"] == miss.json()["image"]
        assert hit.json()["optimization"] == miss.json()["optimization"]
        preview = remove(client, photo, "/remove-background-preview", preset="thumbnail")
        assert preview.headers["x-cache"] == "hit"  # the same result under another route
        assert preview.headers["etag"] == hit.headers["etag"]  # and the same JSON
        image = remove(client, photo, preset="thumbnail")
        assert image.headers["etag"] != hit.headers["etag"]  # but not the same representation
        again = client.post(
            "/remove-background-base64", json=body, headers={"If-None-Match": hit.headers["etag"]}
        )
        assert again.status_code == 304

    def test_removebg_route_hits_too(self, cached: InProcessServer, connect: Connect) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        files = {"image_file": ("cat.jpg", photo)}
        miss = client.post("/v1.0/removebg", files=files, data={"size": "full"})
        hit = client.post("/v1.0/removebg", files=files, data={"size": "full"})
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
        assert hit.content == miss.content
        assert hit.headers["x-foreground-width"] == miss.headers["x-foreground-width"]

    def test_batch_manifest_carries_each_files_etag(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        single = remove(client, photo)
        files = [("files", ("a.jpg", photo)), ("files", ("b.jpg", images.fresh(PHOTO)))]
        response = client.post("/remove-background-batch", files=files)
        rows = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json"))[
            "files"
        ]
        assert [row["cache"] for row in rows] == ["hit", "miss"]
        assert rows[0]["etag"] == single.headers["etag"]
        assert rows[1]["etag"].startswith('"') and rows[1]["etag"] != rows[0]["etag"]

    def test_a_corrupted_value_is_a_miss_never_served(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        photo, client = images.fresh(PHOTO), connect(cached)
        first = remove(client, photo)
        store = cached.application.wiring.store
        assert isinstance(store, MemoryStore)
        keys = asyncio.run(cached.application.producer.keys(photo, parse_options({})))
        store.put_raw(keys.result, b"BGRC" + os.urandom(64))
        again = remove(client, photo)
        assert again.headers["x-cache"] == "mask"  # the result was unreadable: made again
        assert again.content == first.content

    def test_the_in_process_cache_stays_within_its_bound(
        self, cached: InProcessServer, connect: Connect
    ) -> None:
        store = cached.application.wiring.store
        assert isinstance(store, MemoryStore)
        client = connect(cached)
        big = images.encode(images.photo_image("astronaut").resize((1400, 1400)), "PNG")
        # One first: what the first request of this size costs the process (whichever test
        # ran before) is not the cache's growth.
        assert remove(client, images.fresh(big)).status_code == 200
        rss_before = psutil.Process().memory_info().rss
        for _ in range(12):  # about 4 MB per PNG result: twice the 24 MiB bound
            assert remove(client, images.fresh(big)).status_code == 200
            assert store.stored_bytes <= 24 << 20
        grown = psutil.Process().memory_info().rss - rss_before
        assert grown < 200 << 20, f"RSS grew by {grown >> 20} MiB"


@pytest.fixture(scope="module")
def shared_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("cache-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, shared_redis_server: RedisServer
) -> Iterator[tuple[InProcessServer, ...]]:
    env = {"REDIS_URL": shared_redis_server.url, "REDIS_RETRY_INTERVAL": "0.5"}
    with (
        InProcessServer(tmp_path_factory.mktemp("replica-a"), env=env) as first,
        InProcessServer(tmp_path_factory.mktemp("replica-b"), env=env) as second,
    ):
        yield first, second


class TestReplicasSharingRedis:
    def test_a_result_made_on_one_replica_is_a_hit_on_the_other(
        self, replicas: tuple[InProcessServer, ...], connect: Connect
    ) -> None:
        photo = images.fresh(PHOTO)
        made = remove(connect(replicas[0]), photo)
        reused = remove(connect(replicas[1]), photo)
        assert (made.headers["x-cache"], reused.headers["x-cache"]) == ("miss", "hit")
        assert reused.content == made.content
        assert reused.headers["etag"] == made.headers["etag"]  # the same on every replica
        masked = remove(connect(replicas[1]), photo, format="AVIF")
        assert masked.headers["x-cache"] == "mask"
        assert (
            remove(
                connect(replicas[0]), photo, headers={"If-None-Match": made.headers["etag"]}
            ).status_code
            == 304
        )

    def test_redis_killed_mid_run_serves_everything_and_the_cache_resumes(
        self,
        replicas: tuple[InProcessServer, ...],
        shared_redis_server: RedisServer,
        connect: Connect,
    ) -> None:
        photo = images.fresh(PHOTO)
        assert remove(connect(replicas[0]), photo).headers["x-cache"] == "miss"
        shared_redis_server.stop()
        try:
            during = [remove(connect(replica), photo) for replica in replicas for _ in range(2)]
            assert [response.status_code for response in during] == [200] * 4
            assert {response.headers["x-cache"] for response in during} == {"miss"}
            health = connect(replicas[0]).get("/health").json()
            assert "; cache: redis unreachable (" in health["checks"]["redis"]["detail"]
        finally:
            shared_redis_server.start()
        time.sleep(0.6)  # past REDIS_RETRY_INTERVAL
        again = images.fresh(PHOTO)
        assert remove(connect(replicas[0]), again).headers["x-cache"] == "miss"
        assert remove(connect(replicas[1]), again).headers["x-cache"] == "hit"

"""Locust load test of the background-removal service: one user class per endpoint.

Run it through `loadtests/run.sh HOST` (see README.md). The mix, by users (class weights):

    RemoveBackgroundUser  POST /remove-background           6   think 1-3 s
    PreviewUser           POST /remove-background-preview   4   think 1-3 s
    Base64User            POST /remove-background-base64    2   think 1-3 s
    BatchUser             POST /remove-background-batch     1   think 2-5 s, 2-4 files
    ReadFileUser          POST /read-file                   1   think 2-5 s
    PresetsUser           GET  /presets                     1   think 3-8 s
    HealthUser            GET  /health                      1   every 5 s (a monitor)

Locust hands out users by weight, heaviest first: with MAX_USERS >= 10 every class has a user.
Inputs are skimage photos resized to 0.25/1/3/12 MP (weights 4/3/2/1) as JPEG or PNG (2/1),
built once per process before the run starts. Request names are `<path> [<bucket>]`.

Environment: LOADTEST_API_KEY (sent as X-API-Key), LOADTEST_SEED (reproducible choices),
LOADTEST_BUCKETS (e.g. `0.25MP,1MP` to leave big images out), LOADTEST_READ_FILE_PATHS
(comma list relative to the server's UPLOAD_DIR; default: what `python -m loadtests.inputs
write-uploads` writes), LOADTEST_MAX_BACKOFF (cap, seconds, on honouring Retry-After [10]),
LOADTEST_REPEAT_SHARE (share of image requests that repeat one of the last 32 exactly
[0.3]; every other upload is bytes never sent, which the result cache cannot know),
LOADTEST_CACHE_FILE
(where the run's X-Cache counts are written), and the shape's STEP_USERS, STEP_SECONDS,
MAX_USERS, RUN_SECONDS (loadtests/steps.py).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # locust puts only loadtests/ on the path
    sys.path.insert(0, str(ROOT))

from loadtests import inputs, options  # noqa: E402
from loadtests.shape import StepLoadShape  # noqa: E402

__all__ = [
    "Base64User",
    "BatchUser",
    "HealthUser",
    "PresetsUser",
    "PreviewUser",
    "ReadFileUser",
    "RemoveBackgroundUser",
    "StepLoadShape",
]

log = logging.getLogger("loadtest")
_seeds = itertools.count()
# How often a request repeats one of the last ones exactly (same image bytes, same options):
# real traffic repeats (a retry after a timeout, a re-uploaded catalogue, two clients asking
# for the same picture), and the service caches. Every other upload is bytes never sent.
DEFAULT_REPEAT_SHARE = 0.3
# X-Cache of every successful single-result response: the hit ratio of the run.
CACHE_OUTCOMES: Counter[str] = Counter()
# (method, path, name, check, body, content type) of the image requests sent lately.
Request = tuple[str, str, str, Callable[[Any], str | None], bytes, str]
RECENT: inputs.RecentRequests[Request] = inputs.RecentRequests()


def _buckets() -> list[str]:
    raw = os.environ.get("LOADTEST_BUCKETS", "")
    chosen = [item.strip() for item in raw.split(",") if item.strip()] or list(inputs.BUCKETS)
    unknown = [item for item in chosen if item not in inputs.BUCKETS]
    if unknown:
        raise ValueError(f"LOADTEST_BUCKETS: unknown {unknown}; choose from {list(inputs.BUCKETS)}")
    return chosen


def _read_file_paths() -> list[str]:
    raw = os.environ.get("LOADTEST_READ_FILE_PATHS", "")
    return [item.strip() for item in raw.split(",") if item.strip()] or inputs.read_file_paths()


@events.quitting.add_listener
def _write_cache_outcomes(**_: Any) -> None:
    """The run's X-Cache counts, for loadtests/summarize.py (LOADTEST_CACHE_FILE)."""
    path = os.environ.get("LOADTEST_CACHE_FILE")
    if path:
        Path(path).write_text(json.dumps(dict(CACHE_OUTCOMES)))


@events.init.add_listener
def _build_inputs(environment: Any, **_: Any) -> None:
    """Encode every input once, before the run starts (encoding would stall the event loop)."""
    samples = inputs.corpus(_buckets())
    total = sum(len(item.data) for item in samples)
    log.info(
        "load-test inputs: %d images, %.1f MB, buckets %s",
        len(samples),
        total / 1e6,
        ", ".join(_buckets()),
    )
    shape = getattr(environment, "shape_class", None)
    if isinstance(shape, StepLoadShape):
        log.info("%s", shape.describe())


class ServiceUser(FastHttpUser):
    """Shared plumbing: API key, think time, Retry-After, failure kinds."""

    abstract = True
    network_timeout = 180.0  # the service's own request timeout is 120 s
    connection_timeout = 30.0
    think: ClassVar[tuple[float, float]] = (1.0, 3.0)

    def on_start(self) -> None:
        seed = os.environ.get("LOADTEST_SEED")
        self.rng = random.Random(f"{seed}-{next(_seeds)}" if seed else None)
        key = os.environ.get("LOADTEST_API_KEY")
        self.auth = {"X-API-Key": key} if key else {}
        self.backoff = 0.0
        self.max_backoff = float(os.environ.get("LOADTEST_MAX_BACKOFF", "10"))
        self.repeat_share = float(os.environ.get("LOADTEST_REPEAT_SHARE", DEFAULT_REPEAT_SHARE))

    def wait_time(self) -> float:
        backoff, self.backoff = self.backoff, 0.0
        return max(backoff, self.rng.uniform(*self.think))

    def send(
        self,
        method: str,
        path: str,
        name: str,
        check: Callable[[Any], str | None],
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> int:
        """One request: non-2xx (and 2xx failing `check`) recorded as failures by kind."""
        headers = dict(self.auth)
        if content_type:
            headers["Content-Type"] = content_type
        with self.client.request(
            method, path, name=name, data=body, headers=headers, catch_response=True
        ) as response:
            status = response.status_code
            if status == 0:
                problem = f"connection error: {type(response.error).__name__}"
            elif not 200 <= status < 300:
                problem = options.error_kind(status, response.content or b"")
                if status in (429, 503):
                    self._honour_retry_after(response.headers.get("Retry-After"))
            else:
                problem = check(response)
                if outcome := response.headers.get("X-Cache"):
                    CACHE_OUTCOMES[outcome] += 1
            if problem:
                response.failure(problem)
            else:
                response.success()
        return status

    def _honour_retry_after(self, value: str | None) -> None:
        try:
            self.backoff = min(float(value or 1), self.max_backoff)
        except ValueError:
            self.backoff = 1.0

    def pick(self, buckets: list[str] | None = None) -> inputs.Sample:
        return inputs.pick(self.rng, buckets or _buckets())

    def upload(self, item: inputs.Sample) -> bytes:
        return inputs.fresh_bytes(item.data, self.rng)

    def send_image_request(self, build: Callable[[], Request]) -> None:
        """A repeat of a recent request (LOADTEST_REPEAT_SHARE of the time), else a new one."""
        request = RECENT.replay(self.rng, self.repeat_share)
        if request is None:
            request = build()
            RECENT.remember(request)
        self.send(*request)


class RemoveBackgroundUser(ServiceUser):
    weight = 6

    @task
    def remove_background(self) -> None:
        self.send_image_request(self.build)

    def build(self) -> Request:
        item = self.pick()
        opts = options.random_options(self.rng)
        body, content_type = options.multipart(
            opts, [("file", item.filename, item.mimetype, self.upload(item))]
        )
        expected = options.expected_mimetype(opts)
        return (
            "POST",
            "/remove-background",
            f"/remove-background [{item.bucket}]",
            lambda r: options.check_image(
                r.headers.get("Content-Type"), r.content or b"", expected
            ),
            body,
            content_type,
        )


class PreviewUser(ServiceUser):
    weight = 4

    @task
    def preview(self) -> None:
        self.send_image_request(self.build)

    def build(self) -> Request:
        item = self.pick()
        opts = options.random_options(self.rng)
        body, content_type = options.multipart(
            opts, [("file", item.filename, item.mimetype, self.upload(item))]
        )
        expected = options.expected_mimetype(opts)
        return (
            "POST",
            "/remove-background-preview",
            f"/remove-background-preview [{item.bucket}]",
            lambda r: options.check_json_result(r.content or b"", expected),
            body,
            content_type,
        )


class Base64User(ServiceUser):
    weight = 2
    data_url_share = 0.3  # a share of clients send a data URL instead of bare base64

    @task
    def base64(self) -> None:
        self.send_image_request(self.build)

    def build(self) -> Request:
        item = self.pick()
        opts = options.json_options(options.random_options(self.rng))
        image = base64.b64encode(self.upload(item)).decode("ascii")
        if self.rng.random() < self.data_url_share:
            image = f"data:{item.mimetype};base64,{image}"
        expected = options.expected_mimetype(opts)
        return (
            "POST",
            "/remove-background-base64",
            f"/remove-background-base64 [{item.bucket}]",
            lambda r: options.check_json_result(r.content or b"", expected),
            json.dumps({"image": image, **opts}).encode(),
            "application/json",
        )


class BatchUser(ServiceUser):
    weight = 1
    think = (2.0, 5.0)
    buckets: ClassVar[tuple[str, ...]] = ("0.25MP", "1MP")  # a batch body stays well < 16 MiB

    @task
    def batch(self) -> None:
        self.send_image_request(self.build)

    def build(self) -> Request:
        allowed = [name for name in self.buckets if name in _buckets()] or [_buckets()[0]]
        bucket = self.pick(allowed).bucket
        count = self.rng.randint(2, 4)
        photos = self.rng.sample(inputs.PHOTO_NAMES, count)
        files = [
            inputs.sample(photo, bucket, self.rng.choice(list(inputs.UPLOAD_FORMATS)))
            for photo in photos
        ]
        opts = options.random_options(self.rng)
        body, content_type = options.multipart(
            opts, [("files", item.filename, item.mimetype, self.upload(item)) for item in files]
        )
        return (
            "POST",
            "/remove-background-batch",
            f"/remove-background-batch [{bucket}]",
            lambda r: options.check_batch(r.headers.get("Content-Type"), r.content or b"", count),
            body,
            content_type,
        )


class ReadFileUser(ServiceUser):
    """Reads the samples that run.sh / serve-for-load.sh put in the server's UPLOAD_DIR.

    A path the server does not have (404) is reported once, logged, and not asked again;
    with none left the user idles.
    """

    weight = 1
    think = (2.0, 5.0)
    missing: ClassVar[set[str]] = set()

    @task
    def read_file(self) -> None:
        paths = [path for path in _read_file_paths() if path not in self.missing]
        if not paths:
            return
        path = self.rng.choice(paths)
        status = self.send(
            "POST",
            "/read-file",
            "/read-file",
            lambda r: options.check_read_file(r.content or b""),
            json.dumps({"path": path}).encode(),
            "application/json",
        )
        if status == 404 and path not in self.missing:
            self.missing.add(path)
            log.warning(
                "/read-file: %r is not in the server's UPLOAD_DIR; skipping it from "
                "now on (populate it with `python -m loadtests.inputs write-uploads "
                "<UPLOAD_DIR>`, or run loadtests/serve-for-load.sh)",
                path,
            )
            if len(self.missing) >= len(_read_file_paths()):
                log.warning("/read-file: no sample path left; ReadFileUser idles")


class PresetsUser(ServiceUser):
    weight = 1
    think = (3.0, 8.0)

    @task
    def presets(self) -> None:
        self.send("GET", "/presets", "/presets", lambda r: options.check_presets(r.content or b""))


class HealthUser(ServiceUser):
    weight = 1
    think = (5.0, 5.0)

    @task
    def health(self) -> None:
        self.send("GET", "/health", "/health", lambda r: options.check_health(r.content or b""))

"""Locust load test of the background-removal service; loadtests/README.md tells its modes and
settings. Closed loop: one user class per endpoint, each waiting for its answers. Open loop
(--rate): requests leave at a schedule's times whatever the answers, each timed from its
intended send time. Many processes: one arrival generator per worker, the series merged at the
master. The exit code is the SLO verdict (slo.py).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import gevent
from gevent.pool import Group
from locust import LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import WorkerRunner

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # locust puts only loadtests/ on the path
    sys.path.insert(0, str(ROOT))

from loadtests import inputs, options  # noqa: E402
from loadtests.plans import Schedule, StepPlan, interleave, is_repeat  # noqa: E402
from loadtests.slo import Series, Slo, capacity, verdict  # noqa: E402
from tests.serving import fresh  # noqa: E402

log = logging.getLogger("loadtest")
SERIES = Series()  # this process's answers; at the master, every worker's
ORIGIN = [time.perf_counter()]  # t = 0 of the series and the schedule: the test's start
RECENT: dict[str, deque] = {}  # endpoint -> its last requests, for exact replays
MISSING: set[str] = set()  # /read-file paths the server does not have
_users = itertools.count()


def env_list(name: str, default: list[str]) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()] or default


def buckets() -> list[str]:
    chosen = env_list("LOADTEST_BUCKETS", list(inputs.BUCKETS))
    if unknown := set(chosen) - set(inputs.BUCKETS):
        raise ValueError(f"LOADTEST_BUCKETS: {sorted(unknown)} not in {list(inputs.BUCKETS)}")
    return chosen


# --------------------------------------------------------------------------- the requests


@dataclass(frozen=True)
class Request:
    path: str
    check: Callable[[Any, bytes], str | None]  # (headers, body) -> failure message or None
    body: bytes | None = None
    content_type: str | None = None
    bucket: str = ""  # the size of its images, in its name: latency per endpoint and size
    method: str = "POST"

    @property
    def name(self) -> str:
        return f"{self.path} [{self.bucket}]" if self.bucket else self.path


def upload(user: Sender, path: str, check: Callable[..., str | None]) -> Request:
    """One photo as the multipart `file` with random options; `check` gets the mimetype due."""
    item, opts = user.pick(), user.options()
    files = [("file", item.filename, item.mimetype, user.upload(item))]
    body, content_type = options.multipart(opts, files)
    expected = options.expected_mimetype(opts)
    return Request(path, partial(check, expected=expected), body, content_type, item.bucket)


def base64_json(user: Sender) -> Request:
    """30 % of clients send a data URL instead of bare base64."""
    item, opts = user.pick(), options.json_options(user.options())
    image = base64.b64encode(user.upload(item)).decode("ascii")
    if user.rng.random() < 0.3:
        image = f"data:{item.mimetype};base64,{image}"
    check = partial(options.check_json_result, expected=options.expected_mimetype(opts))
    body = json.dumps({"image": image, **opts}).encode()
    return Request("/remove-background-base64", check, body, "application/json", item.bucket)


def batch(user: Sender) -> Request:
    """2-4 photos of one small bucket (a batch body stays well under 16 MiB)."""
    small = [name for name in ("0.25MP", "1MP") if name in buckets()] or buckets()[:1]
    bucket, count = user.pick(small).bucket, user.rng.randint(2, 4)
    photos = user.rng.sample(inputs.PHOTO_NAMES, count)
    files = [inputs.sample(p, bucket, user.rng.choice(list(inputs.UPLOAD_FORMATS))) for p in photos]
    parts = [("files", item.filename, item.mimetype, user.upload(item)) for item in files]
    body, content_type = options.multipart(user.options(), parts)
    check = partial(options.check_batch, count=count)
    return Request("/remove-background-batch", check, body, content_type, bucket)


def read_file(user: Sender) -> Request | None:
    """A sample that run.sh or serve-for-load.sh put in the server's UPLOAD_DIR; a path the
    server lacks (404) is logged once and not asked again."""
    if not (paths := [path for path in inputs.read_file_paths() if path not in MISSING]):
        return None
    body = json.dumps({"path": user.rng.choice(paths)}).encode()
    return Request("/read-file", options.check_json_result, body, "application/json")


REMOVE, PREVIEW = "/remove-background", "/remove-background-preview"
# user class -> (weight, think time in s, the request it sends); the first four are replayed
ENDPOINTS: dict[str, tuple[int, tuple[float, float], Callable[[Any], Request | None]]] = {
    "RemoveBackgroundUser": (6, (1, 3), partial(upload, path=REMOVE, check=options.check_image)),
    "PreviewUser": (4, (1, 3), partial(upload, path=PREVIEW, check=options.check_json_result)),
    "Base64User": (2, (1, 3), base64_json),
    "BatchUser": (1, (2, 5), batch),
    "ReadFileUser": (1, (2, 5), read_file),
    "PresetsUser": (1, (3, 8), lambda _: Request("/presets", options.check_presets, method="GET")),
    "HealthUser": (1, (5, 5), lambda _: Request("/health", options.check_health, method="GET")),
}
REPLAYED = ("RemoveBackgroundUser", "PreviewUser", "Base64User", "BatchUser")


class Sender(FastHttpUser):
    """What both loops share: seeds, inputs, replays, the API key, and how an answer counts."""

    abstract = True
    network_timeout = 180.0  # the service's own request timeout is 120 s
    connection_timeout = 30.0

    def on_start(self) -> None:
        seed = os.environ.get("LOADTEST_SEED")
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.rng = random.Random(f"{seed}-{worker}-{next(_users)}" if seed else None)
        key = os.environ.get("LOADTEST_API_KEY")
        self.auth = {"X-API-Key": key} if key else {}
        self.repeat_share = float(os.environ.get("LOADTEST_REPEAT_SHARE", "0.3"))
        self.plain = os.environ.get("LOADTEST_DEFAULT_OPTIONS", "").lower() == "true"
        self.backoff = 0.0

    def options(self) -> dict[str, str]:
        return {} if self.plain else options.random_options(self.rng)

    def pick(self, allowed: list[str] | None = None) -> inputs.Sample:
        return inputs.pick(self.rng, allowed or buckets())

    def upload(self, item: inputs.Sample) -> bytes:
        return fresh(item.data, self.rng)

    def request_for(self, endpoint: str, repeat: bool) -> Request | None:
        """A repeat of one of the endpoint's last 32 requests (the same bytes and options), or
        a new one."""
        recent = RECENT.setdefault(endpoint, deque(maxlen=32))
        if repeat and recent:
            return self.rng.choice(recent)
        request = ENDPOINTS[endpoint][2](self)
        if request and endpoint in REPLAYED:
            recent.append(request)
        return request

    def send(self, request: Request, intended: float | None = None) -> None:
        """One request, counted in locust's stats (non-2xx and failed checks as failures, by
        kind) and in the series; the clock starts at `intended` when given."""
        content = {"Content-Type": request.content_type} if request.content_type else {}
        sent = time.perf_counter() if intended is None else intended
        SERIES.sent(sent - ORIGIN[0], request.path)
        kwargs: dict[str, Any] = {"name": request.name, "data": request.body}
        with self.client.request(
            request.method, request.path, headers=self.auth | content, catch_response=True, **kwargs
        ) as response:
            done = time.perf_counter()
            response.request_meta["response_time"] = elapsed_ms = (done - sent) * 1000
            outcome, problem = self.judge(response, request.check)
            SERIES.answered(sent - ORIGIN[0], done - ORIGIN[0], request.path, outcome, elapsed_ms)
            response.failure(problem) if problem else response.success()
        if response.status_code == 404 and request.path == "/read-file":
            MISSING.add(missing := json.loads(request.body or b"{}")["path"])
            log.warning("/read-file: %r is not in UPLOAD_DIR: not asked again", missing)

    def judge(self, response: Any, check: Callable[..., str | None]) -> tuple[str, str | None]:
        """(outcome, failure message): ok, shed (a 503 with Retry-After) or error."""
        status, retry_after = response.status_code, response.headers.get("Retry-After")
        if status == 0:
            return "error", f"connection error: {type(response.error).__name__}"
        if 200 <= status < 300:
            if cached := response.headers.get("X-Cache"):
                SERIES.cache[cached] += 1
            problem = check(response.headers, response.content or b"")
            return ("error" if problem else "ok"), problem
        if status in (429, 503):
            cap = float(os.environ.get("LOADTEST_MAX_BACKOFF", "10"))
            self.backoff = min(float(retry_after), cap) if (retry_after or "").isdigit() else 1.0
        shed = status == 503 and retry_after is not None
        return ("shed" if shed else "error"), options.error_kind(status, response.content or b"")


class ClosedLoopUser(Sender):
    """A polite client of one endpoint: waits for each answer, thinks, honours Retry-After."""

    abstract = True
    endpoint: ClassVar[str] = ""

    def wait_time(self) -> float:
        backoff, self.backoff = self.backoff, 0.0
        return max(backoff, self.rng.uniform(*ENDPOINTS[self.endpoint][1]))

    @task
    def call(self) -> None:
        repeat = self.endpoint in REPLAYED and self.rng.random() < self.repeat_share
        if request := self.request_for(self.endpoint, repeat):
            self.send(request)


def closed(name: str) -> type[ClosedLoopUser]:
    namespace = {"endpoint": name, "weight": ENDPOINTS[name][0], "__module__": __name__}
    return type(name, (ClosedLoopUser,), namespace)


# One user class per endpoint, named as in ENDPOINTS: locust finds them among this module's names.
globals().update({name: closed(name) for name in ENDPOINTS})


class OpenLoopUser(Sender):
    """One arrival generator of the open loop: with G of them (one per worker), this one sends
    arrivals worker_index, +G, +2G, … of the schedule, each in a greenlet of its own."""

    concurrency = 512  # requests in flight at once over its connections
    weight = 1

    def wait_time(self) -> float:
        return 1.0

    def on_start(self) -> None:
        super().on_start()
        parsed, runner = self.environment.parsed_options, self.environment.runner
        generators = parsed.expect_workers if isinstance(runner, WorkerRunner) else 1
        first = runner.worker_index % generators if generators > 1 else 0
        self.arrivals = Schedule(parsed.rate).arrivals(first, generators)
        names = env_list("LOADTEST_MIX", list(ENDPOINTS))
        self.mix = interleave({name: ENDPOINTS[name][0] for name in names})
        self.in_flight = Group()

    def on_stop(self) -> None:
        self.in_flight.kill(block=False)  # unanswered at the end: sent, never answered

    @task
    def offer(self) -> None:
        for index, due in self.arrivals:
            gevent.sleep(max(0.0, ORIGIN[0] + due - time.perf_counter()))
            self.in_flight.spawn(self.arrive, index, ORIGIN[0] + due)

    def arrive(self, index: int, intended: float) -> None:
        endpoint = self.mix[index % len(self.mix)]
        repeat = endpoint in REPLAYED and is_repeat(index, self.repeat_share)
        if request := self.request_for(endpoint, repeat):
            self.send(request, intended)


class LoadShape(LoadTestShape):
    """Open loop when a rate is set: one generator per worker until the schedule has ended and
    every request has been answered (at most LOADTEST_DRAIN_S [60] longer); else the closed
    loop's user steps."""

    def __init__(self) -> None:
        super().__init__()
        self.plan = StepPlan.from_env()

    def tick(self) -> tuple[int, float, list] | None:
        environment, now = self.runner.environment, self.get_run_time()
        if rate := environment.parsed_options.rate:
            end, stats = Schedule(rate).end, SERIES.stats()
            drained = stats.sent == stats.answered and now >= end + 4  # a worker reports every 3 s
            if drained or now >= end + float(os.environ.get("LOADTEST_DRAIN_S", "60")):
                return None
            generators = max(1, self.runner.worker_count)
            return generators, generators, [OpenLoopUser]
        users = self.plan.tick(now)
        closed = [cls for cls in environment.user_classes if cls is not OpenLoopUser]
        return users and (*users, closed)


# --------------------------------------------------------------------------- events


ARGUMENTS = [  # flag (its variable: LOADTEST_ and the flag's name), type, default, help
    ("--rate", str, "", "open loop: a rate schedule, e.g. 1..10/1@30 (plans.Schedule)"),
    ("--slo-p95", str, "", "p95 ms of ok answers: 3000, or /remove-background=3000,*=5000"),
    ("--slo-p99", str, "", "p99 ms, as --slo-p95"),
    ("--slo-error-ratio", float, 0.01, "errors / answers [0.01]"),
    ("--slo-shed-ratio", float, None, "shed 503s / answers"),
    ("--slo-min-rps", float, None, "ok answers per second over the run"),
    ("--slo-shed-is-error", bool, False, "count shed 503s as errors"),
    ("--pods", int, 1, "replicas serving the run, for the capacity per pod [1]"),
    ("--target-rps", float, None, "a rate to plan replicas for"),
]


@events.init_command_line_parser.add_listener
def _arguments(parser: Any, **_: Any) -> None:
    group = parser.add_argument_group("bg-remover", "open loop, SLO verdict, capacity")
    for flag, kind, default, text in ARGUMENTS:
        variable = "LOADTEST_" + flag[2:].upper().replace("-", "_")
        how = {"action": "store_true"} if kind is bool else {"type": kind, "default": default}
        group.add_argument(flag, env_var=variable, help=text, **how)


def slo_of(parsed: Any) -> Slo:
    limits = Slo.limits(parsed.slo_p95), Slo.limits(parsed.slo_p99)
    ratios = parsed.slo_error_ratio, parsed.slo_shed_ratio, parsed.slo_min_rps
    return Slo(*limits, *ratios, parsed.slo_shed_is_error)


@events.init.add_listener
def _build_inputs(environment: Any, **_: Any) -> None:
    """Encode every input once, before the run, in a native thread: encoding in a greenlet
    would stall the event loop, and a worker's heartbeats with it."""
    if environment.parsed_options and not environment.parsed_options.master:
        samples = gevent.get_hub().threadpool.apply(inputs.corpus, (buckets(),))
        size = sum(len(sample.data) for sample in samples) / 1e6
        log.info("load-test inputs: %d images, %.1f MB", len(samples), size)


@events.test_start.add_listener
def _start_clock(**_: Any) -> None:
    ORIGIN[0] = time.perf_counter()


@events.report_to_master.add_listener
def _report(data: dict, **_: Any) -> None:
    data["series"] = SERIES.drain()


@events.worker_report.add_listener
def _collect(data: dict, **_: Any) -> None:
    SERIES.merge(data.get("series", {}))


@events.quitting.add_listener
def _verdict(environment: Any, **_: Any) -> None:
    """The SLO verdict is the exit code; the series is saved beside the CSVs."""
    if isinstance(environment.runner, WorkerRunner):
        return
    parsed = environment.parsed_options
    slo = slo_of(parsed)
    SERIES.meta.update(rate=parsed.rate, slo=dataclasses.asdict(slo), pods=parsed.pods)
    SERIES.meta["target"] = parsed.target_rps
    passed, text = verdict(SERIES, slo)
    print(text)
    if found := capacity(SERIES, slo, parsed.pods, parsed.target_rps):
        print(found.summary())
    if parsed.csv_prefix:
        SERIES.save(Path(f"{parsed.csv_prefix}_series.json"))
    environment.process_exit_code = 0 if passed else 1

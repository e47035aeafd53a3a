"""Performance benchmark: bare onnxruntime ceiling, our service and rembg's server, one run.

    .venv/bin/python bench/performance.py [--quick] [--soak-minutes N] [--skip-rembg]
    .venv/bin/python bench/performance.py --layouts [--quick] [--rounds N]

Measures on the same images and machine: (a) u2netp's bare onnxruntime throughput, latency and
CPU per image in the layouts the service can use; (b) our service's req/s and latency at
concurrency 1, 4 and 8 (closed loop, 1 MP JPEG with fresh bytes -> default PNG) and the CPU each
of its processes spends per request; (c) `rembg s` under the same load, from its own venv
(bench/setup-rembg-server.sh); (d) the result cache: miss, hit and mask-hit latency, and the
mixed locust workload with and without the cache; (e) total RSS of each server's process tree;
(f) 12 MP vs 1 MP at max_width=1200; and a per-stage profile from the service's JSON request
log. Writes bench/results/<timestamp>.md and prints it. `--layouts` instead compares serving
layouts at concurrency 8. See bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from bench.perf_report import (  # noqa: E402
    CACHE_HIT,
    CACHE_MASK,
    CACHE_MASK_PNG,
    CACHE_MISS,
    CACHE_MISS_PNG,
    CACHE_MISS_WEBP,
    CACHE_OFF,
    CACHE_ON,
    SIZE_LARGE,
    SIZE_SMALL,
    Layout,
    LoadResult,
    Measurements,
    MixedRun,
    RssTrace,
    cpu_split,
    level_label,
    median_stages,
    process_role,
    render,
    render_layouts,
    soak_growth,
    summarize_layouts,
)
from settings import Settings  # noqa: E402

MODEL = "u2netp"
REMBG_VENV = ROOT / ".venv-rembg"
REMBG_VERSION = "2.0.86"
LEVELS = (1, 4, 8)
SMALL_SIZE = (1224, 816)  # ~1 MP
LARGE_SIZE = (4240, 2832)  # ~12 MP
JPEG_QUALITY = 90
RSS_INTERVAL_S = 0.5
REQUEST_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 180.0

# The mixed workload: enough users that the server saturates despite the locustfile's 1-3 s
# think times, yet fewer than MAX_CONCURRENCY (32), so that its concurrency limit sheds none.
MIXED_USERS = 24
MIXED_REPEAT_SHARE = "0.3"
MIXED_SEED = "bench-performance"
LAYOUT_GRID = (
    *(
        Layout(workers, threads, spinning, nice)
        for workers, threads in ((1, 2), (2, 1))
        for spinning in (False, True)
        for nice in (0, 10)
    ),
    Layout(1, 2, False, 0, parallel_runs=2),
)
# Limits off, and the JSON request log in every run (the profile needs it), so that the API
# worker's logging CPU is the same in each.
SERVICE_ENV = {"BENTOML_DO_NOT_TRACK": "true", "RATE_LIMIT_ENABLED": "false", "LOG_FORMAT": "json"}


@dataclass(frozen=True)
class BareLayout:
    """A bare onnxruntime layout: processes started together, each one session."""

    label: str
    processes: int
    threads: int  # intra-op threads per process
    batch: int
    spinning: bool = False


def single_label(threads: int, spinning: bool) -> str:
    return f"1 process × {threads} thread{'s' if threads > 1 else ''}" + (
        ", spinning" if spinning else ""
    )


def bare_layouts(
    served_threads: int, served_spinning: bool, with_batch: bool = True
) -> tuple[list[BareLayout], str]:
    """The layouts to measure, and the label of the one the service runs an image in.

    Spinning needs a pool: with one intra-op thread onnxruntime has nothing to spin.
    """
    layouts = [
        BareLayout(single_label(1, False), 1, 1, 1),
        BareLayout(single_label(2, False), 1, 2, 1),
        BareLayout(single_label(2, True), 1, 2, 1, spinning=True),
        BareLayout("2 processes × 1 thread (total)", 2, 1, 1),
    ]
    if with_batch:
        layouts.append(BareLayout("batch of 4, 1 process × 2 threads", 1, 2, 4))
    spinning = served_spinning and served_threads > 1
    served = single_label(served_threads, spinning)
    if all(layout.label != served for layout in layouts):
        layouts.append(BareLayout(served, 1, served_threads, 1, spinning))
    return layouts, served


@dataclass(frozen=True)
class Plan:
    level_s: float
    ceiling_s: float
    size_requests: int
    rest_s: float
    soak_minutes: float
    cache_requests: int = 20  # fresh inputs for the cache latencies, each sent once per probe
    mixed_s: float = 60  # each locust run of the mixed workload; 0: not run
    mixed_users: int = MIXED_USERS


# --------------------------------------------------------------------------- images


def make_images() -> dict[str, bytes]:
    """1 MP and 12 MP JPEGs (q90) from skimage's coffee photo, Lanczos-resized."""
    from skimage import data

    photo = Image.fromarray(data.coffee())
    images = {}
    for name, size in (("1mp", SMALL_SIZE), ("12mp", LARGE_SIZE)):
        buffer = io.BytesIO()
        photo.resize(size, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=JPEG_QUALITY)
        images[name] = buffer.getvalue()
    return images


# --------------------------------------------------------------------------- (a) ceiling


def _model_tensor(jpeg: bytes) -> np.ndarray:
    """The 1×3×320×320 float32 input the service would compute for this photo."""
    from optimizer.pipeline import model_input
    from segmentation import get_spec

    spec = get_spec(MODEL)
    pixels = model_input(Image.open(io.BytesIO(jpeg)), spec.input_size)[np.newaxis]
    scaled = pixels.astype(np.float64) / max(float(pixels.max()), 1e-6)
    normalized = (scaled - np.array(spec.mean)) / np.array(spec.std)
    return normalized.transpose(0, 3, 1, 2).astype(np.float32)


def _ceiling_worker(
    model_path: str,
    threads: int,
    spinning: bool,
    tensor: np.ndarray,
    seconds: float,
    barrier,
    results,
) -> None:
    """One process: the service's session options, warm, then as many runs as fit.

    Puts (images, wall s, process CPU s, run times s); process CPU covers every thread,
    spinning intra-op threads included, as psutil reads a model worker's.
    """
    import onnxruntime as ort

    from segmentation.session import session_options

    ort.disable_telemetry_events()
    session = ort.InferenceSession(
        model_path,
        sess_options=session_options(threads, spinning),
        providers=["CPUExecutionProvider"],
    )
    feed = {session.get_inputs()[0].name: tensor}
    output = [session.get_outputs()[0].name]
    for _ in range(3):
        session.run(output, feed)
    barrier.wait()
    runs: list[float] = []
    cpu_started, started = time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        sent = time.perf_counter()
        session.run(output, feed)
        runs.append(time.perf_counter() - sent)
    results.put(
        (
            len(runs) * len(tensor),
            time.perf_counter() - started,
            time.process_time() - cpu_started,
            runs,
        )
    )


def measure_ceiling(
    m: Measurements, jpeg: bytes, seconds: float, layouts: list[BareLayout]
) -> None:
    import bentoml

    model_path = bentoml.models.get(MODEL).path_of("model.onnx")
    single = _model_tensor(jpeg)
    context = multiprocessing.get_context("spawn")
    for layout in layouts:
        tensor = np.repeat(single, layout.batch, axis=0)
        barrier, results = context.Barrier(layout.processes), context.Queue()
        workers = [
            context.Process(
                target=_ceiling_worker,
                args=(
                    model_path,
                    layout.threads,
                    layout.spinning,
                    tensor,
                    seconds,
                    barrier,
                    results,
                ),
            )
            for _ in range(layout.processes)
        ]
        with CpuShare() as share:
            for worker in workers:
                worker.start()
            parts = [results.get(timeout=seconds + 120) for _ in workers]
            for worker in workers:
                worker.join()
        rate = sum(images / wall for images, wall, _, _ in parts)
        images = sum(part[0] for part in parts)
        m.ceiling[layout.label] = rate
        m.ceiling_cpu_ms[layout.label] = sum(part[2] for part in parts) * 1000 / images
        m.ceiling_run_ms[layout.label] = (
            float(np.median([t for part in parts for t in part[3]])) * 1000
        )
        m.ceiling_other_cpu[layout.label] = share.other
        log(
            f"ceiling {layout.label}: {rate:.2f} images/s, "
            f"{m.ceiling_cpu_ms[layout.label]:.0f} ms CPU/image "
            f"(other processes: {share.other:.0%} CPU)"
        )


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh(image: bytes) -> bytes:
    """The same image under bytes never sent before, so the service's result cache cannot know
    them: decoders stop at the end-of-image marker and ignore what follows."""
    return image + b"\0" + os.urandom(16)


class Server:
    """A server process this benchmark started, its process tree and its output."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        port: int,
        ready_path: str,
        scratch: Path,
        role_of: Callable[[list[str], bool], str] = process_role,
    ) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.role_of = role_of
        self.roles: dict[int, str] = {}
        self.output = scratch / f"{name}.out"
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.root = psutil.Process(self.process.pid)
        self.known: dict[int, psutil.Process] = {self.root.pid: self.root}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            with suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def tree(self) -> list[psutil.Process]:
        with suppress(psutil.Error):
            for child in self.root.children(recursive=True):
                self.known.setdefault(child.pid, child)
        return [self.root, *self.root.children(recursive=True)] if self.root.is_running() else []

    def tree_rss(self) -> int:
        total = 0
        for proc in self.tree():
            with suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def cpu_snapshot(self) -> dict[int, tuple[str, float]]:
        """pid -> (role, user + system CPU seconds) of each live process of the tree."""
        snapshot = {}
        for proc in self.tree():
            with suppress(psutil.Error):
                if proc.pid not in self.roles:
                    self.roles[proc.pid] = self.role_of(proc.cmdline(), proc.pid == self.root.pid)
                times = proc.cpu_times()
                snapshot[proc.pid] = (self.roles[proc.pid], times.user + times.system)
        return snapshot

    def tail(self, lines: int = 15) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server we started, then SIGKILL to whatever of its tree is left."""
        self.tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        for proc in self.known.values():
            with suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


class RssSampler(threading.Thread):
    """Samples a server's total tree RSS every 0.5 s, tagged with the current phase."""

    def __init__(self, server: Server, trace: RssTrace) -> None:
        super().__init__(daemon=True)
        self.server, self.trace, self.phase = server, trace, "startup"
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.trace.add(time.monotonic(), self.phase, self.server.tree_rss())
            self.stopped.wait(RSS_INTERVAL_S)


# --------------------------------------------------------------------------- load


@dataclass
class Endpoint:
    """How to send one image to a server, and how to recognise its answer."""

    name: str
    path: str
    fields: dict[str, str]
    media_type: str = "image/png"

    def post(
        self, client: httpx.Client, base: str, image: bytes, extra: dict[str, str] | None = None
    ) -> httpx.Response:
        return client.post(
            base + self.path,
            data={**self.fields, **(extra or {})},
            files={"file": ("photo.jpg", image, "image/jpeg")},
        )

    def check(self, response: httpx.Response) -> str | None:
        """None if the answer is a good image, else an error kind."""
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        if not response.headers.get("content-type", "").startswith(self.media_type):
            return "wrong type"
        return None if response.content else "empty body"


OURS = Endpoint("ours", "/remove-background", {})
REMBG = Endpoint("rembg s", "/api/remove", {"model": MODEL})


def run_level(
    endpoint: Endpoint,
    server: Server,
    image: bytes,
    concurrency: int,
    seconds: float,
    request_ids: list[str],
) -> LoadResult:
    """Closed loop: `concurrency` clients each send the next request when one is answered,
    every one under fresh bytes (the same photo), so that none is a cache hit.

    Only requests that complete inside the window count; those in flight at its end are
    awaited and dropped. The server's CPU is read before the clients start and after the last
    answer, so it is divided by every request the server answered, the late ones included.
    """
    result = LoadResult(endpoint.name, concurrency, seconds)
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    window: dict[str, float] = {}

    def client_loop() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            start.wait()
            while (sent := time.perf_counter()) < window["end"]:
                error, size, request_id, cached = None, 0, None, None
                try:
                    response = endpoint.post(client, server.url, fresh(image))
                    error, size = endpoint.check(response), len(response.content)
                    request_id = response.headers.get("x-request-id")
                    cached = response.headers.get("x-cache")
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                done = time.perf_counter()
                with lock:
                    if done > window["end"]:
                        result.late += 1
                        break
                    if error:
                        result.errors[error] += 1
                    else:
                        result.latencies_s.append(done - sent)
                        result.response_bytes.append(size)
                        if cached:
                            result.cache[cached] += 1
                        if request_id:
                            request_ids.append(request_id)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    before, cpu_started = server.cpu_snapshot(), time.monotonic()
    window["end"] = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    result.cpu = cpu_split(
        before,
        server.cpu_snapshot(),
        result.ok + result.error_count + result.late,
        time.monotonic() - cpu_started,
    )
    log(
        f"{endpoint.name} c={concurrency}: {result.throughput:.2f} req/s, "
        f"p50 {result.latency_ms(50):.0f} ms, errors {result.error_count}, "
        f"CPU {result.cpu.total_ms_each:.0f} ms/request"
    )
    return result


def warm_up(
    endpoint: Endpoint,
    base: str,
    images: dict[str, bytes],
    notes: list[str],
    requests: int = 3,
    attempts: int = 3,
) -> None:
    """A few 1 MP requests and one 12 MP, fresh bytes each (a cache hit would warm nothing);
    each retried, and a failure noted, up to `attempts`."""
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for image in [images["1mp"]] * requests + [images["12mp"]]:
            for attempt in range(1, attempts + 1):
                try:
                    response = endpoint.post(client, base, fresh(image))
                    error = endpoint.check(response)
                    detail = response.text[:300] if error else ""
                except httpx.HTTPError as exc:
                    error, detail = type(exc).__name__, str(exc)
                if error is None:
                    break
                notes.append(
                    f"{endpoint.name} warm-up request failed ({error}: {detail}), "
                    f"attempt {attempt} of {attempts}."
                )
                if attempt == attempts:
                    raise RuntimeError(f"warm-up request failed ({error}): {detail}")
                time.sleep(2)


def size_latency(
    base: str, images: dict[str, bytes], count: int, ids: dict[str, list[str]]
) -> dict[str, list[float]]:
    """Alternating 1 MP and 12 MP requests at max_width=1200, fresh bytes, one at a time."""
    latencies: dict[str, list[float]] = {SIZE_SMALL: [], SIZE_LARGE: []}
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(count):
            for label, image in ((SIZE_SMALL, images["1mp"]), (SIZE_LARGE, images["12mp"])):
                body = fresh(image)
                sent = time.perf_counter()
                response = OURS.post(client, base, body, {"max_width": "1200"})
                elapsed = time.perf_counter() - sent
                if OURS.check(response) is None:
                    latencies[label].append(elapsed)
                    ids.setdefault(label, []).append(response.headers.get("x-request-id", ""))
    log(
        "sizes: "
        + ", ".join(f"{k} p50 {np.median(v) * 1000:.0f} ms" for k, v in latencies.items() if v)
    )
    return latencies


# probe -> (extra form fields, expected media type, expected X-Cache), in the order sent; a
# probe expecting a miss is sent fresh bytes, the others the bytes of the last miss.
CACHE_REQUESTS: dict[str, tuple[dict[str, str], str, str]] = {
    CACHE_MISS: ({}, "image/png", "miss"),
    CACHE_HIT: ({}, "image/png", "hit"),
    CACHE_MASK: ({"format": "WEBP"}, "image/webp", "mask"),
    CACHE_MASK_PNG: ({"max_width": "1200"}, "image/png", "mask"),
    CACHE_MISS_WEBP: ({"format": "WEBP"}, "image/webp", "miss"),
    CACHE_MISS_PNG: ({"max_width": "1200"}, "image/png", "miss"),
}


def cache_latency(base: str, image: bytes, count: int, notes: list[str]) -> dict[str, list[float]]:
    """`count` rounds, one request at a time: a miss, the same request again (a full-result
    hit), the same bytes with other options (mask hits), then fresh bytes with those options
    (their misses). An answer whose X-Cache is not the one expected is left out and counted
    in a note."""
    latencies: dict[str, list[float]] = {probe: [] for probe in CACHE_REQUESTS}
    unexpected: Counter[str] = Counter()
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(count):
            for probe, (extra, media_type, expected) in CACHE_REQUESTS.items():
                if expected == "miss":
                    body = fresh(image)
                sent = time.perf_counter()
                response = OURS.post(client, base, body, extra)
                elapsed = time.perf_counter() - sent
                got = response.headers.get("x-cache")
                if (
                    response.status_code == 200
                    and got == expected
                    and response.headers.get("content-type", "").startswith(media_type)
                ):
                    latencies[probe].append(elapsed)
                else:
                    unexpected[f"{probe}: HTTP {response.status_code}, X-Cache {got}"] += 1
    if unexpected:
        notes.append(
            "Cache latency: answers left out (not the expected X-Cache): "
            + ", ".join(f"{kind} ×{n}" for kind, n in unexpected.items())
            + "."
        )
    log(
        "cache: "
        + ", ".join(f"{k} p50 {np.median(v) * 1000:.1f} ms" for k, v in latencies.items() if v)
    )
    return latencies


def read_request_log(path: Path) -> list[dict]:
    lines = []
    if path.exists():
        for text in path.read_text(errors="replace").splitlines():
            with suppress(json.JSONDecodeError):
                line = json.loads(text)
                if line.get("logger") == "bg_remover.requests":
                    lines.append(line)
    return lines


# --------------------------------------------------------------------------- runs


class Contender:
    """One server under test: how to call it, the process, its RSS sampler and its results."""

    def __init__(
        self, endpoint: Endpoint, server: Server, trace: RssTrace, results: list[LoadResult]
    ) -> None:
        self.endpoint, self.server, self.results = endpoint, server, results
        self.sampler = RssSampler(server, trace)
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stopped.set()
        self.server.stop()


def serve_ours(name: str, scratch: Path, settings: dict[str, str]) -> Server:
    """`bentoml serve` our service with the environment plus `settings` (limits off)."""
    env = {**os.environ, **SERVICE_ENV, "LOG_FILE": str(scratch / f"{name}.jsonl"), **settings}
    port = free_port()
    return Server(
        name,
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "service:BackgroundRemover",
            "--port",
            str(port),
        ],
        env,
        port,
        "/readyz",
        scratch,
    )


def start_ours(m: Measurements, scratch: Path, log_file: Path) -> Contender:
    server = serve_ours("ours", scratch, {"LOG_FILE": str(log_file)})
    return Contender(OURS, server, m.rss.setdefault("ours", RssTrace()), m.served)


def rembg_model_file() -> Path | None:
    home = Path.home()
    candidates = [
        Path(os.environ.get("U2NET_HOME", home / ".u2net")) / f"{MODEL}.onnx",
        home / ".rembg" / "models" / MODEL / f"{MODEL}.onnx",
    ]
    return next((path for path in candidates if path.is_file()), None)


def start_rembg(m: Measurements, scratch: Path) -> Contender | None:
    """`rembg s` from its own venv, offline; None (and the reason in `m`) if it cannot run."""
    executable = REMBG_VENV / "bin" / "rembg"
    if not executable.exists():
        m.rembg_error = (
            f"not run: {executable} is missing (create it with `bash bench/setup-rembg-server.sh`)"
        )
        return None
    model = rembg_model_file()
    if model is None:
        m.rembg_error = (
            f"not run: no {MODEL}.onnx in ~/.u2net or ~/.rembg/models/{MODEL} and "
            "the benchmark never downloads it (run import_model.py first)"
        )
        return None
    # Point rembg at the folder holding the model so it never tries to download it;
    # BROWSER=true stops its startup hook from launching a browser.
    env = {**os.environ, "BROWSER": "true"}
    if model.parent.name == MODEL:  # <REMBG_HOME>/models/u2netp/u2netp.onnx
        env.pop("U2NET_HOME", None)
        env["REMBG_HOME"] = str(model.parent.parent.parent)
    else:  # <U2NET_HOME>/u2netp.onnx, rembg's legacy flat layout
        env["U2NET_HOME"] = str(model.parent)
    port = free_port()
    server = Server(
        "rembg",
        [
            str(executable),
            "s",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--log_level",
            "warning",
        ],
        env,
        port,
        "/api",
        scratch,
        role_of=lambda *_: "rembg s",
    )
    return Contender(REMBG, server, m.rss.setdefault("rembg s", RssTrace()), m.rembg)


def bench_servers(
    m: Measurements, images: dict[str, bytes], plan: Plan, scratch: Path, with_rembg: bool
) -> None:
    """Both servers up at once; each load level runs on ours, then on rembg s, so that drift in
    the machine's background load hits both alike."""
    log_file = scratch / "service.jsonl"
    contenders = [start_ours(m, scratch, log_file)]
    if with_rembg and (rembg := start_rembg(m, scratch)) is not None:
        contenders.append(rembg)
    ids: dict[str, list[str]] = {}
    try:
        for contender in list(contenders):
            try:
                contender.server.wait_ready()
                contender.sampler.phase = "warm-up"
                warm_up(contender.endpoint, contender.server.url, images, m.notes)
            except (RuntimeError, httpx.HTTPError) as exc:
                reason = f"{type(exc).__name__}: {exc}; its output ends: {contender.server.tail()}"
                if contender.endpoint is OURS:
                    raise RuntimeError(f"our service failed to start or answer: {reason}") from exc
                m.rembg_error = f"failed to start or answer: {reason}"
                contender.stop()
                contenders.remove(contender)
        ours = contenders[0]
        ours.sampler.phase = "sizes"
        m.size_latency = size_latency(ours.server.url, images, plan.size_requests, ids)
        ours.sampler.phase = "cache"
        m.cache_latency = cache_latency(
            ours.server.url, images["1mp"], plan.cache_requests, m.notes
        )
        set_phase(contenders, "idle")
        time.sleep(2)
        for level in LEVELS:
            for contender in contenders:
                set_phase(contenders, "waiting")
                contender.sampler.phase = f"c={level}"
                level_ids = ids.setdefault(level_label(level), [])
                with CpuShare() as share:
                    result = run_level(
                        contender.endpoint,
                        contender.server,
                        images["1mp"],
                        level,
                        plan.level_s,
                        level_ids if contender is ours else [],
                    )
                result.other_cpu = share.other
                contender.results.append(result)
        set_phase(contenders, "after")
        time.sleep(plan.rest_s)
        if plan.soak_minutes:
            soak(m, ours, images, plan)
    finally:
        for contender in contenders:
            contender.stop()
    lines = read_request_log(log_file)
    for label in (SIZE_SMALL, SIZE_LARGE, *(level_label(level) for level in LEVELS)):
        if ids.get(label):
            m.profiles[label] = median_stages(lines, ids[label])
    if not lines:
        m.notes.append(f"No request log lines were found in {log_file}: no profile.")


def set_phase(contenders: list[Contender], phase: str) -> None:
    for contender in contenders:
        contender.sampler.phase = phase


def soak(m: Measurements, ours: Contender, images: dict[str, bytes], plan: Plan) -> None:
    ours.sampler.phase = "soak"
    result = run_level(OURS, ours.server, images["1mp"], 8, plan.soak_minutes * 60, [])
    samples = [(t, rss) for t, phase, rss in ours.sampler.trace.samples if phase == "soak"]
    m.soak_growth = soak_growth(samples)
    m.notes.append(
        f"Soak: concurrency 8 for {plan.soak_minutes:g} min: "
        f"{result.throughput:.2f} req/s, p50 {result.latency_ms(50):.0f} ms, "
        f"{result.error_count} errors, RSS growth over the second half "
        f"{m.soak_growth * 100:+.1f}%."
    )


def mixed_load(m: Measurements, images: dict[str, bytes], plan: Plan, scratch: Path) -> None:
    """The locustfile's mix with 30% replayed requests against our service with the result
    cache on, then off: same users, seed and length, one server at a time, limits off."""
    from loadtests.inputs import write_uploads

    uploads = scratch / "uploads"
    write_uploads(uploads)  # the /read-file samples, as loadtests/serve-for-load.sh does
    for label, enabled in ((CACHE_ON, "true"), (CACHE_OFF, "false")):
        name = "mixed-" + label.replace(" ", "-")
        server = serve_ours(
            name,
            scratch,
            {
                "CACHE_ENABLED": enabled,
                "UPLOAD_DIR": str(uploads),
                "OUTPUT_DIR": str(scratch / "outputs"),
            },
        )
        try:
            server.wait_ready()
            warm_up(OURS, server.url, images, m.notes)
            before, started = server.cpu_snapshot(), time.monotonic()
            run = run_locust(server.url, label, plan, scratch / name, m.notes)
            run.cpu = cpu_split(
                before, server.cpu_snapshot(), run.requests, time.monotonic() - started
            )
            m.mixed.append(run)
        except (RuntimeError, httpx.HTTPError, subprocess.SubprocessError, OSError) as exc:
            m.mixed_error = (
                f"{label} failed: {type(exc).__name__}: {exc}; "
                f"the server's output ends: {server.tail()}"
            )
            return
        finally:
            server.stop()


def run_locust(url: str, label: str, plan: Plan, out: Path, notes: list[str]) -> MixedRun:
    """One headless locust run: every user at once, for `plan.mixed_s` seconds."""
    from loadtests.summarize import AGGREGATED, read_cache_outcomes, read_failures, read_stats

    out.mkdir(parents=True, exist_ok=True)
    users = str(plan.mixed_users)
    env = {
        **os.environ,
        "STEP_USERS": users,
        "MAX_USERS": users,
        "SPAWN_RATE": users,
        "STEP_SECONDS": str(plan.mixed_s * 2),
        "RUN_SECONDS": str(plan.mixed_s),
        "LOADTEST_REPEAT_SHARE": MIXED_REPEAT_SHARE,
        "LOADTEST_SEED": MIXED_SEED,
        "LOADTEST_CACHE_FILE": str(out / "cache.json"),
    }
    for inherited in ("LOADTEST_BUCKETS", "LOADTEST_READ_FILE_PATHS", "LOADTEST_API_KEY"):
        env.pop(inherited, None)  # the mix as the locustfile defines it
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "loadtests/locustfile.py",
        "--headless",
        "--host",
        url,
        "--csv",
        str(out / "locust"),
        "--logfile",
        str(out / "locust.log"),
        "--loglevel",
        "WARNING",
        "--only-summary",
    ]
    log(f"mixed load, {label}: {users} users for {plan.mixed_s:g} s")
    # locust shares the cores with the server: its own CPU shows how much it took
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    with CpuShare() as share, (out / "locust.out").open("wb") as sink:
        # locust exits with 1 when any request failed; the failures are read from its CSV
        subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=plan.mixed_s + 300,
            check=False,
        )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_s = (usage.ru_utime + usage.ru_stime) - (reaped.ru_utime + reaped.ru_stime)
    stats = out / "locust_stats.csv"
    if not stats.exists():
        raise RuntimeError(f"locust wrote no stats; see {out / 'locust.out'}")
    rows = read_stats(stats)
    total = next(row for row in rows if row.name == AGGREGATED)
    images = sum(
        row.requests - row.failures
        for row in rows
        if row.name != AGGREGATED and row.name.startswith("/remove-background")
    )
    run = MixedRun(
        label,
        plan.mixed_users,
        plan.mixed_s,
        total.requests,
        total.failures,
        images,
        total.p50,
        read_cache_outcomes(out / "cache.json"),
        share.other,
        client_cores=client_s / plan.mixed_s,
    )
    failures: Counter[str] = Counter()
    for failure in read_failures(out / "locust_failures.csv"):
        failures[f"{failure.name}: {failure.message}"] += failure.count
    if failures:
        notes.append(
            f"Mixed load, {label}: failures: "
            + "; ".join(f"{kind} ×{n}" for kind, n in failures.most_common(5))
            + "."
        )
    log(
        f"mixed load, {label}: {run.throughput:.2f} req/s, hit ratio {run.share('hit'):.0%}, "
        f"{run.failures} failures"
    )
    return run


class CpuShare:
    """CPU time other processes on the machine used during a window, as a share of all cores.

    Ours is this process, its reaped children and its live descendants (the servers).
    """

    def __enter__(self) -> CpuShare:
        self.me = psutil.Process()
        self.started, self.busy, self.ours = time.monotonic(), _busy_cpu(), self._ours()
        self.other = math.nan
        return self

    def _ours(self) -> float:
        times = self.me.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.me.children(recursive=True):
            with suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return total

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self.started
        others = (_busy_cpu() - self.busy) - (self._ours() - self.ours)
        self.other = max(others, 0.0) / (wall * (psutil.cpu_count() or 1))


def _busy_cpu() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


# --------------------------------------------------------------------------- main


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rembg_version() -> str:
    found = sorted((REMBG_VENV / "lib").glob("python*/site-packages/rembg-*.dist-info"))
    return found[-1].name.removeprefix("rembg-").removesuffix(".dist-info") if found else "absent"


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def served_settings() -> str:
    served = Settings()  # what the served process will read: environment, .env, defaults
    return (
        f"MODEL_WORKERS={served.model_workers}, MODEL_THREADS={served.model_threads}, "
        f"MODEL_PARALLEL_RUNS={served.model_parallel_runs}, "
        f"MODEL_THREAD_SPINNING={str(served.model_thread_spinning).lower()}, "
        f"API_WORKER_NICE={served.api_worker_nice}, MAX_BATCH_SIZE={served.max_batch_size}, "
        f"CACHE_ENABLED={str(served.cache_enabled).lower()} (the service's settings; "
        "the mixed load sets CACHE_ENABLED itself)"
    )


def environment(args: argparse.Namespace, plan: Plan) -> dict[str, str]:
    if args.layouts:
        mode = (
            f"layouts ({'quick' if args.quick else 'full'}): {plan.level_s:g} s at "
            f"concurrency 8 after {plan.level_s / 3:g} s at concurrency 1 per layout and "
            f"round, {args.rounds} round(s), {plan.ceiling_s:g} s per bare layout"
        )
    else:
        mode = (
            ("quick" if args.quick else "full")
            + f": {plan.level_s:g} s per load level, {plan.ceiling_s:g} s per ceiling "
            f"layout, {plan.size_requests} requests per size, {plan.cache_requests} per "
            f"cache probe, mixed load {plan.mixed_users} users × {plan.mixed_s:g} s per run"
        )
    return {
        "started": datetime.now().isoformat(timespec="seconds"),
        "mode": mode,
        "hardware": f"{os.cpu_count()} CPUs ({cpu_model()}), "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM; shared with other "
        "work: compare ratios within one run, not across runs",
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "serving settings": served_settings(),
        "versions": f"Python {platform.python_version()}, bentoml {version('bentoml')}, "
        f"onnxruntime {version('onnxruntime')}, pillow {version('pillow')}, "
        f"locust {version('locust')}, rembg (server venv) {rembg_version()}",
        "images": f"skimage coffee, Lanczos to {SMALL_SIZE[0]}×{SMALL_SIZE[1]} and "
        f"{LARGE_SIZE[0]}×{LARGE_SIZE[1]}, JPEG q{JPEG_QUALITY}; every request "
        "of a load level under fresh bytes (cache misses)",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10 s per load level instead of 30 s, shorter ceiling, cache and mixed-load runs",
    )
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=0,
        help="also run concurrency 8 for N minutes and report RSS growth",
    )
    parser.add_argument("--level-seconds", type=float, help="override the load level duration")
    parser.add_argument("--skip-rembg", action="store_true", help="do not run rembg s")
    parser.add_argument(
        "--mixed-seconds",
        type=float,
        help="length of each mixed-load run (60 s, 30 s with --quick; 0 skips)",
    )
    parser.add_argument(
        "--mixed-users",
        type=int,
        default=MIXED_USERS,
        help=f"locust users in the mixed load [{MIXED_USERS}]",
    )
    parser.add_argument(
        "--layouts", action="store_true", help="instead: compare serving layouts at concurrency 8"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --layouts: rounds over every layout, every other one in reverse order [1]",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    mixed_s = args.mixed_seconds if args.mixed_seconds is not None else (30 if args.quick else 60)
    return Plan(
        level_s=args.level_seconds or (10 if args.quick else 30),
        ceiling_s=5 if args.quick else (10 if args.layouts else 15),
        size_requests=6 if args.quick else 15,
        rest_s=3 if args.quick else 5,
        soak_minutes=args.soak_minutes,
        cache_requests=10 if args.quick else 20,
        mixed_s=mixed_s,
        mixed_users=args.mixed_users,
    )


def run_benchmark(args: argparse.Namespace, plan: Plan) -> str:
    m = Measurements(soak_minutes=plan.soak_minutes, environment=environment(args, plan))
    images = make_images()
    log(f"images: 1 MP {len(images['1mp'])} bytes, 12 MP {len(images['12mp'])} bytes")
    if args.skip_rembg:
        m.rembg_error = "not run (--skip-rembg)"
    served = Settings()
    layouts, m.served_layout = bare_layouts(served.model_threads, served.model_thread_spinning)
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("ceiling", lambda _: measure_ceiling(m, images["1mp"], plan.ceiling_s, layouts)),
        (
            "servers",
            lambda scratch: bench_servers(m, images, plan, scratch, with_rembg=not args.skip_rembg),
        ),
    ]
    if plan.mixed_s > 0:
        steps.append(("mixed load", lambda scratch: mixed_load(m, images, plan, scratch)))
    else:
        m.mixed_error = "not run (--mixed-seconds 0)"
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as scratch:
        for name, step in steps:
            log(f"--- {name}")
            try:
                step(Path(scratch))
            except Exception as exc:  # report what failed and keep the rest of the run
                m.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
                log(f"{name} failed: {exc}")
    m.environment["load average at end (1/5/15 min)"] = " / ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    return render(m)


def measure_layout(
    layout: Layout,
    images: dict[str, bytes],
    plan: Plan,
    scratch: Path,
    notes: list[str],
    index: int,
) -> list[LoadResult]:
    """One layout: its own server, warmed up, then concurrency 1 for a third of `plan.level_s`
    (what the layout costs a request alone) and concurrency 8 for `plan.level_s`.

    Concurrency 1 comes first: after a burst, BentoML's adaptive batcher has learnt a long
    queue wait and holds a lone request back for it, which would be measured instead.
    """
    server = serve_ours(f"layout-{index}", scratch, layout.env)
    trace = RssTrace()
    sampler = RssSampler(server, trace)
    sampler.start()
    try:
        server.wait_ready()
        warm_up(OURS, server.url, images, notes)
        time.sleep(2)
        results = []
        for concurrency, seconds in ((1, plan.level_s / 3), (8, plan.level_s)):
            sampler.phase = f"c={concurrency}"
            with CpuShare() as share:
                result = run_level(OURS, server, images["1mp"], concurrency, seconds, [])
            result.other_cpu, result.peak_rss = share.other, trace.peak(sampler.phase)
            results.append(result)
        return results
    finally:
        sampler.stopped.set()
        server.stop()


def run_layouts(args: argparse.Namespace, plan: Plan) -> str:
    environment_lines = environment(args, plan)
    environment_lines.pop("serving settings")
    notes: list[str] = []
    images = make_images()
    layouts, _ = bare_layouts(1, False, with_batch=False)
    bare = Measurements()
    log("--- bare onnxruntime")
    measure_ceiling(bare, images["1mp"], plan.ceiling_s, layouts)
    results: list[tuple[Layout, LoadResult]] = []
    with tempfile.TemporaryDirectory(prefix="bench-layouts-") as scratch:
        for round_index in range(args.rounds):
            order = LAYOUT_GRID if round_index % 2 == 0 else LAYOUT_GRID[::-1]
            for layout in order:
                log(f"--- round {round_index + 1}: {layout.label}")
                try:
                    levels = measure_layout(
                        layout, images, plan, Path(scratch), notes, len(results)
                    )
                except Exception as exc:  # report what failed and keep the other layouts
                    notes.append(
                        f"{layout.label}, round {round_index + 1} failed: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    log(f"{layout.label} failed: {exc}")
                    continue
                results += [(layout, level) for level in levels]
    environment_lines["load average at end (1/5/15 min)"] = " / ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    bare_rows = {label: (rate, bare.ceiling_cpu_ms[label]) for label, rate in bare.ceiling.items()}
    return render_layouts(summarize_layouts(results), bare_rows, environment_lines, notes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    report = run_layouts(args, plan) if args.layouts else run_benchmark(args, plan)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out_dir / (f"layouts-{stamp}.md" if args.layouts else f"{stamp}.md")
    path.write_text(report)
    print(report)
    log(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Performance benchmark: bare onnxruntime ceiling, our service and rembg's server, one run.

    .venv/bin/python bench/performance.py [--quick] [--soak-minutes N] [--skip-rembg]

Measures on the same images and machine: (a) u2netp's bare onnxruntime throughput in the
layouts the service can use; (b) our service's req/s and latency at concurrency 1, 4 and 8
(closed loop, 1 MP JPEG -> default PNG); (c) `rembg s` under the same load, from its own venv
(bench/setup-rembg-server.sh); (d) total RSS of each server's process tree; (e) 12 MP vs 1 MP at
max_width=1200; and a per-stage profile from the service's JSON request log. Writes
bench/results/<timestamp>.md and prints it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
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
    SIZE_LARGE,
    SIZE_SMALL,
    LoadResult,
    Measurements,
    RssTrace,
    median_stages,
    render,
    soak_growth,
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

# (label, processes, intra-op threads per process, batch)
LAYOUTS = (
    ("1 process × 1 thread", 1, 1, 1),
    ("1 process × 2 threads", 1, 2, 1),
    ("2 processes × 1 thread (total)", 2, 1, 1),
    ("batch of 4, 1 process × 2 threads", 1, 2, 4),
)


@dataclass(frozen=True)
class Plan:
    level_s: float
    ceiling_s: float
    size_requests: int
    rest_s: float
    soak_minutes: float


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
    from segmentation import get_spec, model_input

    spec = get_spec(MODEL)
    pixels = model_input(Image.open(io.BytesIO(jpeg)), spec.input_size)[np.newaxis]
    scaled = pixels.astype(np.float64) / max(float(pixels.max()), 1e-6)
    normalized = (scaled - np.array(spec.mean)) / np.array(spec.std)
    return normalized.transpose(0, 3, 1, 2).astype(np.float32)


def _ceiling_worker(model_path: str, threads: int, tensor: np.ndarray, seconds: float,
                    barrier, results) -> None:
    """One process: the service's session options, warm, then as many runs as fit."""
    import onnxruntime as ort

    from segmentation.session import session_options

    ort.disable_telemetry_events()
    session = ort.InferenceSession(model_path, sess_options=session_options(threads),
                                   providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: tensor}
    output = [session.get_outputs()[0].name]
    for _ in range(3):
        session.run(output, feed)
    barrier.wait()
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(output, feed)
        images += len(tensor)
    results.put(images / (time.perf_counter() - started))


def measure_ceiling(m: Measurements, jpeg: bytes, seconds: float) -> None:
    import bentoml

    model_path = bentoml.models.get(MODEL).path_of("model.onnx")
    single = _model_tensor(jpeg)
    context = multiprocessing.get_context("spawn")
    for label, processes, threads, batch in LAYOUTS:
        tensor = np.repeat(single, batch, axis=0)
        barrier, results = context.Barrier(processes), context.Queue()
        workers = [context.Process(target=_ceiling_worker,
                                   args=(model_path, threads, tensor, seconds, barrier, results))
                   for _ in range(processes)]
        with CpuShare() as share:
            for worker in workers:
                worker.start()
            rate = sum(results.get(timeout=seconds + 120) for _ in workers)
            for worker in workers:
                worker.join()
        m.ceiling[label] = rate
        m.ceiling_other_cpu[label] = share.other
        log(f"ceiling {label}: {rate:.2f} images/s (other processes: {share.other:.0%} CPU)")


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process this benchmark started, its process tree and its output."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int,
                 ready_path: str, scratch: Path) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.output = scratch / f"{name}.out"
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.root = psutil.Process(self.process.pid)
        self.known: dict[int, psutil.Process] = {self.root.pid: self.root}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: "
                                   f"{self.tail()}")
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

    def post(self, client: httpx.Client, base: str, image: bytes,
             extra: dict[str, str] | None = None) -> httpx.Response:
        return client.post(base + self.path, data={**self.fields, **(extra or {})},
                           files={"file": ("photo.jpg", image, "image/jpeg")})

    def check(self, response: httpx.Response) -> str | None:
        """None if the answer is a good image, else an error kind."""
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        if not response.headers.get("content-type", "").startswith(self.media_type):
            return "wrong type"
        return None if response.content else "empty body"


OURS = Endpoint("ours", "/remove-background", {})
REMBG = Endpoint("rembg s", "/api/remove", {"model": MODEL})


def run_level(endpoint: Endpoint, base: str, image: bytes, concurrency: int,
              seconds: float, request_ids: list[str]) -> LoadResult:
    """Closed loop: `concurrency` clients each send the next request when one is answered.

    Only requests that complete inside the window count; those in flight at its end are
    awaited and dropped.
    """
    result = LoadResult(endpoint.name, concurrency, seconds)
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    window: dict[str, float] = {}

    def client_loop() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            start.wait()
            while (sent := time.perf_counter()) < window["end"]:
                error, size, request_id = None, 0, None
                try:
                    response = endpoint.post(client, base, image)
                    error, size = endpoint.check(response), len(response.content)
                    request_id = response.headers.get("x-request-id")
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                done = time.perf_counter()
                if done > window["end"]:
                    break
                with lock:
                    if error:
                        result.errors[error] += 1
                    else:
                        result.latencies_s.append(done - sent)
                        result.response_bytes.append(size)
                        if request_id:
                            request_ids.append(request_id)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    window["end"] = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    log(f"{endpoint.name} c={concurrency}: {result.throughput:.2f} req/s, "
        f"p50 {result.latency_ms(50):.0f} ms, errors {result.error_count}")
    return result


def warm_up(endpoint: Endpoint, base: str, images: dict[str, bytes], notes: list[str],
            requests: int = 3, attempts: int = 3) -> None:
    """A few 1 MP requests and one 12 MP; each retried, and a failure noted, up to `attempts`."""
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for image in [images["1mp"]] * requests + [images["12mp"]]:
            for attempt in range(1, attempts + 1):
                try:
                    response = endpoint.post(client, base, image)
                    error = endpoint.check(response)
                    detail = response.text[:300] if error else ""
                except httpx.HTTPError as exc:
                    error, detail = type(exc).__name__, str(exc)
                if error is None:
                    break
                notes.append(f"{endpoint.name} warm-up request failed ({error}: {detail}), "
                             f"attempt {attempt} of {attempts}.")
                if attempt == attempts:
                    raise RuntimeError(f"warm-up request failed ({error}): {detail}")
                time.sleep(2)


def size_latency(base: str, images: dict[str, bytes], count: int,
                 ids: dict[str, list[str]]) -> dict[str, list[float]]:
    """Alternating 1 MP and 12 MP requests at max_width=1200, one at a time."""
    latencies: dict[str, list[float]] = {SIZE_SMALL: [], SIZE_LARGE: []}
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(count):
            for label, image in ((SIZE_SMALL, images["1mp"]), (SIZE_LARGE, images["12mp"])):
                sent = time.perf_counter()
                response = OURS.post(client, base, image, {"max_width": "1200"})
                elapsed = time.perf_counter() - sent
                if OURS.check(response) is None:
                    latencies[label].append(elapsed)
                    ids.setdefault(label, []).append(response.headers.get("x-request-id", ""))
    log("sizes: " + ", ".join(f"{k} p50 {np.median(v) * 1000:.0f} ms"
                              for k, v in latencies.items() if v))
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

    def __init__(self, endpoint: Endpoint, server: Server, trace: RssTrace,
                 results: list[LoadResult]) -> None:
        self.endpoint, self.server, self.results = endpoint, server, results
        self.sampler = RssSampler(server, trace)
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stopped.set()
        self.server.stop()


def start_ours(m: Measurements, scratch: Path, log_file: Path) -> Contender:
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "RATE_LIMIT_ENABLED": "false",
           "LOG_FORMAT": "json", "LOG_FILE": str(log_file)}
    port = free_port()
    server = Server("ours", [sys.executable, "-m", "bentoml", "serve",
                             "service:BackgroundRemover", "--port", str(port)],
                    env, port, "/readyz", scratch)
    return Contender(OURS, server, m.rss.setdefault("ours", RssTrace()), m.served)


def rembg_model_file() -> Path | None:
    home = Path.home()
    candidates = [Path(os.environ.get("U2NET_HOME", home / ".u2net")) / f"{MODEL}.onnx",
                  home / ".rembg" / "models" / MODEL / f"{MODEL}.onnx"]
    return next((path for path in candidates if path.is_file()), None)


def start_rembg(m: Measurements, scratch: Path) -> Contender | None:
    """`rembg s` from its own venv, offline; None (and the reason in `m`) if it cannot run."""
    executable = REMBG_VENV / "bin" / "rembg"
    if not executable.exists():
        m.rembg_error = (f"not run: {executable} is missing "
                         "(create it with `bash bench/setup-rembg-server.sh`)")
        return None
    model = rembg_model_file()
    if model is None:
        m.rembg_error = (f"not run: no {MODEL}.onnx in ~/.u2net or ~/.rembg/models/{MODEL} and "
                         "this machine cannot download it (run import_model.py first)")
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
    server = Server("rembg", [str(executable), "s", "--host", "127.0.0.1", "--port", str(port),
                              "--no-ui", "--log_level", "warning"],
                    env, port, "/api", scratch)
    return Contender(REMBG, server, m.rss.setdefault("rembg s", RssTrace()), m.rembg)


def bench_servers(m: Measurements, images: dict[str, bytes], plan: Plan, scratch: Path,
                  with_rembg: bool) -> None:
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
        set_phase(contenders, "idle")
        time.sleep(2)
        for level in LEVELS:
            for contender in contenders:
                set_phase(contenders, "waiting")
                contender.sampler.phase = f"c={level}"
                level_ids = ids.setdefault(f"1 MP default, c={level}", [])
                with CpuShare() as share:
                    result = run_level(contender.endpoint, contender.server.url, images["1mp"],
                                       level, plan.level_s,
                                       level_ids if contender is ours else [])
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
    for label in (SIZE_SMALL, SIZE_LARGE, "1 MP default, c=1", "1 MP default, c=8"):
        if ids.get(label):
            m.profiles[label] = median_stages(lines, ids[label])
    if not lines:
        m.notes.append(f"No request log lines were found in {log_file}: no profile.")


def set_phase(contenders: list[Contender], phase: str) -> None:
    for contender in contenders:
        contender.sampler.phase = phase


def soak(m: Measurements, ours: Contender, images: dict[str, bytes], plan: Plan) -> None:
    ours.sampler.phase = "soak"
    result = run_level(OURS, ours.server.url, images["1mp"], 8, plan.soak_minutes * 60, [])
    samples = [(t, rss) for t, phase, rss in ours.sampler.trace.samples if phase == "soak"]
    m.soak_growth = soak_growth(samples)
    m.notes.append(f"Soak: concurrency 8 for {plan.soak_minutes:g} min: "
                   f"{result.throughput:.2f} req/s, p50 {result.latency_ms(50):.0f} ms, "
                   f"{result.error_count} errors, RSS growth over the second half "
                   f"{m.soak_growth * 100:+.1f}%.")


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


def environment(args: argparse.Namespace, plan: Plan) -> dict[str, str]:
    served = Settings()  # what the served process will read: environment, .env, defaults
    return {
        "started": datetime.now().isoformat(timespec="seconds"),
        "mode": ("quick" if args.quick else "full")
                + f": {plan.level_s:g} s per load level, {plan.ceiling_s:g} s per ceiling layout, "
                  f"{plan.size_requests} requests per size",
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), "
                   f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM; shared with other "
                   "agents' work: compare ratios within one run, not across runs",
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "model layout": f"MODEL_WORKERS={served.model_workers}, "
                        f"MODEL_THREADS={served.model_threads} (the service's settings)",
        "versions": f"Python {platform.python_version()}, bentoml {version('bentoml')}, "
                    f"onnxruntime {version('onnxruntime')}, pillow {version('pillow')}, "
                    f"rembg (server venv) {rembg_version()}",
        "images": f"skimage coffee, Lanczos to {SMALL_SIZE[0]}×{SMALL_SIZE[1]} and "
                  f"{LARGE_SIZE[0]}×{LARGE_SIZE[1]}, JPEG q{JPEG_QUALITY}",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10 s per load level instead of 30 s, shorter ceiling runs")
    parser.add_argument("--soak-minutes", type=float, default=0,
                        help="also run concurrency 8 for N minutes and report RSS growth")
    parser.add_argument("--level-seconds", type=float, help="override the load level duration")
    parser.add_argument("--skip-rembg", action="store_true", help="do not run rembg s")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(level_s=args.level_seconds or (10 if args.quick else 30),
                ceiling_s=5 if args.quick else 15, size_requests=6 if args.quick else 15,
                rest_s=3 if args.quick else 5, soak_minutes=args.soak_minutes)
    m = Measurements(soak_minutes=plan.soak_minutes, environment=environment(args, plan))
    images = make_images()
    log(f"images: 1 MP {len(images['1mp'])} bytes, 12 MP {len(images['12mp'])} bytes")
    if args.skip_rembg:
        m.rembg_error = "not run (--skip-rembg)"
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("ceiling", lambda _: measure_ceiling(m, images["1mp"], plan.ceiling_s)),
        ("servers", lambda scratch: bench_servers(m, images, plan, scratch,
                                                  with_rembg=not args.skip_rembg)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as scratch:
        for name, step in steps:
            log(f"--- {name}")
            try:
                step(Path(scratch))
            except Exception as exc:  # report what failed and keep the rest of the run
                m.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
                log(f"{name} failed: {exc}")
    m.environment["load average at end (1/5/15 min)"] = " / ".join(
        f"{x:.2f}" for x in os.getloadavg())
    report = render(m)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(report)
    print(report)
    log(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

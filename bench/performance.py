"""Performance benchmark: bare onnxruntime ceiling, our service and rembg's server, one run.

    .venv/bin/python bench/performance.py [--quick] [--soak-minutes N] [--skip-rembg]
    .venv/bin/python bench/performance.py --layouts [--quick] [--rounds N]
    .venv/bin/python bench/performance.py --knee [--quick]

What each part measures, and how: bench/README.md. Writes bench/results/<timestamp>.md and
prints it.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from importlib.metadata import version
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from bench import report  # noqa: E402
from loadtests.inputs import write_uploads  # noqa: E402
from loadtests.options import check_image, error_kind  # noqa: E402
from loadtests.run import locust  # noqa: E402
from loadtests.slo import Series  # noqa: E402
from loadtests.summarize import read_failures, read_stats, summarize  # noqa: E402
from settings import Settings  # noqa: E402
from tests.serving import (  # noqa: E402
    ServerProcess,
    bentoml_serve,
    free_port,
    fresh,
    process_tree,
    tree_rss,
)

MODEL_NAME, REMOVE = "u2netp", "/remove-background"
REMBG_VENV = ROOT / ".venv-rembg"
LEVELS = (1, 4, 8)
SIZES = {"1 MP @1200": (1224, 816), "12 MP @1200": (4240, 2832)}
TIMEOUT_S = 300.0
# (model workers, threads) × spinning × API worker nice, then 1 × 2 running 2 images at once
GRID = list(product(((1, 2), (2, 1)), (False, True), (0, 10)))
LAYOUTS = [report.layout_env(*pair, spin, nice) for pair, spin, nice in GRID]
LAYOUTS.append(report.layout_env(1, 2, False, 0, runs=2))
# Limits off and the JSON request log in every run (the profile needs it), so that the API
# worker's logging CPU is the same in each.
SERVICE_ENV = {"BENTOML_DO_NOT_TRACK": "true", "RATE_LIMIT_ENABLED": "false", "LOG_FORMAT": "json"}


Images = dict[str, bytes]  # "1 MP @1200" and "12 MP @1200": JPEG bytes
Latencies = dict[str, list[float]]  # seconds per label
Probe = tuple[bytes, dict[str, str], str]  # an image, its options, the X-Cache expected
Args, Level = argparse.Namespace, report.Level


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_images() -> Images:
    """1 MP and 12 MP JPEGs (q90) from skimage's coffee photo, Lanczos-resized."""
    from skimage import data

    photo = Image.fromarray(data.coffee())
    images = {}
    for name, size in SIZES.items():
        buffer = io.BytesIO()
        photo.resize(size, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=90)
        images[name] = buffer.getvalue()
    return images


# --------------------------------------------------------------------------- bare ceiling


def bare_layouts(threads: int, spinning: bool, batch: bool = True) -> tuple[dict, str]:
    """label -> (processes, intra-op threads, images per run, spinning), and the label of the
    layout the service runs one image in (with one thread onnxruntime has nothing to spin)."""

    def single(t: int, spin: bool) -> str:
        return f"1 process × {t} thread{'s' * (t > 1)}" + ", spinning" * spin

    layouts = {
        single(1, False): (1, 1, 1, False),
        single(2, False): (1, 2, 1, False),
        single(2, True): (1, 2, 1, True),
        "2 processes × 1 thread (total)": (2, 1, 1, False),
    }
    if batch:
        layouts["batch of 4, 1 process × 2 threads"] = (1, 2, 4, False)
    served = single(threads, spinning and threads > 1)
    layouts.setdefault(served, (1, threads, 1, spinning and threads > 1))
    return layouts, served


def _bare_worker(path: str, threads: int, spinning: bool, tensor, seconds: float, barrier, out):
    """One process: the service's session options, 3 warm-up runs, then as many as fit."""
    import onnxruntime as ort

    from segmentation.session import session_options

    session = ort.InferenceSession(path, session_options(threads, spinning))
    feed, output = {session.get_inputs()[0].name: tensor}, [session.get_outputs()[0].name]
    for _ in range(3):
        session.run(output, feed)
    barrier.wait()
    runs, cpu, started = [], time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        sent = time.perf_counter()
        session.run(output, feed)
        runs.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    out.put((len(runs) * len(tensor), elapsed, time.process_time() - cpu, runs))


def measure_bare(jpeg: bytes, seconds: float, layouts: dict) -> dict[str, report.Bare]:
    """Each layout in fresh processes started together; their images/s are added."""
    import bentoml

    from optimizer.pipeline import model_input
    from segmentation import get_spec, normalize

    spec = get_spec(MODEL_NAME)
    pixels = model_input(Image.open(io.BytesIO(jpeg)), spec.input_size)[np.newaxis]
    single = normalize(pixels, spec)
    path = bentoml.models.get(MODEL_NAME).path_of("model.onnx")
    context, results = multiprocessing.get_context("spawn"), {}
    for label, (processes, threads, batch, spinning) in layouts.items():
        barrier, out = context.Barrier(processes), context.Queue()
        args = (path, threads, spinning, np.repeat(single, batch, axis=0), seconds, barrier, out)
        workers = [context.Process(target=_bare_worker, args=args) for _ in range(processes)]
        for worker in workers:
            worker.start()
        parts = [out.get(timeout=seconds + 120) for _ in workers]
        for worker in workers:
            worker.join()
        images = sum(part[0] for part in parts)
        results[label] = report.Bare(
            rate=sum(count / wall for count, wall, _, _ in parts),
            run_ms=float(np.median([t for part in parts for t in part[3]])) * 1000,
            cpu_ms=sum(part[2] for part in parts) * 1000 / images,
        )
        log(f"bare {label}: {results[label].rate:.2f} images/s")
    return results


# --------------------------------------------------------------------------- servers


class Measured(ServerProcess):
    """A server whose process tree is watched: RSS sampled every 0.5 s by phase, CPU by role.
    `rembg s` is one process and takes one image at /api/remove."""

    def __init__(self, name: str, command: list[str], env: dict, scratch: Path, port: int) -> None:
        rembg = name == "rembg s"
        ready = "/api" if rembg else "/readyz"
        super().__init__(command, env, scratch / f"{name}.out", port, ready)
        self.name, self.roles, self.phase = name, {}, "startup"
        self.trace: list[tuple[float, str, int]] = []
        self.path, self.form = ("/api/remove", {"model": "u2netp"}) if rembg else (REMOVE, {})

    def start(self) -> Measured:
        super().start()
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        while not self.exited():
            self.trace.append((time.monotonic(), self.phase, tree_rss(self.process.pid)))
            time.sleep(0.5)

    def cpu(self) -> dict[int, tuple[str, float]]:
        """pid -> (role, user + system CPU seconds) of each live process of the tree."""
        snapshot = {}
        for proc in process_tree(self.process.pid):
            with suppress(psutil.Error):
                if proc.pid not in self.roles:
                    role = report.process_role(proc.cmdline(), proc.pid == self.process.pid)
                    self.roles[proc.pid] = "rembg s" if self.name == "rembg s" else role
                times = proc.cpu_times()
                snapshot[proc.pid] = (self.roles[proc.pid], times.user + times.system)
        return snapshot


def ours(name: str, scratch: Path, settings: dict[str, str] | None = None) -> Measured:
    """`bentoml serve` our service with the environment plus `settings` (limits off)."""
    env = {**os.environ, **SERVICE_ENV, "LOG_FILE": str(scratch / f"{name}.jsonl")}
    port = free_port()
    return Measured(name, bentoml_serve(port), {**env, **(settings or {})}, scratch, port)


def rembg(scratch: Path) -> Measured | str:
    """`rembg s` from its own venv, offline: the server, or why it cannot run."""
    from segmentation import get_spec
    from segmentation.sources import cache_candidates

    executable = REMBG_VENV / "bin" / "rembg"
    candidates = cache_candidates(get_spec(MODEL_NAME), Settings().u2net_home)
    if not executable.exists():
        return f"not run: {executable} is missing (bash bench/setup-rembg-server.sh creates it)"
    if not (found := [path for path in candidates if path.is_file()]):
        return "not run: no u2netp.onnx in rembg's cache (import_model.py puts it there)"
    # rembg also reads <U2NET_HOME>/u2netp.onnx, so it never downloads; BROWSER=true stops its
    # start-up hook from opening a browser.
    env = {**os.environ, "BROWSER": "true", "U2NET_HOME": str(found[0].parent)}
    port = free_port()
    command = f"{executable} s --host 127.0.0.1 --port {port} --no-ui --log_level warning".split()
    return Measured("rembg s", command, env, scratch, port)


def post(
    client: httpx.Client, server: Measured, image: bytes, fields: dict | None = None
) -> tuple[float, httpx.Response]:
    """One image to the server's removal route: (seconds until it answered, the answer)."""
    files, data = {"file": ("photo.jpg", image, "image/jpeg")}, {**server.form, **(fields or {})}
    sent = time.perf_counter()
    response = client.post(server.url + server.path, data=data, files=files)
    return time.perf_counter() - sent, response


def problem(response: httpx.Response, media_type: str = "image/png") -> str | None:
    """None if the answer is an image of `media_type`, else what is wrong (as the load test
    names it)."""
    if response.status_code != 200:
        return error_kind(response.status_code, response.content)
    return check_image(response.headers, response.content, media_type)


def run_level(server: Measured, image: bytes, concurrency: int, seconds: float, ids: list) -> Level:
    """Closed loop: `concurrency` clients each send the next request (fresh bytes) as soon as
    one is answered. Requests still in flight when the window closes are awaited and dropped;
    the server's CPU is read before the clients start and after the last answer."""
    level = Level(server.name, concurrency, seconds)
    lock, start = threading.Lock(), threading.Barrier(concurrency + 1)

    def client_loop() -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            start.wait()
            while (sent := time.perf_counter()) < end:
                try:
                    response = post(client, server, fresh(image))[1]
                    error, size = problem(response), len(response.content)
                except httpx.HTTPError as exc:
                    error, response = type(exc).__name__, None
                with lock:
                    if (done := time.perf_counter()) > end:
                        level.late += 1
                        break
                    if error:
                        level.errors[error] += 1
                        continue
                    level.latencies.append(done - sent)
                    level.sizes.append(size)
                    if cached := response.headers.get("x-cache"):
                        level.cache[cached] += 1
                    ids.append(response.headers.get("x-request-id", ""))

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    before, cpu_started = server.cpu(), time.monotonic()
    end = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    level.cpu = report.cpu_split(before, server.cpu())
    level.cpu_wall = time.monotonic() - cpu_started
    log(f"{server.name} c={concurrency}: {level.rps:.2f} req/s, p50 {level.ms(50):.0f} ms")
    return level


def warm_up(server: Measured, images: Images, notes: list[str]) -> None:
    """Three 1 MP requests and one 12 MP, fresh bytes each, each tried up to three times."""
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for image in [images["1 MP @1200"]] * 3 + [images["12 MP @1200"]]:
            for attempt in (1, 2, 3):
                try:
                    response = post(client, server, fresh(image))[1]
                    if (error := problem(response)) is None:
                        break
                    error += f": {response.text[:300]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                notes.append(f"{server.name} warm-up request failed ({error}), attempt {attempt}.")
                time.sleep(2)
            else:
                raise RuntimeError(f"{server.name}: warm-up request failed ({error})")


def one_at_a_time(
    server: Measured, probes: dict[str, Probe], count: int, notes: list[str], ids: dict
) -> Latencies:
    """`count` rounds of `probes`, one request at a time; a probe expecting a miss gets fresh
    bytes, the others the previous probe's. An answer that is not an image of the format asked
    for with the X-Cache expected is left out and counted in a note; `ids` keeps the others'."""
    latencies: Latencies = {probe: [] for probe in probes}
    unexpected: Counter[str] = Counter()
    body = b""
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for _ in range(count):
            for probe, (image, fields, expected) in probes.items():
                body = fresh(image) if expected == "miss" else body
                media_type = "image/" + fields.get("format", "png").lower()
                elapsed, response = post(client, server, body, fields)
                got = response.headers.get("x-cache")
                if got == expected and not problem(response, media_type):
                    latencies[probe].append(elapsed)
                    ids.setdefault(probe, []).append(response.headers.get("x-request-id", ""))
                else:
                    unexpected[f"{probe}: HTTP {response.status_code}, X-Cache {got}"] += 1
    if unexpected:
        notes.append("Left out: " + ", ".join(f"{k} ×{n}" for k, n in unexpected.items()))
    return latencies


def request_log(path: Path) -> list[dict]:
    lines = []
    for text in path.read_text(errors="replace").splitlines() if path.exists() else []:
        with suppress(json.JSONDecodeError):
            if (line := json.loads(text)).get("logger") == "bg_remover.requests":
                lines.append(line)
    return lines


# --------------------------------------------------------------------------- the main run


def bench_servers(run: report.Run, images: Images, args: Args, scratch: Path) -> None:
    """Both servers up at once; each load level runs on ours, then on rembg s, so that drift in
    the machine's background load hits both alike."""
    servers = [ours("ours", scratch)]
    other = "not run (--skip-rembg)" if args.skip_rembg else rembg(scratch)
    if isinstance(other, str):
        run.notes.append(f"rembg s: {other}")
    else:
        servers.append(other)
    ids: dict[str, list[str]] = {}
    one_mp = images["1 MP @1200"]
    try:
        for server in list(servers):
            try:
                server.start()
                server.phase = "warm-up"
                warm_up(server, images, run.notes)
            except (RuntimeError, httpx.HTTPError) as exc:
                if server is servers[0]:
                    raise
                run.notes.append(f"rembg s failed to start or answer: {exc}")
                server.stop()
                servers.remove(server)
        main = servers[0]
        main.phase = "sizes"  # 12 MP against 1 MP at max_width=1200, then the cache probes
        sizes = {name: (image, {"max_width": "1200"}, "miss") for name, image in images.items()}
        run.sizes = one_at_a_time(main, sizes, args.size_requests, run.notes, ids)
        main.phase = "cache"
        cache = report.CACHE_PROBES.items()
        probes = {name: (one_mp, fields, expected) for name, (fields, expected) in cache}
        run.cache = one_at_a_time(main, probes, args.cache_requests, run.notes, {})
        set_phase(servers, "idle", 2)
        for concurrency in LEVELS:
            for server in servers:
                set_phase(servers, "waiting")
                server.phase = f"c={concurrency}"
                chosen: list[str] = []  # the request ids of our server's level, for the profile
                if server is main:
                    ids[f"1 MP default, c={concurrency}"] = chosen
                run.levels.append(run_level(server, one_mp, concurrency, args.level_s, chosen))
        set_phase(servers, "after", args.rest_s)
        if args.soak_minutes:
            main.phase = "soak"
            soak = run_level(main, one_mp, 8, args.soak_minutes * 60, [])
            growth = report.soak_growth([(t, rss) for t, p, rss in main.trace if p == "soak"])
            run.notes.append(
                f"Soak: concurrency 8 for {args.soak_minutes:g} min: {soak.rps:.2f} req/s, "
                f"p50 {soak.ms(50):.0f} ms, {sum(soak.errors.values())} errors, RSS growth "
                f"over the second half {growth * 100:+.1f}%."
            )
    finally:
        for server in servers:
            server.phase = "stopping"  # not "after load"
            server.stop()
            run.rss[server.name] = server.trace
    lines = request_log(scratch / "ours.jsonl")
    run.profiles = {
        label: report.median_stages(lines, chosen) for label, chosen in ids.items() if chosen
    }


def set_phase(servers: list[Measured], phase: str, rest_s: float = 0) -> None:
    for server in servers:
        server.phase = phase
    time.sleep(rest_s)


def mixed_load(run: report.Run, images: Images, args: Args, scratch: Path) -> None:
    """The locustfile's mix with 30% replayed requests against our service with the result
    cache on, then off: same users, seed and length, one server at a time, limits off."""
    write_uploads(scratch / "uploads")  # the /read-file samples, as serve-for-load.sh does
    users, seconds = str(args.mixed_users), args.mixed_seconds
    env = {"STEP_USERS": users, "MAX_USERS": users, "SPAWN_RATE": users}  # all at once
    env |= {"STEP_SECONDS": str(seconds * 2), "RUN_SECONDS": str(seconds)}
    env |= {"LOADTEST_REPEAT_SHARE": "0.3", "LOADTEST_SEED": "bench-performance"}
    for label, enabled in (("cache on", "true"), ("cache off", "false")):
        name, out = "mixed-" + enabled, scratch / f"mixed-{enabled}"
        settings = {"CACHE_ENABLED": enabled, "UPLOAD_DIR": str(scratch / "uploads")}
        with ours(name, scratch, settings) as server:
            warm_up(server, images, run.notes)
            log(f"mixed load, {label}: {users} users for {seconds:g} s")
            locust(server.url, out, env, ["--loglevel", "WARNING"], seconds + 300)
        rows = {row.name: row for row in read_stats(out / "locust_stats.csv")}
        total = rows["Aggregated"]
        images_ok = sum(r.requests - r.failures for r in rows.values() if "/remove-" in r.name)
        counts = (total.requests, total.failures, images_ok, total.p50)
        cache = Series.load(out / "locust_series.json").cache
        run.mixed.append(report.Mixed(label, seconds, *counts, cache))
        failures = sorted(read_failures(out / "locust_failures.csv"), key=lambda f: -f[3])
        if failures:
            kinds = "; ".join(f"{name}: {message} ×{n}" for name, _, message, n in failures[:5])
            run.notes.append(f"Mixed load, {label}: failures: {kinds}.")


def environment(args: Args) -> dict[str, str]:
    served = Settings()  # what the served process will read: environment, .env, defaults
    names = "model_workers model_threads model_parallel_runs model_thread_spinning"
    names += " api_worker_nice max_batch_size cache_enabled"
    settings = [f"{name.upper()}={str(getattr(served, name)).lower()}" for name in names.split()]
    rembg = sorted((REMBG_VENV / "lib").glob("python*/site-packages/rembg-*.dist-info"))
    packages = ("bentoml", "onnxruntime", "pillow", "locust")
    versions = [f"{package} {version(package)}" for package in packages]
    versions.append("rembg (server venv) " + (rembg[-1].name[6:-10] if rembg else "absent"))
    cpus = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line]
    memory = psutil.virtual_memory().total / 2**30
    return {
        "started": datetime.now().isoformat(timespec="seconds"),
        "mode": f"{'quick' if args.quick else 'full'}: {args.level_s:g} s per load level",
        "hardware": f"{os.cpu_count()} CPUs ({cpus[0].split(': ')[-1] if cpus else '?'}), "
        f"{memory:.1f} GiB RAM; compare ratios within one run, not across runs",
        "load average at start (1/5/15 min)": load_average(),
        "serving settings": ", ".join(settings) + " (the mixed load sets CACHE_ENABLED itself)",
        "versions": f"Python {platform.python_version()}, " + ", ".join(versions),
        "images": "skimage coffee, Lanczos to 1224×816 and 4240×2832, JPEG q90; fresh bytes "
        "for every request meant to miss the cache",
    }


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run_benchmark(args: Args) -> str:
    run, images, served = report.Run(environment=environment(args)), make_images(), Settings()
    layouts, run.served_layout = bare_layouts(served.model_threads, served.model_thread_spinning)
    one_mp = images["1 MP @1200"]
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("bare onnxruntime", lambda _: run.bare.update(measure_bare(one_mp, args.bare_s, layouts))),
        ("servers", lambda scratch: bench_servers(run, images, args, scratch)),
    ]
    if args.mixed_seconds > 0:
        steps.append(("mixed load", lambda scratch: mixed_load(run, images, args, scratch)))
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as scratch:
        for name, step in steps:
            log(f"--- {name}")
            try:
                step(Path(scratch))
            except Exception as exc:  # report what failed and keep the rest of the run
                run.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
                log(f"{name} failed: {exc}")
    run.environment["load average at end (1/5/15 min)"] = load_average()
    return report.render(run)


def run_layouts(args: Args) -> str:
    """Per layout and round: its own server, warmed up, then concurrency 1 for a third of the
    level and concurrency 8 for the level. Concurrency 1 comes first: after a burst, BentoML's
    adaptive batcher has learnt a long queue wait and holds a lone request back for it."""
    images, notes, results, facts = make_images(), [], [], environment(args)
    facts.pop("serving settings")
    layouts, _ = bare_layouts(1, False, batch=False)
    one_mp = images["1 MP @1200"]
    bare = measure_bare(one_mp, args.bare_s, layouts)
    with tempfile.TemporaryDirectory(prefix="bench-layouts-") as scratch:
        for round_index in range(args.rounds):
            for env in LAYOUTS if round_index % 2 == 0 else LAYOUTS[::-1]:
                log(f"--- round {round_index + 1}: {env}")
                try:
                    with ours(f"layout-{len(results)}", Path(scratch), env) as server:
                        warm_up(server, images, notes)
                        time.sleep(2)
                        for concurrency, seconds in ((1, args.level_s / 3), (8, args.level_s)):
                            server.phase = f"c={concurrency}"
                            level = run_level(server, one_mp, concurrency, seconds, [])
                            level.peak_rss = max(r for _, p, r in server.trace if p == server.phase)
                            results.append((env, level))
                except Exception as exc:  # report what failed and keep the other layouts
                    notes.append(f"{env}, round {round_index + 1}: {type(exc).__name__}: {exc}")
    facts["load average at end (1/5/15 min)"] = load_average()
    return report.render_layouts(results, bare, facts, notes)


def run_knee(args: Args) -> str:
    """Saturation (closed loop, concurrency 1, 4, 8) and an open-loop step run (from 1 to 10
    req/s) of the same request against one server: the capacity report's knee against it."""
    images, notes = make_images(), []
    with (
        tempfile.TemporaryDirectory(prefix="bench-knee-") as scratch,
        ours("knee", Path(scratch)) as server,
    ):
        warm_up(server, images, notes)
        levels = [run_level(server, images["1 MP @1200"], c, args.level_s, []) for c in LEVELS]
        saturation = max(level.rps for level in levels)
        out = args.out_dir / f"knee-{datetime.now():%Y%m%d-%H%M%S}"
        env = {"LOADTEST_RATE": f"{args.knee_rates}@{args.step_s:g}"}
        env |= {"LOADTEST_MIX": "RemoveBackgroundUser"}
        env |= {"LOADTEST_BUCKETS": "1MP", "LOADTEST_DEFAULT_OPTIONS": "true"}
        env |= {"LOADTEST_REPEAT_SHARE": "0"}
        log(f"open-loop steps {args.knee_rates} req/s, {args.step_s:g} s each")
        locust(server.url, out, env, ["--loglevel", "WARNING"], args.step_s * 10 + 300)
        text, capacity = summarize(out, host=server.url)
    knee = capacity.knee if capacity else None
    ratio = knee / saturation if knee else float("nan")
    within = "within" if abs(ratio - 1) <= 0.15 else "NOT within"
    closed = ", ".join(f"c={level.concurrency} {level.rps:.2f}" for level in levels)
    facts = environment(args) | {"saturation (closed loop)": f"{saturation:.2f} req/s ({closed})"}
    facts["knee (open loop)"] = f"{knee} req/s, {ratio:.2f}× the saturation, {within} ±15%"
    return report.document("Knee against saturation", facts, [text], notes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="10 s per load level, shorter everything")
    add("--soak-minutes", type=float, default=0, help="also concurrency 8 for N min")
    add("--level-seconds", type=float, help="override the load level length")
    add("--skip-rembg", action="store_true", help="do not run rembg s")
    add("--mixed-seconds", type=float, help="each mixed-load run (60 s, 30 quick; 0 skips)")
    # enough users to saturate the server despite the locustfile's think times, yet fewer than
    # MAX_CONCURRENCY (32), so that its concurrency limit sheds none
    add("--mixed-users", type=int, default=24, help="locust users [24]")
    add("--layouts", action="store_true", help="instead: compare serving layouts")
    add("--rounds", type=int, default=1, help="with --layouts: rounds over them [1]")
    add("--knee", action="store_true", help="instead: saturation against the open loop")
    add("--knee-rates", default="1..10/1", help="with --knee: the steps [1..10/1 req/s]")
    add("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.level_s = args.level_seconds or (10 if args.quick else 30)
    args.bare_s = 5 if args.quick else (10 if args.layouts else 15)
    args.size_requests, args.cache_requests = (6, 10) if args.quick else (15, 20)
    args.rest_s, args.step_s = (3, 10) if args.quick else (5, 30)
    if args.mixed_seconds is None:
        args.mixed_seconds = 30 if args.quick else 60
    return args


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    args = parse_args(argv)
    mode = "layouts" if args.layouts else "knee" if args.knee else ""
    text = {"layouts": run_layouts, "knee": run_knee}.get(mode, run_benchmark)(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{mode + '-' if mode else ''}{datetime.now():%Y%m%d-%H%M%S}.md"
    path.write_text(text)
    print(text)
    log(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fast checks of loadtests/ (no server): the locustfile loads as locust loads it, inputs fall
in their megapixel buckets, the plans step, ramp and interleave, the SLO and capacity maths,
and summarize.py reads locust's CSVs.

Nothing here imports locust in-process (it monkey-patches the interpreter with gevent).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from loadtests import inputs, options, summarize
from loadtests.plans import Schedule, StepPlan, interleave, is_repeat
from loadtests.slo import Series, Slo, capacity, verdict

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
ENDPOINT_USERS = {
    "RemoveBackgroundUser",
    "PreviewUser",
    "Base64User",
    "BatchUser",
    "ReadFileUser",
    "PresetsUser",
    "HealthUser",
}

# In a child process: importing locust monkey-patches the interpreter (gevent).
PROBE = """
import json, sys
from types import SimpleNamespace
from locust.dispatch import _kl_generator
from locust.util.load_locustfile import load_locustfile
from loadtests import inputs

users, shapes = load_locustfile(sys.argv[1])
shape, encoded = shapes[0], inputs.sample.cache_info().currsize
def ticks(rate, workers=1):
    options = SimpleNamespace(rate=rate)
    environment = SimpleNamespace(parsed_options=options, user_classes=list(users.values()))
    shape.runner = SimpleNamespace(environment=environment, worker_count=workers)
    result = {}
    for t in (0, 29.9, 30, 60, 119.9, 120):
        shape.get_run_time = lambda t=t: t
        tick = shape.tick()
        result[str(t)] = tick and [tick[0], tick[1], sorted(cls.__name__ for cls in tick[2])]
    return result
closed = [(name, user.weight) for name, user in users.items() if name != "OpenLoopUser"]
order = _kl_generator(closed)
print(json.dumps({
    "weights": {name: user.weight for name, user in users.items()},
    "shapes": [type(item).__name__ for item in shapes], "encoded_at_import": encoded,
    "closed": ticks(""), "open": ticks("1..3/1@30", workers=2),
    "first_users": [next(order) for _ in range(10)],
}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict:
    env = {**os.environ, "STEP_USERS": "2", "STEP_SECONDS": "30", "MAX_USERS": "10"}
    env |= {"RUN_SECONDS": "120", "LOADTEST_DRAIN_S": "10", "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("SPAWN_RATE", None)
    command, root = [sys.executable, "-c", PROBE, str(LOCUSTFILE)], LOCUSTFILE.parents[1]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_locustfile_has_one_user_class_per_endpoint_the_generator_and_the_shape(loaded) -> None:
    assert set(loaded["weights"]) == ENDPOINT_USERS | {"OpenLoopUser"}
    assert loaded["shapes"] == ["LoadShape"]
    assert loaded["encoded_at_import"] == 0  # inputs are built at locust's init event
    weights = loaded["weights"]
    assert weights["RemoveBackgroundUser"] > weights["PreviewUser"] > weights["Base64User"]
    assert set(loaded["first_users"]) == ENDPOINT_USERS  # every class from 10 users on


def test_the_shape_steps_users_or_runs_one_generator_per_worker(loaded) -> None:
    users = {"0": 2, "29.9": 2, "30": 4, "60": 6, "119.9": 8}
    closed = {t: [n, 2.0, sorted(ENDPOINT_USERS)] for t, n in users.items()}
    assert loaded["closed"] == {**closed, "120": None}
    generators = {t: [2, 2, ["OpenLoopUser"]] for t in ("0", "29.9", "30", "60")}
    assert loaded["open"] == {**generators, "119.9": None, "120": None}  # after 90 s, drained


# --- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("bucket", "fmt"), [("0.25MP", "JPEG"), ("1MP", "PNG"), ("12MP", "JPEG")])
def test_samples_decode_to_their_bucket(bucket: str, fmt: str) -> None:
    item = inputs.sample("chelsea", bucket, fmt)
    with Image.open(io.BytesIO(item.data)) as image:
        assert (image.format, image.size) == (fmt, (item.width, item.height))
    assert item.megapixels == pytest.approx(inputs.BUCKETS[bucket], rel=0.01)
    assert item.width / item.height == pytest.approx(451 / 300, rel=0.01)
    assert item.filename == f"chelsea_{bucket.lower()}.{inputs.EXTENSIONS[fmt]}"
    assert inputs.sample("chelsea", bucket, fmt) is item  # cached


def test_pick_respects_the_allowed_buckets_and_uploads_match_read_file_paths(tmp_path) -> None:
    rng = random.Random(1)
    assert {inputs.pick(rng, ["0.25MP"]).bucket for _ in range(20)} == {"0.25MP"}
    written = sorted(inputs.write_uploads(tmp_path).iterdir())
    assert [str(path.relative_to(tmp_path)) for path in written] == sorted(inputs.read_file_paths())
    assert all(path.read_bytes()[:3] == b"\xff\xd8\xff" for path in written)


# --- options and checks ---------------------------------------------------------------------


def test_random_options_stay_in_the_contract() -> None:
    rng, seen = random.Random(7), set()
    for _ in range(500):
        opts = options.random_options(rng)
        seen.add(options.expected_mimetype(opts))
        assert 10 <= int(opts.get("quality", 80)) <= 100
        assert all(100 <= int(opts.get(key, 100)) <= 4000 for key in ("max_width", "max_height"))
        assert opts.get("preset", "web") in options.PRESET_FORMATS
    assert seen == set(options.FORMAT_MIMETYPES.values())
    assert options.expected_mimetype({"format": "jpg"}) == "image/jpeg"
    assert options.expected_mimetype({"preset": "thumbnail"}) == "image/webp"
    assert options.expected_mimetype({"preset": "web", "format": "AVIF"}) == "image/avif"
    typed = options.json_options({"quality": "80", "crop": "true", "crop_margin": "5%"})
    assert typed == {"quality": 80, "crop": True, "crop_margin": "5%"}


def test_checks_name_what_broke() -> None:
    png, png_type = b"\x89PNG\r\n\x1a\n....", {"Content-Type": "image/png"}
    assert options.error_kind(503, b'{"code": "overloaded"}') == "HTTP 503 overloaded"
    assert options.error_kind(502, b"<html>bad gateway</html>") == "HTTP 502 -"
    assert options.check_image(png_type, png, "image/png") is None
    assert options.check_image(png_type, png, "image/jpeg").startswith("bad 200: content-type")
    webp = {"Content-Type": "image/webp"}
    assert options.check_image(webp, png, "image/webp") == "bad 200: body is not image/webp"
    result = json.dumps({"success": True, "mimetype": "image/png", "image": "AA=="}).encode()
    assert options.check_json_result({}, result, "image/png") is None
    assert options.check_json_result({}, result, "image/webp").startswith("bad 200: mimetype")
    assert options.check_json_result({}, result) is None  # /read-file: any image
    manifest = {"files": [{"status": "ok"}, {"status": "error", "error": {"code": "bad_image"}}]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
    zipped, body = {"Content-Type": "application/zip"}, buffer.getvalue()
    assert options.check_batch(zipped, body, 2) == "bad 200: a batch file failed (bad_image)"
    assert options.check_batch(zipped, body, 3).startswith("bad 200: manifest lists 2")
    assert options.check_health({}, b'{"status": "unhealthy"}') == "bad 200: status unhealthy"


# --- plans ----------------------------------------------------------------------------------


def test_step_plan_steps_up_to_max_and_stops() -> None:
    env = {"STEP_USERS": "3", "STEP_SECONDS": "10", "MAX_USERS": "7", "RUN_SECONDS": "45"}
    plan = StepPlan.from_env({**env, "SPAWN_RATE": "1.5"})
    ticks = [plan.tick(t) for t in (0, 10, 20, 44.9, 45)]
    assert ticks == [(3, 1.5), (6, 1.5), (7, 1.5), (7, 1.5), None]
    assert StepPlan.from_env({}).tick(0) == (2, 2)  # defaults: 2 users, at once
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="MAX_USERS"):
            StepPlan.from_env({"MAX_USERS": bad})


def test_schedule_steps_ramps_and_spikes() -> None:
    steps = Schedule("1..3/1@10")
    assert steps.windows() == [(0, 10, 1), (10, 20, 2), (20, 30, 3)]
    assert [t for _, t in steps.arrivals()][:12] == [*range(10), 10, 10.5]
    assert len(list(steps.arrivals())) == 60
    ramp = Schedule("0..4@20")  # 0.1, 0.3, … 3.9 req/s a second: 40 requests
    assert [(a, b) for a, b, _ in ramp.windows()] == [(0, 10), (10, 20)]
    assert [rate for *_, rate in ramp.windows()] == pytest.approx([1.0, 3.0])
    assert len(list(ramp.arrivals())) == 40
    spike = Schedule("2@5, 10@2, 2@5")
    assert (spike.end, spike.rate(6), spike.rate(8)) == (12, 10, 2)
    for bad in ("", "5", "1..x@3", "1..3/0@3", "-1@5"):
        with pytest.raises(ValueError):
            Schedule(bad)


def test_generators_share_the_arrivals_without_overlap() -> None:
    schedule = Schedule("3@10")
    shared = sorted([*schedule.arrivals(0, 2), *schedule.arrivals(1, 2)])
    assert shared == list(schedule.arrivals())


def test_the_mix_is_exact_over_any_cycle_and_repeats_exact_over_any_run() -> None:
    weights = {"remove": 6, "preview": 4, "base64": 2, "batch": 1, "health": 1}
    cycle = interleave(weights)
    assert Counter(cycle) == weights
    assert cycle[:3] == ["remove", "preview", "base64"]  # spread out, not in blocks
    assert sum(is_repeat(i, 0.3) for i in range(1000)) == 300
    assert sum(is_repeat(i, 0.3) for i in range(10, 20)) == 3
    assert not any(is_repeat(i, 0.0) for i in range(100))


# --- the series, SLO verdicts and the capacity answer ----------------------------------------


def stepped_series(capacity_rps: float = 3.0) -> Series:
    """Steps 1..5 req/s, 10 s each, against a server that serves `capacity_rps`: latency grows
    above it, and one shed 503 at every step."""
    series, backlog = Series({"meta": {"rate": "1..5/1@10"}}), 0.0
    for t in range(50):
        rate = t // 10 + 1
        backlog = max(0.0, backlog + rate - capacity_rps)
        for _ in range(rate):
            series.sent(t + 0.5, "/remove-background")
        for i in range(min(rate, int(capacity_rps))):
            series.answered(t + 0.5, t + 0.9, "/remove-background", "ok", 300 + 1000 * backlog + i)
        if t % 10 == 0:
            series.sent(t + 0.5, "/remove-background")
            series.answered(t + 0.5, t + 0.6, "/remove-background", "shed", 5)
    return series


def test_series_merge_like_one_process() -> None:
    whole, first, second = stepped_series(), Series(), Series()
    for key, count in whole.counts.items():
        (first if int(key.split("|")[0]) % 2 else second).counts[key] = count
    second.cache = Counter(hit=2)
    merged = Series(first.drain())
    merged.merge(json.loads(json.dumps(second.data())))  # as a worker's report travels
    assert merged.stats() == whole.stats() and merged.cache == {"hit": 2}
    assert first.counts == {}  # drained


def test_slo_checks_latency_per_class_errors_and_shed() -> None:
    series = stepped_series()
    stats = series.stats(0, 10)
    assert (stats.sent, stats.ok, stats.shed, stats.served, stats.seconds) == (11, 10, 1, 10, 10)
    assert stats.ms(50) == 300 and stats.ratio(stats.shed) == pytest.approx(1 / 11)
    assert Slo.limits("3000") == {"*": 3000} and Slo.limits("/a=1,*=2") == {"/a": 1, "*": 2}
    loose = Slo(p95={"*": 1e6}, min_rps=1)
    assert verdict(series, loose) == (
        True,
        "SLO verdict: PASS: p95 /remove-background 26,000 ms ≤ 1,000,000 ms; "
        "error ratio 0.0% ≤ 1.0%; served req/s 2.40 ≥ 1.00",
    )
    passed, text = verdict(series, Slo(p95={"/remove-background": 1000}, shed_ratio=0.01))
    assert not passed and "p95 /remove-background 26,000 ms > 1,000 ms" in text
    assert "shed ratio 4.0% > 1.0%" in text
    passed, text = verdict(series, Slo(shed_is_error=True))
    assert not passed and text == "SLO verdict: FAIL: error ratio 4.0% > 1.0%"
    assert verdict(Series(), Slo())[1] == "SLO verdict: FAIL: answers 0.00 < 1.00"


def test_capacity_finds_the_knee_where_the_slo_stops_holding() -> None:
    found = capacity(stepped_series(3.0), Slo(p95={"*": 5000}), pods=2, target=10)
    assert [w.offered for w in found.windows] == [1, 2, 3, 4, 5]
    assert [bool(w.failed) for w in found.windows] == [False, False, False, True, True]
    assert (found.knee, found.per_pod, found.replicas) == (3, 1.5, 7)
    p95s = [w.stats.ms(95) for w in found.windows]
    assert p95s[3] < p95s[4]  # latency above the knee grows
    assert "served req/s 3.00 < 3.80" in str(found.windows[3].failed[-1])
    summary = "knee 3 req/s offered; 1.50 req/s per pod (2 serving); 7 replicas for 10 req/s"
    assert found.summary() == f"capacity: {summary}"
    assert capacity(Series(), Slo()) is None  # a closed loop has no schedule


# --- summarize.py ---------------------------------------------------------------------------


def write_csv(path: Path, columns: str, rows: list[list[object]]) -> None:
    """The columns of locust's CSVs that summarize.py reads (locust's own: the integration test)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([columns.split(","), *rows])


@pytest.fixture
def results(tmp_path: Path) -> Path:
    stats = [
        "POST,/remove-background [1MP],120,7,2.0,5012.3,800,2300,4100",
        "GET,/health,10,0,0.1667,60.2,12,40,60",
        "POST,/read-file,0,0,0.0,0,N/A,N/A,N/A",
        ",Aggregated,130,7,2.1667,5012.3,700,2200,4000",
    ]
    columns = "Type,Name,Request Count,Failure Count,Requests/s,Max Response Time,50%,95%,99%"
    write_csv(tmp_path / "locust_stats.csv", columns, [row.split(",") for row in stats])
    errors = {"HTTP 429 rate_limited": 4, "HTTP 503 overloaded": 2}
    errors["bad 200: content-type image/png, expected image/jpeg"] = 1
    failures = [
        ["POST", "/remove-background [1MP]", f"CatchResponseError({e!r})", n]
        for e, n in errors.items()
    ]
    write_csv(tmp_path / "locust_failures.csv", "Method,Name,Error,Occurrences", failures)
    history = [[1795608000 + 30 * i, 2 * i, "Aggregated"] for i in range(3)]
    write_csv(tmp_path / "locust_stats_history.csv", "Timestamp,User Count,Name", history)
    stepped_series().save(tmp_path / "locust_series.json")
    return tmp_path


def test_summarize_reports_rates_percentiles_failures_verdict_and_capacity(results) -> None:
    text, found = summarize.summarize(results, host="http://127.0.0.1:3999")
    expected = [
        "target `http://127.0.0.1:3999`; started 2026-11-25 12:00:00Z; 60 s; peak 4 users",
        "| POST /remove-background [1MP] | 120 | 2.00 | 800 | 2,300 | 4,100 | 5,012 | 7 | 5.8% |",
        "| GET /health | 10 | 0.17 | 12 | 40 | 60 | 60 | 0 | 0.0% |",
        "| POST /read-file | 0 | 0.00 | – | – | – | 0 | 0 | – |",
        "| **total** | 130 | 2.17 | 700 | 2,200 | 4,000 | 5,012 | 7 | 5.4% |",
        "| POST /remove-background [1MP] | 429 rate_limited | HTTP 429 rate_limited | 4 |",
        "| POST /remove-background [1MP] | 503 overloaded | HTTP 503 overloaded | 2 |",
        "| POST /remove-background [1MP] | bad 200 | bad 200: content-type image/png, expected "
        "image/jpeg | 1 |",
        "SLO verdict: PASS: error ratio 0.0% ≤ 1.0%",  # the run's own SLO: the default
        "| 3 | 31 | 3.00 | 300 | 300 | 300 | 0.0% | 3.2% | 0 | met |",
        "| 4 | 41 | 3.00 | 5,300 | 10,000 | 10,000 | 0.0% | 3.2% | 10 "
        "| missed: served req/s 3.00 < 3.80 |",
    ]
    assert [line for line in expected if line not in text] == []
    assert found.knee == 3
    assert (results / "capacity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ('CatchResponseError("HTTP 502 -")', "502"),  # as repr quotes a message holding a '
        ("CatchResponseError('connection error: ConnectionRefusedError')", "conn"),
        ("RuntimeError('boom')", "other"),
    ],
)
def test_failure_kind(error: str, kind: str) -> None:
    assert summarize.failure_kind(error)[0] == kind


def test_summarize_cli_writes_the_file_and_needs_no_optional_file(results, capsys) -> None:
    for name in ("locust_failures.csv", "locust_stats_history.csv", "locust_series.json"):
        (results / name).unlink()
    assert summarize.main([str(results), "--out", str(results / "summary.md")]) == 0
    text = (results / "summary.md").read_text(encoding="utf-8")
    assert text == capsys.readouterr().out and text.rstrip().endswith("none")
    assert "## SLO" not in text

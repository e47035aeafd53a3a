"""Fast checks of loadtests/ (no server): the locustfile loads as locust loads it, inputs fall
in their megapixel buckets, the step shape steps and stops, summarize.py reads locust's CSVs.

Nothing here imports locust in-process (it monkey-patches the interpreter with gevent).
"""

from __future__ import annotations

import csv
import email.parser
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from loadtests import inputs, options, summarize
from loadtests.steps import StepPlan

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

# --- the locustfile, loaded as locust loads it ----------------------------------------------
# In a child process: importing locust monkey-patches the interpreter (gevent), which must
# not leak into the rest of the test session.

PROBE = """
import json, sys
from locust.dispatch import _kl_generator
from locust.util.load_locustfile import load_locustfile
from loadtests import inputs

users, shapes = load_locustfile(sys.argv[1])
encoded_at_import = inputs.sample.cache_info().currsize
shape = shapes[0]
ticks = {}
for t in (0, 29.9, 30, 60, 119.9, 120):
    shape.get_run_time = lambda t=t: t
    ticks[str(t)] = shape.tick()
order = _kl_generator([(name, user.weight) for name, user in users.items()])
print(json.dumps({
    "weights": {name: user.weight for name, user in users.items()},
    "shapes": [type(item).__name__ for item in shapes],
    "encoded_at_import": encoded_at_import,
    "ticks": ticks,
    "first_users": [next(order) for _ in range(shape.plan.max_users)],
}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict:
    env = {
        **os.environ,
        "STEP_USERS": "2",
        "STEP_SECONDS": "30",
        "MAX_USERS": "10",
        "RUN_SECONDS": "120",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    env.pop("SPAWN_RATE", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(LOCUSTFILE)],
        env=env,
        cwd=LOCUSTFILE.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_locustfile_has_one_user_class_per_endpoint_and_the_step_shape(loaded):
    assert set(loaded["weights"]) == ENDPOINT_USERS
    assert loaded["shapes"] == ["StepLoadShape"]


def test_the_mix_is_mostly_remove_background_and_preview(loaded):
    weights = loaded["weights"]
    assert weights["RemoveBackgroundUser"] > weights["PreviewUser"] > weights["Base64User"]
    heavy = weights["RemoveBackgroundUser"] + weights["PreviewUser"]
    assert heavy > sum(weights.values()) / 2


def test_every_user_class_gets_a_user_at_the_default_max(loaded):
    assert set(loaded["first_users"]) == ENDPOINT_USERS


def test_locustfile_import_encodes_nothing(loaded):
    assert loaded["encoded_at_import"] == 0  # inputs are built at locust's init event


def test_shape_in_locust_steps_and_stops(loaded):
    assert loaded["ticks"] == {
        "0": [2, 2.0],
        "29.9": [2, 2.0],
        "30": [4, 2.0],
        "60": [6, 2.0],
        "119.9": [8, 2.0],
        "120": None,
    }


# --- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("photo", inputs.PHOTO_NAMES)
@pytest.mark.parametrize("bucket", list(inputs.BUCKETS))
def test_target_size_is_in_its_bucket(photo, bucket):
    source = inputs._photo(photo)
    width, height = inputs.target_size(source.width, source.height, inputs.BUCKETS[bucket])
    assert width * height / 1e6 == pytest.approx(inputs.BUCKETS[bucket], rel=0.01)
    assert width / height == pytest.approx(source.width / source.height, rel=0.01)


@pytest.mark.parametrize(
    ("bucket", "fmt"),
    [
        ("0.25MP", "JPEG"),
        ("0.25MP", "PNG"),
        ("1MP", "JPEG"),
        ("1MP", "PNG"),
        ("12MP", "JPEG"),
    ],
)
def test_samples_decode_to_their_bucket(bucket, fmt):
    item = inputs.sample("chelsea", bucket, fmt)
    with Image.open(io.BytesIO(item.data)) as image:
        assert image.format == fmt
        assert image.size == (item.width, item.height)
    assert item.megapixels == pytest.approx(inputs.BUCKETS[bucket], rel=0.01)
    assert item.filename == f"chelsea_{bucket.lower()}.{inputs.EXTENSIONS[fmt]}"
    assert inputs.sample("chelsea", bucket, fmt) is item  # cached


def test_buckets_span_quarter_to_twelve_megapixels_small_ones_weighted_more():
    assert list(inputs.BUCKETS.values()) == [0.25, 1.0, 3.0, 12.0]
    weights = [inputs.BUCKET_WEIGHTS[name] for name in inputs.BUCKETS]
    assert weights == sorted(weights, reverse=True)


def test_pick_respects_the_allowed_buckets():
    rng = random.Random(1)
    picked = {inputs.pick(rng, ["0.25MP"]).bucket for _ in range(20)}
    assert picked == {"0.25MP"}


def test_write_uploads_matches_the_read_file_paths(tmp_path):
    written = inputs.write_uploads(tmp_path)
    assert sorted(str(path.relative_to(tmp_path)) for path in written) == sorted(
        inputs.read_file_paths()
    )
    assert all(path.read_bytes()[:3] == b"\xff\xd8\xff" for path in written)


# --- options and checks ---------------------------------------------------------------------


def test_random_options_stay_in_the_contract():
    rng = random.Random(7)
    seen_formats = set()
    for _ in range(500):
        opts = options.random_options(rng)
        seen_formats.add(options.expected_format(opts))
        assert 10 <= int(opts.get("quality", 80)) <= 100
        for key in ("max_width", "max_height"):
            assert 100 <= int(opts.get(key, 100)) <= 4000
        assert opts.get("preset", "web") in options.PRESET_FORMATS
    assert seen_formats == set(options.FORMAT_MIMETYPES)


@pytest.mark.parametrize(
    ("opts", "mimetype"),
    [
        ({}, "image/png"),
        ({"format": "jpg"}, "image/jpeg"),
        ({"preset": "thumbnail"}, "image/webp"),
        ({"preset": "web", "format": "AVIF"}, "image/avif"),
    ],
)
def test_expected_mimetype(opts, mimetype):
    assert options.expected_mimetype(opts) == mimetype


def test_json_options_types_values():
    assert options.json_options(
        {"quality": "80", "crop": "true", "crop_margin": "5%", "max_width": "300", "format": "webp"}
    ) == {"quality": 80, "crop": True, "crop_margin": "5%", "max_width": 300, "format": "webp"}


def test_multipart_body_parses_back():
    body, content_type = options.multipart(
        {"format": "PNG"},
        [
            ("files", "a.jpg", "image/jpeg", b"\xff\xd8\xffA"),
            ("files", "b.png", "image/png", b"\x89PNGB"),
        ],
    )
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = message.get_payload()
    assert [part.get_param("name", header="content-disposition") for part in parts] == [
        "format",
        "files",
        "files",
    ]
    assert parts[1].get_filename() == "a.jpg"
    assert parts[2].get_payload(decode=True) == b"\x89PNGB"


def test_error_kind_names_status_and_code():
    assert options.error_kind(429, b'{"code": "rate_limited"}') == "HTTP 429 rate_limited"
    assert options.error_kind(503, b'{"code": "overloaded"}') == "HTTP 503 overloaded"
    assert options.error_kind(502, b"<html>bad gateway</html>") == "HTTP 502 -"


def test_check_image_wants_the_expected_content_type():
    png = b"\x89PNG\r\n\x1a\n...."
    assert options.check_image("image/png", png, "image/png") is None
    assert options.check_image("image/jpeg", png, "image/png") == (
        "bad 200: content-type image/jpeg, expected image/png"
    )
    assert options.check_image("image/webp", png, "image/webp") == "bad 200: body is not image/webp"
    avif = b"\x00\x00\x00\x1cftypavif" + b"\x00" * 8
    assert options.check_image("image/avif", avif, "image/avif") is None


def test_check_batch_reads_the_manifest():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "manifest.json",
            json.dumps(
                {
                    "files": [
                        {"name": "a.jpg", "status": "ok"},
                        {"name": "b.jpg", "status": "error", "error": {"code": "invalid_image"}},
                    ]
                }
            ),
        )
    body = buffer.getvalue()
    assert options.check_batch("application/zip", body, 2) == (
        "bad 200: a batch file failed (invalid_image)"
    )
    assert options.check_batch("application/zip", body, 3).startswith("bad 200: manifest lists 2")
    assert options.check_batch("application/json", body, 2).startswith("bad 200: content-type")


# --- the step plan (the shape's logic) -----------------------------------------------------


def test_plan_steps_up_to_max_and_stops_after_run_seconds():
    plan = StepPlan.from_env(
        {"STEP_USERS": "2", "STEP_SECONDS": "30", "MAX_USERS": "5", "RUN_SECONDS": "200"}
    )
    assert plan.tick(0) == (2, 2)
    assert plan.tick(29.9) == (2, 2)
    assert plan.tick(30) == (4, 2)
    assert plan.tick(60) == (5, 2)
    assert plan.tick(199.9) == (5, 2)
    assert plan.tick(200) is None
    assert plan.tick(10_000) is None


def test_plan_reads_the_environment(monkeypatch):
    monkeypatch.setenv("STEP_USERS", "3")
    monkeypatch.setenv("STEP_SECONDS", "10")
    monkeypatch.setenv("MAX_USERS", "7")
    monkeypatch.setenv("RUN_SECONDS", "45")
    monkeypatch.setenv("SPAWN_RATE", "1.5")
    plan = StepPlan.from_env()
    assert [plan.users_at(t) for t in (0, 10, 20, 30, 44.9, 45)] == [3, 6, 7, 7, 7, None]
    assert plan.tick(0) == (3, 1.5)


def test_plan_defaults_and_bad_values():
    plan = StepPlan.from_env({})
    assert (plan.step_users, plan.step_seconds, plan.max_users, plan.run_seconds) == (
        2,
        30,
        10,
        300,
    )
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="MAX_USERS"):
            StepPlan.from_env({"MAX_USERS": bad})


# --- summarize.py ---------------------------------------------------------------------------

# The exact headers locust 2.47 writes (--csv, --csv-full-history).
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
FAILURES_HEADER = "Method,Name,Error,Occurrences,First Seen,Last Seen"
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
    "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size"
)


def _write(path: Path, header: str, rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(header + "\r\n")
        csv.writer(handle).writerows(rows)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    _write(
        tmp_path / "locust_stats.csv",
        STATS_HEADER,
        [
            [
                "POST",
                "/remove-background [1MP]",
                120,
                7,
                800,
                910.5,
                300.1,
                5012.3,
                250000.0,
                2.0,
                0.1166,
                800,
                900,
                1000,
                1100,
                1600,
                2300,
                3500,
                4100,
                5000,
                5000,
                5000,
            ],
            [
                "GET",
                "/health",
                10,
                0,
                12,
                13.0,
                4.0,
                60.2,
                320.0,
                0.1667,
                0.0,
                12,
                13,
                15,
                17,
                20,
                40,
                60,
                60,
                60,
                60,
                60,
            ],
            [
                "POST",
                "/read-file",
                0,
                0,
                0,
                0.0,
                0,
                0,
                0,
                0.0,
                0.0,
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
                "N/A",
            ],
            [
                "",
                "Aggregated",
                130,
                7,
                700,
                841.0,
                4.0,
                5012.3,
                230794.0,
                2.1667,
                0.1166,
                700,
                880,
                980,
                1000,
                1500,
                2200,
                3400,
                4000,
                5000,
                5000,
                5000,
            ],
        ],
    )
    _write(
        tmp_path / "locust_failures.csv",
        FAILURES_HEADER,
        [
            [
                "POST",
                "/remove-background [1MP]",
                "CatchResponseError('HTTP 429 rate_limited')",
                4,
                "2026-11-25T12:00:05Z",
                "2026-11-25T12:00:50Z",
            ],
            [
                "POST",
                "/remove-background [1MP]",
                "CatchResponseError('HTTP 503 overloaded')",
                2,
                "2026-11-25T12:00:20Z",
                "2026-11-25T12:00:40Z",
            ],
            [
                "POST",
                "/remove-background [1MP]",
                "CatchResponseError('bad 200: content-type image/png, expected image/jpeg')",
                1,
                "2026-11-25T12:00:30Z",
                "2026-11-25T12:00:30Z",
            ],
        ],
    )
    _write(
        tmp_path / "locust_stats_history.csv",
        HISTORY_HEADER,
        [
            [1795608000, 0, "", "Aggregated", 0, 0, *["N/A"] * 11, 0, 0, 0, 0.0, 0, 0, 0],
            [1795608030, 2, "", "Aggregated", 1.5, 0, *[500] * 11, 40, 1, 500, 600.0, 4, 5000, 1],
            [1795608060, 4, "", "Aggregated", 2.5, 0, *[700] * 11, 130, 7, 700, 841.0, 4, 5012, 1],
        ],
    )
    return tmp_path


def _table_row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_summarize_reports_rates_percentiles_and_failures_by_status(results):
    text = summarize.summarize(results, host="http://127.0.0.1:3999")
    header = _table_row(text, "request")
    assert header == [
        "request",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "failures",
        "fail %",
        "429 rate_limited",
        "503 overloaded",
        "bad 200",
    ]
    assert _table_row(text, "POST /remove-background [1MP]") == [
        "POST /remove-background [1MP]",
        "120",
        "2.00",
        "800",
        "2300",
        "4100",
        "5012",
        "7",
        "5.8%",
        "4",
        "2",
        "1",
    ]
    assert _table_row(text, "GET /health") == [
        "GET /health",
        "10",
        "0.17",
        "12",
        "40",
        "60",
        "60",
        "0",
        "0.0%",
        "0",
        "0",
        "0",
    ]
    assert _table_row(text, "POST /read-file")[1:7] == ["0", "0.00", "–", "–", "–", "0"]
    assert _table_row(text, "**total**") == [
        "**total**",
        "130",
        "2.17",
        "700",
        "2200",
        "4000",
        "5012",
        "7",
        "5.4%",
        "4",
        "2",
        "1",
    ]
    assert "target `http://127.0.0.1:3999`" in text
    assert "60 s; peak 4 users" in text
    assert (
        "| POST /remove-background [1MP] | 429 rate_limited | HTTP 429 rate_limited | 4 |" in text
    )


def test_summarize_without_failures_or_history(results):
    (results / "locust_failures.csv").unlink()
    (results / "locust_stats_history.csv").unlink()
    text = summarize.summarize(results)
    assert _table_row(text, "request")[-1] == "fail %"
    assert text.rstrip().endswith("none")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("CatchResponseError('HTTP 429 rate_limited')", "429 rate_limited"),
        ("CatchResponseError('HTTP 503 overloaded')", "503 overloaded"),
        ("CatchResponseError('HTTP 502 -')", "502"),
        ("CatchResponseError('connection error: ConnectionRefusedError')", "conn"),
        ('CatchResponseError("bad 200: mimetype image/png, expected image/webp")', "bad 200"),
        ("RuntimeError('boom')", "other"),
    ],
)
def test_failure_kind(error, kind):
    assert summarize.failure_kind(error)[0] == kind


def test_summarize_cli_writes_the_file(results, capsys):
    out = results / "summary.md"
    assert summarize.main([str(results), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == capsys.readouterr().out


def test_fresh_bytes_are_new_every_time_and_the_same_image() -> None:
    item = inputs.sample("chelsea", "0.25MP", "JPEG")
    rng = random.Random(7)
    sent = [inputs.fresh_bytes(item.data, rng) for _ in range(50)]
    assert len(set(sent)) == 50 and all(data.startswith(item.data) for data in sent)
    with Image.open(io.BytesIO(sent[0])) as decoded:  # still the same, decodable image
        assert decoded.size == (item.width, item.height)


def test_recent_requests_are_replayed_at_the_repeat_share() -> None:
    recent: inputs.RecentRequests[int] = inputs.RecentRequests(size=4)
    rng = random.Random(3)
    assert recent.replay(rng, 1.0) is None  # nothing sent yet
    for request in range(10):
        recent.remember(request)
    replays = [recent.replay(rng, 0.3) for _ in range(1000)]
    repeated = [request for request in replays if request is not None]
    assert 240 < len(repeated) < 360  # about 30 %
    assert set(repeated) == {6, 7, 8, 9}  # only the last `size` are kept
    assert recent.replay(rng, 0.0) is None


def test_summary_reports_the_hit_ratio(tmp_path: Path) -> None:
    (tmp_path / summarize.CACHE_FILE).write_text(json.dumps({"hit": 30, "mask": 20, "miss": 50}))
    text = summarize.cache_lines(summarize.read_cache_outcomes(tmp_path / summarize.CACHE_FILE))
    joined = "\n".join(text)
    assert "## Result cache" in joined and "hit 30, mask 20, miss 50" in joined
    assert "Hit ratio 30.0%" in joined and "model skipped for 50.0%" in joined
    assert summarize.cache_lines(summarize.read_cache_outcomes(tmp_path / "absent.json")) == []

"""The pure parts of bench/performance.py: statistics, CPU by process and the report."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.report import (
    API,
    ARBITER,
    CACHE_PROBES,
    MODEL,
    OTHER,
    Bare,
    Level,
    Mixed,
    Run,
    cpu_split,
    layout_env,
    median_stages,
    percentile,
    process_role,
    render,
    render_layouts,
    soak_growth,
)

WORKER = ["python", "-m", "_bentoml_impl.worker.service", "service:BackgroundRemover"]


def test_percentile_interpolates_and_is_nan_without_values() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 25) == pytest.approx(1.75)
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize(
    ("cmdline", "is_root", "role"),
    [
        (["python", "-m", "bentoml", "serve", "service:BackgroundRemover"], True, ARBITER),
        ([*WORKER, "--service-name", "segmenter", "--worker-id", "2"], False, MODEL),
        ([*WORKER, "--fd", "12", "--service-name", "bg_remover"], False, API),
        ([*WORKER, "--service-name=segmenter"], False, MODEL),
        (WORKER, False, API),  # the entry service may be started without a name
        ([*WORKER, "--service-name", "another"], False, OTHER),
        (["python", "-c", "from multiprocessing.resource_tracker import main"], False, OTHER),
    ],
)
def test_process_role_from_the_command_line(cmdline: list[str], is_root: bool, role: str) -> None:
    assert process_role(cmdline, is_root) == role


def test_cpu_split_by_role_and_per_request() -> None:
    before = {1: (ARBITER, 10.0), 2: (API, 5.0), 3: (MODEL, 100.0), 9: (OTHER, 1.0)}
    after = {1: (ARBITER, 10.1), 2: (API, 6.0), 3: (MODEL, 104.0), 5: (MODEL, 2.0)}  # 5 is new
    level = Level("ours", 4, 10.0, latencies=[0.5] * 15, errors=Counter(x=3), late=2)
    level.cpu, level.cpu_wall = cpu_split(before, after), 5.0
    assert level.cpu == pytest.approx({ARBITER: 0.1, API: 1.0, MODEL: 6.0})
    assert level.cpu_ms(API) == pytest.approx(50.0)  # 1 s over 20 answers, late ones included
    assert level.cpu_ms() == pytest.approx(355.0)
    assert math.isnan(level.cpu_ms(OTHER))  # nothing of that role was alive at the end
    assert (level.rps, level.ms(50)) == (1.5, 500.0)


def test_soak_growth_compares_the_middle_with_the_end_and_ignores_a_spike() -> None:
    assert soak_growth([(float(t), 1000) for t in range(100)]) == pytest.approx(0.0)
    rising = [(float(t), 1000 + 10 * t) for t in range(101)]
    assert soak_growth(rising) == pytest.approx((1950 - 1500) / 1500)
    spike = [(float(t), 5000 if t == 99 else 1000) for t in range(100)]
    assert soak_growth(spike) == pytest.approx(0.0)
    assert math.isnan(soak_growth([(0.0, 1), (1.0, 1)]))


def test_median_stages_picks_the_requests_by_id() -> None:
    lines = [
        {"request_id": "a", "decode": 4, "inference": 300.0, "duration_ms": 400.0},
        {"request_id": "b", "decode": 6, "inference": 500.0, "duration_ms": 600.0},
        {"request_id": "c", "decode": 100, "inference": 900.0},
    ]
    stages = median_stages(lines, ["a", "b"])
    assert stages == {"decode": 5, "inference": 400, "duration_ms": 500}


def sample_run() -> Run:
    miss, hit = "miss: fresh bytes, default PNG", "hit: the same bytes and options again"
    webp_mask, webp_miss = "mask: the same bytes, format=WEBP", "miss: fresh bytes, format=WEBP"
    c4 = Level("ours", 4, 10.0, latencies=[1.2] * 30, sizes=[800_000] * 30, cache=Counter(miss=30))
    c4.cpu, c4.cpu_wall = {API: 1.2, MODEL: 14.7, ARBITER: 0.03}, 10.0
    rss = [(0.0, "idle", 600_000_000), (1.0, "c=8", 1_200_000_000), (2.0, "after", 900_000_000)]
    return Run(
        environment={"mode": "quick"},
        bare={"1 process × 2 threads": Bare(3.6, 240.0, 460.0), "2 processes": Bare(4.0, 500, 450)},
        served_layout="1 process × 2 threads",
        levels=[
            c4,
            Level("rembg s", 4, 10.0, latencies=[2.0] * 20, errors=Counter({"HTTP 500": 2})),
        ],
        cache={
            miss: [0.30, 0.32, 0.34],
            hit: [0.005, 0.006, 0.007],
            webp_mask: [0.13],
            webp_miss: [0.4],
        },
        mixed=[
            Mixed("cache on", 60, 300, 0, 240, 2000, {"hit": 30, "mask": 45, "miss": 150}),
            Mixed("cache off", 60, 210, 0, 168, 3000, {"miss": 200}),
        ],
        rss={"ours": rss},
        sizes={"1 MP @1200": [0.40, 0.42, 0.41]},
        profiles={"1 MP default, c=1": {"decode": 8.0, "inference": 240.0, "duration_ms": 290.0}},
        notes=["something odd"],
    )


def test_render_has_every_figure() -> None:
    report = render(sample_run())
    expected = [
        "- mode: quick",
        "| 2 processes | 4.00 | 250 | 500 | 450 | **best** |",
        "| 1 process × 2 threads | 3.60 | 278 | 240 | 460 | served |",
        "| ours | 4 | 30 | 3.00 | 1,200 | 1,200 | 1,200 | 0 | 75% | 800 | miss 30 |",
        "| rembg s | 4 | 20 | 2.00 | 2,000 | 2,000 | 2,000 | HTTP 500 ×2 | 50% | – | – |",
        # c=4: 1.2 s API, 14.7 s model, 0.03 s arbiter over 30 requests in 10 s
        "| ours | 4 | 40.0 | 490.0 | 1.0 | – | 531.0 | 1.59 |",
        "| bare onnxruntime, 1 process × 2 threads | 1 | – | 460.0 | – | – | 460.0 | – |",
        "| hit: the same bytes and options again | 3 | 6.0 | 6.9 | 53.3× |",
        "| mask: the same bytes, format=WEBP | 1 | 130.0 | 130.0 | 3.1× |",
        "| cache on | 60 | 300 | 0 | 5.00 | 4.00 | 2,000 | hit 30, mask 45, miss 150 | 13% |",
        "| cache off | 60 | 210 | 0 | 3.50 | 2.80 | 3,000 | miss 200 | 0% | 0% |",
        "With the cache: 1.43× the req/s (1.43× the image requests/s).",
        "| ours | 600 | 1,200 | 900 | – |",
        "| 1 MP @1200 | 3 | 410 | 419 |",
        "| 1 MP default, c=1 | 8.0 | – | 240.0 | – | – | 248.0 | 290.0 |",
        "- something odd",
    ]
    assert [line for line in expected if line not in report] == []
    assert len(CACHE_PROBES) == 6 and "Targets" not in report


def test_render_leaves_out_what_was_not_measured() -> None:
    report = render(Run(notes=["rembg s: not run (--skip-rembg)"]))
    assert "## Served" not in report and "## Result cache" not in report
    assert "- rembg s: not run (--skip-rembg)" in report


def layout_level(concurrency: int, rps: float, p50_s: float, rss: int | None = None) -> Level:
    count = round(rps * 100)
    level = Level("ours", concurrency, 100.0, latencies=[p50_s] * count, peak_rss=rss)
    level.cpu = {API: 0.4, MODEL: 5.0}
    return level


def test_layouts_pool_rounds_and_pick_the_fastest() -> None:
    a, b, c = layout_env(1, 2, False, 0), layout_env(2, 1, False, 0), layout_env(1, 2, True, 10)
    results = [
        (a, layout_level(8, 3.0, 2.4)),
        (b, layout_level(1, 0.1, 0.34)),
        (b, layout_level(8, 3.4, 2.2, 1_250_000_000)),
        (c, layout_level(8, 3.28, 2.1)),
        (b, layout_level(8, 3.2, 2.2, 1_300_000_000)),
    ]
    report = render_layouts(results, {"1 × 2": Bare(4.2, 200, 455.0)}, {"mode": "x"}, ["a note"])
    # c is within 1% of b (3.28 against 3.30) and answers faster: c is the best
    row_b = "| 2 | 1 | false | 0 | 1 | 3.30 | 3.40 / 3.20 | 2,200 | 2,200 | 340 | 1.2 | 15.2 |"
    assert row_b + " 1,300 | 0 |  |" in report
    row_c = "| true | 10 | 1 | 3.28 | 3.28 | 2,100 | 2,100 | – | 1.2 | 15.2 | – | 0 | **best** |"
    assert row_c in report and report.count("**best**") == 1
    assert "| 1 × 2 | 4.20 | 455.0 |" in report and "- a note" in report
    slower = [pair for pair in results if pair[0] != c] + [(c, layout_level(8, 3.0, 2.1))]
    assert f"{row_b} 1,300 | 0 | **best** |" in render_layouts(slower, {}, {}, [])

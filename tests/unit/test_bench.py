"""The pure parts of bench/performance.py: statistics, targets and the report (no servers)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.perf_report import (
    API_ROLE,
    ARBITER_ROLE,
    CACHE_HIT,
    CACHE_MASK,
    CACHE_MASK_PNG,
    CACHE_MISS,
    CACHE_MISS_PNG,
    CACHE_MISS_WEBP,
    CACHE_OFF,
    CACHE_ON,
    MODEL_ROLE,
    OTHER_ROLE,
    SIZE_LARGE,
    SIZE_SMALL,
    CpuSplit,
    Layout,
    LoadResult,
    Measurements,
    MixedRun,
    RssTrace,
    Target,
    api_stage_rest,
    at_concurrency,
    best_layout,
    cpu_split,
    evaluate,
    level_label,
    median_stages,
    percentile,
    process_role,
    render,
    render_layouts,
    saturation,
    soak_growth,
    summarize_layouts,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 25, 1.75),  # unsorted input; numpy's linear method
        ([10.0], 99, 10.0),
        (list(range(1, 101)), 95, 95.05),
    ],
)
def test_percentile_interpolates_like_numpy(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan_and_q_is_checked():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_load_result_summary():
    result = LoadResult(
        "ours",
        4,
        10.0,
        latencies_s=[0.1, 0.2, 0.3, 0.4, 0.5],
        errors=Counter({"HTTP 503": 2}),
        response_bytes=[1000, 3000],
    )
    assert result.ok == 5
    assert result.error_count == 2
    assert result.throughput == pytest.approx(0.5)  # errors do not count as throughput
    assert result.latency_ms(50) == pytest.approx(300)
    assert result.latency_ms(99) == pytest.approx(496)
    assert result.mean_response_kb == pytest.approx(2.0)


def test_empty_load_result_does_not_raise():
    result = LoadResult("rembg s", 8, 10.0)
    assert result.throughput == 0
    assert math.isnan(result.latency_ms(50))
    assert math.isnan(result.mean_response_kb)


def test_saturation_is_the_fastest_level_with_answers():
    levels = [
        LoadResult("x", c, 10.0, latencies_s=[1.0] * n) for c, n in ((1, 20), (4, 36), (8, 35))
    ]
    assert saturation(levels).concurrency == 4
    assert at_concurrency(levels, 8).ok == 35
    assert saturation([LoadResult("x", 1, 10.0)]) is None
    assert at_concurrency(levels, 2) is None


def test_rss_trace_phases():
    trace = RssTrace()
    for t, phase, rss in [
        (0, "idle", 5),
        (1, "c=8", 9),
        (2, "c=8", 7),
        (3, "after", 6),
        (4, "after", 4),
    ]:
        trace.add(t, phase, rss)
    assert trace.peak("c=8") == 9
    assert trace.last("after") == 4
    assert trace.peak("soak") is None


def test_soak_growth_compares_the_middle_with_the_end():
    flat = [(float(t), 1000) for t in range(100)]
    assert soak_growth(flat) == pytest.approx(0.0)
    # Median of t in 45..55 is 1500; of the last 10% (t >= 90) is 1950.
    rising = [(float(t), 1000 + 10 * t) for t in range(101)]
    assert soak_growth(rising) == pytest.approx((1950 - 1500) / 1500)
    assert math.isnan(soak_growth([(0.0, 1), (1.0, 1)]))


def test_soak_growth_ignores_a_single_spike():
    samples = [(float(t), 1000) for t in range(100)]
    samples[99] = (99.0, 5000)
    assert soak_growth(samples) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("measured", "limit", "at_least", "status"),
    [
        (0.85, 0.8, True, "PASS"),
        (0.8, 0.8, True, "PASS"),
        (0.79, 0.8, True, "MISS"),
        (1.3, 1.3, False, "PASS"),
        (1.31, 1.3, False, "MISS"),
        (None, 1.0, True, "N/A"),
        (math.nan, 1.0, False, "N/A"),
    ],
)
def test_target_status(measured, limit, at_least, status):
    assert Target("t", measured, limit, at_least).status == status


def test_numbers_that_round_to_zero_have_no_sign():
    m = sample_measurements()
    m.served[1].cpu = c4_cpu(api_s=1.1399)  # 37.997 ms against 38 ms of stages
    assert "| HTTP, multipart and the rest | – | 0.0 | 0% |" in render(m)


def test_target_values_render_in_their_unit():
    assert Target("t", 0.834, 0.8, True, unit="%").render_value(0.834) == "83.4%"
    assert Target("t", 41.26, 45, False, unit="ms").render_value(41.26) == "41.3 ms"
    assert Target("t", 1234.0, 1500, False, unit="MB").render_value(1234.0) == "1,234 MB"
    assert Target("t", 1.234, 1.5, True).render_value(1.234) == "1.23×"
    assert Target("t", None, 1.5, True).render_value(None) == "–"


SERVED_LAYOUT = "1 process × 2 threads"


def c4_cpu(api_s: float = 1.2, model_s: float = 14.7, requests: int = 30) -> CpuSplit:
    return CpuSplit({API_ROLE: api_s, MODEL_ROLE: model_s, ARBITER_ROLE: 0.03}, requests, 10.0)


def sample_measurements(**changes) -> Measurements:
    trace = RssTrace()
    for t, phase, rss in [
        (0, "idle", 600_000_000),
        (1, "c=8", 1_200_000_000),
        (2, "after", 900_000_000),
    ]:
        trace.add(t, phase, rss)
    m = Measurements(
        ceiling={
            "1 process × 1 thread": 2.0,
            SERVED_LAYOUT: 3.6,
            "2 processes × 1 thread (total)": 4.0,
        },
        ceiling_cpu_ms={
            "1 process × 1 thread": 440.0,
            SERVED_LAYOUT: 460.0,
            "2 processes × 1 thread (total)": 450.0,
        },
        ceiling_run_ms={
            "1 process × 1 thread": 500.0,
            SERVED_LAYOUT: 240.0,
            "2 processes × 1 thread (total)": 500.0,
        },
        served_layout=SERVED_LAYOUT,
        served=[
            LoadResult("ours", 1, 10.0, latencies_s=[0.25] * 25),
            LoadResult("ours", 4, 10.0, latencies_s=[1.2] * 30, cpu=c4_cpu()),
            LoadResult("ours", 8, 10.0, latencies_s=[2.0] * 35),
        ],
        rembg=[
            LoadResult("rembg s", 1, 10.0, latencies_s=[0.5] * 20),
            LoadResult("rembg s", 8, 10.0, latencies_s=[4.0] * 20),
        ],
        size_latency={SIZE_SMALL: [0.40, 0.42, 0.41], SIZE_LARGE: [0.50, 0.52, 0.60]},
        cache_latency={
            CACHE_MISS: [0.30, 0.32, 0.34],
            CACHE_HIT: [0.005, 0.006, 0.007],
            CACHE_MASK: [0.12, 0.13, 0.14],
            CACHE_MASK_PNG: [0.08, 0.08, 0.09],
            CACHE_MISS_WEBP: [0.38, 0.40, 0.42],
            CACHE_MISS_PNG: [0.26],
        },
        mixed=[
            MixedRun(CACHE_ON, 24, 60.0, 300, 0, 240, 2000.0, {"hit": 30, "mask": 45, "miss": 150}),
            MixedRun(CACHE_OFF, 24, 60.0, 210, 0, 168, 3000.0, {"miss": 200}),
        ],
        profiles={
            level_label(1): {
                "decode": 8.0,
                "preprocess": 14.0,
                "inference": 240.0,
                "compose": 10.0,
                "encode": 6.0,
                "duration_ms": 290.0,
            }
        },
        rss={"ours": trace},
    )
    for key, value in changes.items():
        setattr(m, key, value)
    return m


def find(targets: list[Target], text: str) -> Target:
    return next(target for target in targets if text in target.name)


def test_evaluate_computes_each_ratio():
    targets = evaluate(sample_measurements())
    ceiling = find(targets, "bare ceiling")
    assert ceiling.measured == pytest.approx(3.5 / 4.0)  # saturation vs the best layout
    assert ceiling.status == "PASS"  # 87.5% ≥ 85%
    rembg = find(targets, "rembg s at saturation")
    assert rembg.measured == pytest.approx(3.5 / 2.0)
    assert rembg.status == "PASS"
    p50 = find(targets, "rembg s p50 at concurrency 1")
    assert p50.measured == pytest.approx(0.5)
    assert p50.status == "PASS"  # 0.25 s against 0.5 s: 0.5× ≤ 0.75×
    bare = find(targets, "bare single-image")
    assert bare.measured == pytest.approx(250 / 240)  # against the served layout, not the best
    assert bare.status == "PASS"
    api = find(targets, "API worker CPU")
    assert api.measured == pytest.approx(40.0)  # 1.2 s over 30 requests
    assert api.status == "PASS"
    model = find(targets, "model worker CPU")
    assert model.measured == pytest.approx(490 / 460)
    assert model.status == "MISS"  # 1.065× > 1.05×
    hit = find(targets, "full-result hit")
    assert hit.measured == pytest.approx(320 / 6)
    assert hit.status == "PASS"
    mask = find(targets, "mask hit")
    assert mask.measured == pytest.approx(400 / 130)  # against the WEBP miss, not the PNG one
    assert mask.status == "PASS"
    mixed = find(targets, "mixed load")
    assert mixed.measured == pytest.approx(5.0 / 3.5)
    assert mixed.status == "PASS"
    sizes = find(targets, "12 MP")
    assert sizes.measured == pytest.approx(0.52 / 0.41)
    assert sizes.status == "PASS"
    rss = find(targets, "peak RSS")
    assert rss.measured == pytest.approx(1200)
    assert rss.status == "PASS"


@pytest.mark.parametrize(
    ("changes", "target", "status"),
    [
        ({"ceiling": {SERVED_LAYOUT: 4.2}}, "bare ceiling", "MISS"),  # 3.5 / 4.2 = 83%
        ({"ceiling_run_ms": {SERVED_LAYOUT: 200.0}}, "bare single-image", "MISS"),  # 1.25×
        ({"ceiling_cpu_ms": {SERVED_LAYOUT: 480.0}}, "model worker CPU", "PASS"),  # 1.02×
        (
            {"cache_latency": {CACHE_MISS: [0.3], CACHE_HIT: [0.01], CACHE_MASK: [0.2]}},
            "full-result hit",
            "MISS",
        ),  # 30×
        (
            {
                "cache_latency": {
                    CACHE_MISS: [0.9],
                    CACHE_HIT: [0.001],
                    CACHE_MASK: [0.2],
                    CACHE_MISS_WEBP: [0.3],
                }
            },
            "mask hit",
            "MISS",
        ),  # 1.5×: a faster default miss does not count
        ({"served_layout": None}, "model worker CPU", "N/A"),
        ({"mixed": []}, "mixed load", "N/A"),
    ],
)
def test_each_target_can_fail(changes, target, status):
    assert find(evaluate(sample_measurements(**changes)), target).status == status


def test_api_cpu_target_is_judged_at_concurrency_4():
    m = sample_measurements()
    m.served[1].cpu = c4_cpu(api_s=1.5)  # 50 ms per request
    m.served[2].cpu = c4_cpu(api_s=0.3)  # c=8 is not the level judged
    assert find(evaluate(m), "API worker CPU").status == "MISS"
    m.served[1].cpu = None
    assert find(evaluate(m), "API worker CPU").status == "N/A"


def test_mixed_gain_counts_successful_requests():
    on = MixedRun(CACHE_ON, 24, 60.0, 330, 30, 240, 2000.0, {"hit": 20, "mask": 30, "miss": 50})
    off = MixedRun(CACHE_OFF, 24, 60.0, 240, 0, 180, 3000.0)
    assert on.throughput == pytest.approx(5.0)  # failures do not count
    assert on.image_throughput == pytest.approx(4.0)
    assert on.share("hit") == pytest.approx(0.2)
    assert on.share("hit", "mask") == pytest.approx(0.5)
    assert math.isnan(off.share("hit"))
    gain = find(evaluate(sample_measurements(mixed=[on, off])), "mixed load")
    assert gain.measured == pytest.approx(5.0 / 4.0)
    assert gain.status == "MISS"


def test_evaluate_without_rembg_or_soak():
    m = sample_measurements(rembg=[], rembg_error="not run (--skip-rembg)")
    targets = evaluate(m)
    assert [t.status for t in targets if "rembg" in t.name] == ["N/A", "N/A"]
    assert not any("soak" in t.name for t in targets)
    with_soak = evaluate(sample_measurements(soak_minutes=10, soak_growth=0.07))
    assert with_soak[-1].status == "MISS"


def test_render_has_every_section_and_the_verdicts():
    m = sample_measurements(notes=["something odd"])
    m.profiles[SIZE_SMALL] = {
        "decode": 5.0,
        "inference": 300.0,
        "encode": 80.0,
        "duration_ms": 400.0,
    }
    m.environment = {"mode": "quick"}
    report = render(m)
    for heading in (
        "## Targets",
        "## Bare onnxruntime ceiling",
        "## Served throughput",
        "## CPU per request by process",
        "## API worker CPU by stage",
        "## Result cache at concurrency 1",
        "## Result cache under mixed load",
        "## Memory",
        "## Input size",
        "## Per-stage profile",
        "## Notes",
    ):
        assert heading in report
    assert "| 2 processes × 1 thread (total) | 4.00 | 250 | 500 | 450 | – | **best** |" in report
    assert "| 1 process × 2 threads | 3.60 | 278 | 240 | 460 | – | served |" in report
    assert "| ours | 8 | 35 | 3.50 | 2,000 | 2,000 | 2,000 | 0 | 88% |" in report
    assert report.count("PASS") == 10 and report.count("MISS") == 1  # model worker CPU
    assert "- mode: quick" in report
    assert "| 1 MP @1200 | 5.0 | – | 300.0 | – | 80.0 | 385.0 | 400.0 |" in report


def test_render_splits_cpu_by_process_and_the_api_worker_by_stage():
    report = render(sample_measurements())
    # c=4: 1.2 s API, 14.7 s model, 0.03 s arbiter over 30 requests in 10 s
    assert "| ours | 4 | 30 | 40.0 | 490.0 | 1.0 | – | 531.0 | 1.59 |" in report
    assert "| bare onnxruntime, 1 process × 2 threads | 1 | – | – | 460.0 |" in report
    # stages from the c=1 log: 8 + 14 + 10 + 6 = 38 of the 40 ms at c=4 (c=1: no CPU read)
    assert "| decode | 8.0 | 8.0 | 20% |" in report
    assert "| HTTP, multipart and the rest | – | 2.0 | 5% |" in report
    assert "| **API worker CPU per request** | – | 40.0 | 100% |" in report
    m = sample_measurements()
    m.served[0].cpu = CpuSplit({API_ROLE: 1.2}, 25, 10.0)  # 48 ms per request at c=1
    m.served[1].cpu = c4_cpu(api_s=1.137)  # 37.9 ms: less than the stages' wall times
    report = render(m)
    assert "| HTTP, multipart and the rest | 10.0 | -0.1 | 0% |" in report  # not "-0%"
    assert "| **API worker CPU per request** | 48.0 | 37.9 | 100% |" in report


def test_render_shows_the_cache():
    report = render(sample_measurements())
    assert "| hit: the same bytes and options again | 3 | 6.0 | 6.9 | 53.3× |" in report
    assert "| mask: the same bytes, format=WEBP | 3 | 130.0 | 139.0 | 3.1× |" in report
    assert "| miss: fresh bytes, format=WEBP | 3 | 400.0 | 418.0 | 1.0× |" in report
    assert (
        "| cache on | 24 | 60 | 300 | 0 | 5.00 | 4.00 | 2,000 | hit 30, mask 45, miss 150 "
        "| 13% | 33% | – | – | – | – |"
    ) in report
    m = sample_measurements()
    m.mixed[1].cpu = CpuSplit({API_ROLE: 54.0, MODEL_ROLE: 60.0, ARBITER_ROLE: 0.1}, 210, 60.0)
    m.mixed[1].client_cores = 0.35
    assert "| 0% | 0% | 0.90 | 1.00 | 0.35 | – |" in render(m)
    assert "With the cache: 1.43× the req/s (1.43× the image requests/s)." in report
    failed = render(sample_measurements(mixed=[], mixed_error="cache on failed: boom"))
    assert "Mixed load: cache on failed: boom" in failed


def test_render_explains_a_missing_rembg():
    report = render(sample_measurements(rembg=[], rembg_error="not run: venv missing"))
    assert "rembg s: not run: venv missing" in report
    assert "N/A" in report


def test_median_stages_picks_the_requests_by_id():
    lines = [
        {"request_id": "a", "decode": 4, "inference": 300.0, "duration_ms": 400.0},
        {"request_id": "b", "decode": 6, "inference": 500.0, "duration_ms": 600.0},
        {"request_id": "c", "decode": 100, "inference": 900.0, "duration_ms": 1000.0},
        {"request_id": "d", "status": 400},
    ]
    stages = median_stages(lines, ["a", "b", "d"])
    assert stages["requests"] == 3
    assert stages["decode"] == 5
    assert stages["inference"] == 400
    assert "encode" not in stages


def test_a_busy_machine_is_flagged():
    quiet = sample_measurements(ceiling_other_cpu={"1 process × 1 thread": 0.05})
    assert "Other processes used" not in render(quiet)
    busy = sample_measurements(ceiling_other_cpu={"1 process × 1 thread": 0.6})
    assert "Other processes used up to 60% of all cores" in render(busy)


@pytest.mark.parametrize(
    ("cmdline", "is_root", "role"),
    [
        (["python", "-m", "bentoml", "serve", "service:BackgroundRemover"], True, ARBITER_ROLE),
        (
            [
                "python",
                "-m",
                "_bentoml_impl.worker.service",
                "service:BackgroundRemover",
                "--service-name",
                "segmenter",
                "--fd",
                "7",
                "--worker-id",
                "2",
            ],
            False,
            MODEL_ROLE,
        ),
        (
            [
                "python",
                "-m",
                "_bentoml_impl.worker.service",
                "service:BackgroundRemover",
                "--fd",
                "12",
                "--service-name",
                "bg_remover",
                "--backlog",
                "2048",
            ],
            False,
            API_ROLE,
        ),
        (
            [
                "python",
                "-m",
                "_bentoml_impl.worker.service",
                "service:BackgroundRemover",
                "--service-name=segmenter",
            ],
            False,
            MODEL_ROLE,
        ),
        # the entry service may be started without a name: it is the API
        (
            ["python", "-m", "_bentoml_impl.worker.service", "service:BackgroundRemover"],
            False,
            API_ROLE,
        ),
        (
            [
                "python",
                "-m",
                "_bentoml_impl.worker.service",
                "service:X",
                "--service-name",
                "another",
            ],
            False,
            OTHER_ROLE,
        ),
        (["python", "-c", "from multiprocessing.resource_tracker import main"], False, OTHER_ROLE),
    ],
)
def test_process_role_from_the_command_line(cmdline, is_root, role):
    assert process_role(cmdline, is_root) == role


def test_cpu_split_attributes_deltas_to_roles():
    before = {
        1: (ARBITER_ROLE, 10.0),
        2: (API_ROLE, 5.0),
        3: (MODEL_ROLE, 100.0),
        4: (MODEL_ROLE, 50.0),
        9: (OTHER_ROLE, 1.0),
    }
    after = {
        1: (ARBITER_ROLE, 10.1),
        2: (API_ROLE, 6.0),
        3: (MODEL_ROLE, 104.0),
        4: (MODEL_ROLE, 54.0),
        5: (MODEL_ROLE, 2.0),
    }  # 5 appeared, 9 exited
    split = cpu_split(before, after, requests=20, wall_s=5.0)
    assert split.seconds[API_ROLE] == pytest.approx(1.0)
    assert split.seconds[MODEL_ROLE] == pytest.approx(10.0)  # both workers and the new one
    assert split.ms_each(API_ROLE) == pytest.approx(50.0)
    assert split.ms_each(MODEL_ROLE) == pytest.approx(500.0)
    assert split.ms_each(ARBITER_ROLE) == pytest.approx(5.0)
    assert split.total_ms_each == pytest.approx(555.0)
    assert split.cores == pytest.approx(11.1 / 5.0)
    assert split.cores_of(MODEL_ROLE) == pytest.approx(2.0)
    assert math.isnan(split.cores_of(OTHER_ROLE))
    assert split.lost == 1
    assert math.isnan(split.ms_each(OTHER_ROLE))  # nothing of that role was alive at the end
    assert math.isnan(CpuSplit({API_ROLE: 1.0}, 0, 1.0).ms_each(API_ROLE))


def test_api_stage_rest():
    stages = {"decode": 8.0, "preprocess": 14.0, "compose": 10.0, "encode": 6.0, "inference": 300.0}
    assert api_stage_rest(45.0, stages) == pytest.approx(7.0)  # inference is not API CPU
    assert api_stage_rest(45.0, {"decode": 8.0}) is None
    assert api_stage_rest(math.nan, stages) is None


def layout_result(
    rps: float, p50_s: float, api_s: float = 0.4, model_s: float = 5.0, seconds: float = 100.0
) -> LoadResult:
    count = round(rps * seconds)
    return LoadResult(
        "ours",
        8,
        seconds,
        latencies_s=[p50_s] * count,
        cpu=CpuSplit({API_ROLE: api_s, MODEL_ROLE: model_s}, count, seconds),
    )


def test_layouts_pool_rounds_and_pick_the_fastest():
    a, b, c = Layout(1, 2, False, 0), Layout(2, 1, False, 0), Layout(1, 2, True, 10)
    lone = LoadResult("ours", 1, 10.0, latencies_s=[0.30, 0.34, 0.50])
    summaries = summarize_layouts(
        [
            (a, layout_result(3.0, 2.4)),
            (b, layout_result(3.4, 2.2)),
            (b, lone),
            (c, layout_result(3.25, 2.1)),
            (c, layout_result(3.31, 2.1)),
            (b, layout_result(3.2, 2.2)),
            (a, layout_result(3.0, 2.4)),
        ]
    )
    summaries[1].results[0].peak_rss = 1_250_000_000
    summaries[1].results[1].peak_rss = 1_300_000_000
    assert [s.layout for s in summaries] == [a, b, c]
    assert summaries[1].singles == [lone]  # concurrency 1 is kept apart from the c=8 figures
    assert summaries[1].single_p50_ms == pytest.approx(340)
    assert math.isnan(summaries[0].single_p50_ms)
    assert summaries[1].throughput == pytest.approx(3.3)
    assert summaries[1].cpu_ms(API_ROLE) == pytest.approx(0.8 * 1000 / 660)
    assert summaries[1].cpu_ms(MODEL_ROLE) == pytest.approx(10.0 * 1000 / 660)
    # c (3.28 req/s) is within 1% of b (3.30) and answers faster: it wins
    assert best_layout(summaries).layout == c
    summaries[2].results[0] = layout_result(3.0, 2.1)
    assert best_layout(summaries).layout == b  # now 3.155: more than 1% behind
    report = render_layouts(
        summaries, {"1 process × 2 threads": (4.2, 455.0)}, {"mode": "layouts"}, ["a note"]
    )
    assert (
        "| 2 | 1 | 1 | off | 0 | 3.30 | 3.40 / 3.20 | 2,200 | 2,200 | 340 | 1.2 | 15.2 "
        "| 1,300 | 0 | – | **best** |"
    ) in report  # peak RSS: the highest of the rounds
    assert (
        "| 1 | 2 | 1 | off | 0 | 3.00 | 3.00 / 3.00 | 2,400 | 2,400 | – | 1.3 | 16.7 | – |"
        in report
    )
    assert report.count("**best**") == 1
    assert "| 1 process × 2 threads | 4.20 | 455.0 |" in report
    assert "- a note" in report


def test_layout_settings():
    layout = Layout(2, 1, True, 10)
    assert layout.env == {
        "MODEL_WORKERS": "2",
        "MODEL_THREADS": "1",
        "MODEL_THREAD_SPINNING": "true",
        "API_WORKER_NICE": "10",
        "MODEL_PARALLEL_RUNS": "1",
    }
    assert best_layout([]) is None

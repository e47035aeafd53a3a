"""The pure parts of bench/performance.py: statistics, targets and the report (no servers)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.perf_report import (
    SIZE_LARGE,
    SIZE_SMALL,
    LoadResult,
    Measurements,
    RssTrace,
    Target,
    at_concurrency,
    evaluate,
    median_stages,
    percentile,
    render,
    saturation,
    soak_growth,
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
    result = LoadResult("ours", 4, 10.0, latencies_s=[0.1, 0.2, 0.3, 0.4, 0.5],
                        errors=Counter({"HTTP 503": 2}), response_bytes=[1000, 3000])
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
    levels = [LoadResult("x", c, 10.0, latencies_s=[1.0] * n) for c, n in ((1, 20), (4, 36),
                                                                            (8, 35))]
    assert saturation(levels).concurrency == 4
    assert at_concurrency(levels, 8).ok == 35
    assert saturation([LoadResult("x", 1, 10.0)]) is None
    assert at_concurrency(levels, 2) is None


def test_rss_trace_phases():
    trace = RssTrace()
    for t, phase, rss in [(0, "idle", 5), (1, "c=8", 9), (2, "c=8", 7), (3, "after", 6),
                          (4, "after", 4)]:
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
    [(0.85, 0.8, True, "PASS"), (0.8, 0.8, True, "PASS"), (0.79, 0.8, True, "MISS"),
     (1.3, 1.3, False, "PASS"), (1.31, 1.3, False, "MISS"), (None, 1.0, True, "N/A"),
     (math.nan, 1.0, False, "N/A")],
)
def test_target_status(measured, limit, at_least, status):
    assert Target("t", measured, limit, at_least).status == status


def test_target_values_render_in_their_unit():
    assert Target("t", 0.834, 0.8, True, unit="%").render_value(0.834) == "83.4%"
    assert Target("t", 1234.0, 1500, False, unit="MB").render_value(1234.0) == "1,234 MB"
    assert Target("t", 1.234, 1.5, True).render_value(1.234) == "1.23×"
    assert Target("t", None, 1.5, True).render_value(None) == "–"


def sample_measurements(**changes) -> Measurements:
    trace = RssTrace()
    for t, phase, rss in [(0, "idle", 600_000_000), (1, "c=8", 1_200_000_000),
                          (2, "after", 900_000_000)]:
        trace.add(t, phase, rss)
    m = Measurements(
        ceiling={"1 process × 1 thread": 2.0, "2 processes × 1 thread (total)": 4.0},
        served=[LoadResult("ours", 1, 10.0, latencies_s=[0.25] * 25),
                LoadResult("ours", 8, 10.0, latencies_s=[2.0] * 35)],
        rembg=[LoadResult("rembg s", 1, 10.0, latencies_s=[0.5] * 20),
               LoadResult("rembg s", 8, 10.0, latencies_s=[4.0] * 20)],
        size_latency={SIZE_SMALL: [0.40, 0.42, 0.41], SIZE_LARGE: [0.50, 0.52, 0.60]},
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
    assert ceiling.status == "PASS"
    rembg = find(targets, "rembg s at saturation")
    assert rembg.measured == pytest.approx(3.5 / 2.0)
    assert rembg.status == "PASS"
    p50 = find(targets, "p50 at concurrency 1")
    assert p50.measured == pytest.approx(0.5)
    assert p50.status == "PASS"  # 0.25 s against 0.5 s: 0.5× ≤ 0.6×
    sizes = find(targets, "12 MP")
    assert sizes.measured == pytest.approx(0.52 / 0.41)
    assert sizes.status == "PASS"
    rss = find(targets, "peak RSS")
    assert rss.measured == pytest.approx(1200)
    assert rss.status == "PASS"


def test_evaluate_without_rembg_or_soak():
    m = sample_measurements(rembg=[], rembg_error="not run (--skip-rembg)")
    targets = evaluate(m)
    assert [t.status for t in targets if "rembg" in t.name] == ["N/A", "N/A"]
    assert not any("soak" in t.name for t in targets)
    with_soak = evaluate(sample_measurements(soak_minutes=10, soak_growth=0.07))
    assert with_soak[-1].status == "MISS"


def test_render_has_every_section_and_the_verdicts():
    m = sample_measurements(profiles={SIZE_SMALL: {"decode": 5.0, "inference": 300.0,
                                                   "encode": 80.0, "duration_ms": 400.0}},
                            notes=["something odd"])
    m.environment = {"mode": "quick"}
    report = render(m)
    for heading in ("## Targets", "## Bare onnxruntime ceiling", "## Served throughput",
                    "## Memory", "## Input size", "## Per-stage profile", "## Notes"):
        assert heading in report
    assert "| 2 processes × 1 thread (total) | 4.00 | 250 | – | **best** |" in report
    assert "| ours | 8 | 35 | 3.50 | 2,000 | 2,000 | 2,000 | 0 | 88% |" in report
    assert report.count("PASS") == 5
    assert "- mode: quick" in report
    assert "| 1 MP @1200 | 5.0 | – | 300.0 | – | 80.0 | 385.0 | 400.0 |" in report


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

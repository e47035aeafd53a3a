"""monitoring/grafana-dashboard.json: parses, every panel queries, and only known metrics.

The metric names are the service's contract with its dashboard (docs/api.md, "Metrics"); a query
on a name the service does not export would draw an empty panel without any error. The names the
service exports come from operations/metrics.py, which tests/e2e/test_saturation.py checks
against a real `/metrics`; the cluster's own (cAdvisor, kube-state-metrics) are listed in
tests/k8s/known_metrics.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.known_metrics import (
    BENTOML_METRICS,
    KUBERNETES_METRICS,
    family,
    metric_names,
    service_metrics,
)

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana-dashboard.json"


KNOWN_METRICS = service_metrics() | BENTOML_METRICS | KUBERNETES_METRICS

# What a dashboard must show, as (metric, a word of the panel title).
REQUIRED = [
    ("bg_remover_requests_total", "request rate"),
    ("bg_remover_request_duration_seconds_bucket", "latency"),
    ("bg_remover_rate_limited_total", "429"),
    ("bg_remover_requests_total", "error"),
    ("bg_remover_inference_batch_size_bucket", "batch size"),
    ("bentoml_service_adaptive_batch_size_bucket", "batch size"),
    ("bg_remover_inference_duration_seconds_bucket", "inference time"),
    ("bg_remover_output_bytes_sum", "output bytes"),
    ("bg_remover_compression_ratio_bucket", "compression ratio"),
    ("bg_remover_cache_requests_total", "hit ratio"),
    ("bg_remover_cache_stored_bytes", "cache size"),
]
# The saturation row: (metric, a word of the panel title).
SATURATION = [
    ("bg_remover_requests_in_flight", "in flight"),
    ("bg_remover_admitted_memory_bytes", "admitted memory"),
    ("bg_remover_shed_total", "shed"),
    ("bg_remover_redis_up", "redis"),
    ("container_cpu_cfs_throttled_periods_total", "throttling"),
    ("container_memory_working_set_bytes", "memory against the limit"),
    ("kube_pod_container_resource_limits", "memory against the limit"),
    ("kube_pod_container_status_restarts_total", "restarts"),
    ("kube_horizontalpodautoscaler_status_current_replicas", "replicas"),
    ("kube_horizontalpodautoscaler_spec_max_replicas", "replicas"),
    ("bg_remover_build_info", "build"),
]


def variable_query_metrics(query: str) -> set[str]:
    match = re.fullmatch(r"\s*(?:label_values|metrics)\(\s*([A-Za-z_:][\w:]*)", query.split(",")[0])
    return {match.group(1)} if match else set()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return [p for p in found if p["type"] != "row"]


def test_parses_and_is_importable(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["title"]
    assert dashboard["uid"]
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    ids += [p["id"] for row in dashboard["panels"] for p in row.get("panels", [])]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids), "duplicate panel ids"
    for panel in panels(dashboard):
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]


def test_every_panel_has_a_query_on_the_input_datasource(dashboard: dict[str, Any]) -> None:
    assert panels(dashboard)
    for panel in panels(dashboard):
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in targets:
            assert target["expr"].strip(), f"panel {panel['title']!r} has an empty query"
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert target["expr"].count("{") == target["expr"].count("}"), target["expr"]


def test_only_known_metrics(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for panel in panels(dashboard):
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"no metric in {target['expr']!r}"
            unknown = names - KNOWN_METRICS
            assert not unknown, f"panel {panel['title']!r} uses unknown metrics {unknown}"
            used |= names
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        assert variable_query_metrics(text) <= KNOWN_METRICS, variable["name"]
    exported = {family(name) for name in service_metrics()}
    shown = {family(name) for name in used}
    assert exported <= shown, f"metrics of the service never shown: {exported - shown}"


def test_required_panels(dashboard: dict[str, Any]) -> None:
    for metric, word in REQUIRED:
        assert any(
            word in panel["title"].lower()
            and any(metric in metric_names(t["expr"]) for t in panel["targets"])
            for panel in panels(dashboard)
        ), f"no panel titled with {word!r} queries {metric}"
    latency = [p for p in panels(dashboard) if "latency" in p["title"].lower()]
    exprs = " ".join(t["expr"] for p in latency for t in p["targets"])
    for quantile in ("0.50", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}" in exprs
    assert "endpoint" in exprs
    errors = " ".join(
        t["expr"] for p in panels(dashboard) if "error" in p["title"].lower() for t in p["targets"]
    )
    assert 'status=~"5.."' in errors and 'status=~"4.."' in errors


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (endpoint) (rate(bg_remover_requests_total{status=~"5.."}[5m]))',
         {"bg_remover_requests_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(foo_bucket[$__rate_interval])))",
         {"foo_bucket"}),
        ("a_total / on (job) group_left (x) b_total offset 5m", {"a_total", "b_total"}),
        ('up{job="bg_remover_requests_total"} > 1e3', {"up"}),
        ("sum(rate(x_total[5m])) / clamp_min(sum(rate(y_total[1h])), 1e-9)",
         {"x_total", "y_total"}),
    ],
)  # fmt: skip
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def row_panels(dashboard: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels under the row called `title`, in reading order."""
    ordered = sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    start = next(i for i, p in enumerate(ordered) if p["type"] == "row" and p["title"] == title)
    end = next((i for i, p in enumerate(ordered) if i > start and p["type"] == "row"), None)
    return ordered[start + 1 : end]


def test_saturation_row(dashboard: dict[str, Any]) -> None:
    row = row_panels(dashboard, "Saturation")
    for metric, word in SATURATION:
        assert any(
            word in panel["title"].lower()
            and any(metric in metric_names(t["expr"]) for t in panel["targets"])
            for panel in row
        ), f"the saturation row has no panel titled with {word!r} querying {metric}"
    exprs = " ".join(t["expr"] for panel in row for t in panel["targets"])
    assert "by (reason)" in exprs and "by (role)" in exprs
    # The autoscaler's own signal is drawn: the 1-minute average of the gauge.
    assert "avg_over_time(bg_remover_requests_in_flight" in exprs
    ours = {name for name in metric_names(exprs) if name.startswith("bg_remover_")}
    assert ours and ours <= service_metrics(), ours - service_metrics()


def test_error_ratio_leaves_probes_and_scrapes_out(dashboard: dict[str, Any]) -> None:
    (panel,) = [p for p in panels(dashboard) if p["title"] == "Error ratio"]
    for target in panel["targets"]:
        assert target["expr"].count('endpoint!~"probe|scrape|other"') == 2, target["expr"]

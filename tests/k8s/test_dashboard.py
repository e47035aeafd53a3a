"""monitoring/grafana-dashboard.json: parses, every panel queries, and only known metrics.

The metric names are the service's contract with its dashboard (docs/api.md, "Metrics"); a query
on a name the service does not export would draw an empty panel without any error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana-dashboard.json"


def exported_names() -> set[str]:
    """Every series name the service's own metrics (operations/metrics.py) export."""
    from prometheus_client import Counter, Histogram

    from operations import metrics

    suffixes = {Counter: ("_total",), Histogram: ("_bucket", "_sum", "_count")}
    return {
        metric._name + suffix
        for metric in vars(metrics).values()
        if isinstance(metric, (Counter, Histogram))
        for suffix in suffixes[type(metric)]
    }


KNOWN_METRICS = exported_names() | {"bentoml_service_adaptive_batch_size_bucket"}

# What a dashboard must show, as (metric, a word of the panel title).
REQUIRED = [
    ("bg_remover_requests_total", "request rate"),
    ("bg_remover_request_duration_seconds_bucket", "latency"),
    ("bg_remover_rate_limited_total", "429"),
    ("bg_remover_requests_total", "error"),
    ("bg_remover_inference_batch_size_bucket", "batch size"),
    ("bentoml_service_adaptive_batch_size_bucket", "batch size"),
    ("bg_remover_output_bytes_sum", "output bytes"),
    ("bg_remover_compression_ratio_bucket", "compression ratio"),
    ("bg_remover_cache_requests_total", "hit ratio"),
]

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a small tokenizer, not a parser)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    # label lists of by/without/on/ignoring/group_left/group_right
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    text = re.sub(r"\b\d[\w.]*", " ", text)  # numbers and durations (0.95, 1e-9, 5m)
    names = set()
    for match in IDENT.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("("):  # a function call
            continue
        if word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


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
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in KNOWN_METRICS}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert shown == families, f"metrics never shown: {families - shown}"


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

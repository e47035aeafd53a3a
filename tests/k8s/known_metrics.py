"""Which metric names a query may use: what the service exports (read from
operations/metrics.py, and checked against a real `/metrics` by tests/e2e/test_saturation.py),
BentoML's own, and what a Kubernetes cluster's monitoring stack provides (cAdvisor through the
kubelet, kube-state-metrics: both part of kube-prometheus-stack)."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

from operations import metrics

SUFFIXES = {Counter: ("_total",), Histogram: ("_bucket", "_sum", "_count"), Gauge: ("",)}


def service_metrics() -> set[str]:
    """Every series name the service's own metrics export."""
    return {
        metric._name + suffix
        for metric in vars(metrics).values()
        if isinstance(metric, (Counter, Histogram, Gauge))
        for suffix in SUFFIXES[type(metric)]
    }


def family(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


BENTOML_METRICS = {"bentoml_service_adaptive_batch_size_bucket"}
KUBERNETES_METRICS = {
    # cAdvisor
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_memory_working_set_bytes",
    # kube-state-metrics
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_last_terminated_reason",
    "kube_horizontalpodautoscaler_spec_max_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
}

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

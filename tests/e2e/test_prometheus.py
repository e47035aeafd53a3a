"""The autoscaler's and the alerts' exact PromQL on a real Prometheus scraping a real service.

Prometheus (Debian's package) scrapes a real `bentoml serve` every second with the labels
Kubernetes would give its pod, and evaluates the rule file of the PrometheusRule the prod overlay
renders. Under a short load that saturates the service (MAX_CONCURRENCY=2, six clients) the
autoscaler's signal — prometheus-adapter's rule and KEDA's query, as written in the repository —
rises, and falls once the load stops; the alerts on shed load and errors go pending, and the
Redis alert once its Redis is killed. Every other alert's expression is evaluated too: the ones on
the cluster's own metrics (kube-state-metrics) find nothing here, and say so; promtool's unit
tests make each of them fire (tests/k8s/test_alerts.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from operations.metrics import REQUESTS_IN_FLIGHT
from tests.e2e.prometheus import Prometheus, Target
from tests.e2e.server import BentoServer
from tests.e2e.test_saturation import Load
from tests.k8s.known_metrics import KUBERNETES_METRICS, metric_names
from tests.k8s.test_alerts import rule_file
from tests.k8s.test_fleet import adapter_rule
from tests.k8s.test_manifests import api_deployment, one, render
from tests.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.slow

IN_FLIGHT = REQUESTS_IN_FLIGHT._name
POD = "bg-remover-0"
RISEN = 1.0  # in flight per pod, averaged over a minute: the load holds 2
DEADLINE_S = 180
LOADED_ALERTS = {"BgRemoverShedding", "BgRemoverErrorRatioHigh"}


def namespace() -> str:
    return api_deployment(render("prod"))["metadata"]["namespace"]


def autoscaler_queries() -> dict[str, str]:
    """The PromQL each autoscaler evaluates for this pod: prometheus-adapter's rule with the
    matchers it fills in for an HPA of this namespace, and KEDA's query as written."""
    template = adapter_rule()["metricsQuery"]
    adapter = (
        template.replace("<<.Series>>", IN_FLIGHT)
        .replace("<<.LabelMatchers>>", f'namespace="{namespace()}",pod=~"{POD}"')
        .replace("<<.GroupBy>>", "pod")
    )
    scaled = one(render("keda"), "ScaledObject", "bg-remover")
    (keda,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    return {"adapter": adapter, "keda": keda["metadata"]["query"]}


def rules() -> dict[str, str]:
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in rule_file()["groups"]
        for rule in group["rules"]
    }


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def server(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    env = {"REDIS_URL": redis.url, "MAX_CONCURRENCY": "2"}
    with BentoServer(tmp_path_factory.mktemp("served"), env=env) as served:
        yield served


@pytest.fixture(scope="module")
def prometheus(
    server: BentoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    labels = {"namespace": namespace(), "pod": POD, "container": "bg-remover"}
    target = Target(f"127.0.0.1:{server.port}", labels)
    with Prometheus(tmp_path_factory.mktemp("prometheus"), [target], rule_file()) as running:
        yield running


def until(what: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE_S} s"
        time.sleep(0.5)


@dataclass
class Scenario:
    """What Prometheus showed while the service was loaded, then idle, then without Redis."""

    baseline: float = 0.0
    peak: float = 0.0
    after: float | None = None
    same_instant: tuple[float | None, float | None] = (None, None)
    alerts: set[tuple[str, str]] = field(default_factory=set)  # (alertname, a label value)
    records: dict[str, float | None] = field(default_factory=dict)


def pending_alerts(prometheus: Prometheus) -> set[tuple[str, str]]:
    found = prometheus.query('ALERTS{alertname=~"BgRemover.*"}')
    return {
        (s["metric"]["alertname"], s["metric"].get("reason") or s["metric"].get("role", ""))
        for s in found
    }


@pytest.fixture(scope="module")
def scenario(server: BentoServer, redis: RedisServer, prometheus: Prometheus) -> Scenario:
    queries, seen = autoscaler_queries(), Scenario()
    until("the service scraped", lambda: prometheus.value(f"up{{pod='{POD}'}}") == 1)
    until("the signal", lambda: prometheus.value(queries["adapter"]) is not None)
    seen.baseline = prometheus.value(queries["adapter"]) or 0.0

    def loaded() -> bool:
        seen.peak = max(seen.peak, prometheus.value(queries["adapter"]) or 0.0)
        seen.alerts |= pending_alerts(prometheus)
        fired = {name for name, _ in seen.alerts}
        return seen.peak >= RISEN and fired >= LOADED_ALERTS

    with Load(server.url):
        until("the signal risen and the load alerts pending", loaded)
        instant = time.time() - 1
        seen.same_instant = (
            prometheus.value(queries["adapter"], at=instant),
            prometheus.value(queries["keda"], at=instant),
        )
        seen.records = {name: prometheus.value(f"sum({name})") for name in rules() if ":" in name}

    def fallen() -> bool:
        seen.after = prometheus.value(queries["adapter"])
        return seen.after is not None and seen.after < seen.peak / 2

    until("the signal fallen", fallen)
    redis.stop()
    redis_down = {("BgRemoverRedisDown", "limits"), ("BgRemoverRedisDown", "cache")}

    def redis_alerts() -> bool:
        seen.alerts |= pending_alerts(prometheus)
        return seen.alerts >= redis_down

    until("the Redis alert pending for both roles", redis_alerts)
    return seen


def test_prometheus_evaluates_every_rule_of_the_prod_overlay(prometheus: Prometheus) -> None:
    def evaluated() -> bool:
        loaded = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return len(loaded) == len(rules()) and all(r["health"] == "ok" for r in loaded)

    until("every rule evaluated", evaluated)
    loaded = {r["name"] for g in prometheus.api("rules")["groups"] for r in g["rules"]}
    assert loaded == set(rules())


def test_the_autoscalers_signal_rises_under_load_and_falls_after(scenario: Scenario) -> None:
    assert scenario.baseline < RISEN <= scenario.peak
    assert scenario.after is not None and scenario.after < scenario.peak / 2


def test_keda_and_the_adapter_see_the_same_signal(scenario: Scenario) -> None:
    adapter, keda = scenario.same_instant
    assert adapter is not None and adapter > 0
    assert keda == pytest.approx(adapter)  # one pod: the fleet's sum is this pod's value


def test_the_alerts_on_load_and_on_redis_go_pending(scenario: Scenario) -> None:
    assert ("BgRemoverShedding", "overloaded") in scenario.alerts
    assert ("BgRemoverErrorRatioHigh", "") in scenario.alerts
    assert {("BgRemoverRedisDown", "limits"), ("BgRemoverRedisDown", "cache")} <= scenario.alerts


def test_every_recording_rule_has_a_value_under_load(scenario: Scenario) -> None:
    assert scenario.records and all(v is not None for v in scenario.records.values())
    p95 = scenario.records["bg_remover:request_duration_seconds:p95_5m"]
    assert p95 is not None and 0 < p95 < 256


def test_every_alert_expression_evaluates(scenario: Scenario, prometheus: Prometheus) -> None:
    fired = {name for name, _ in scenario.alerts}
    for name, expr in rules().items():
        if ":" in name:
            continue
        answer = prometheus.query(expr)  # a broken expression fails here
        reads = metric_names(expr)
        if reads <= KUBERNETES_METRICS:
            # The cluster's metrics do not exist here: such an alert stays silent, not broken.
            assert answer == [] and name not in fired
            for metric in reads:
                assert prometheus.query(f"count({metric})") == []
        elif name not in fired:
            assert name == "BgRemoverLatencyHigh"  # p95 stayed under the 4 s objective
            assert answer == []


def test_no_rule_failed_to_evaluate(scenario: Scenario, prometheus: Prometheus) -> None:
    assert scenario.peak  # after the whole scenario
    log = prometheus.log()
    assert "Evaluating rule failed" not in log and "level=error" not in log, log

"""The fleet around the service: every public route through the proxies in front, autoscaling
on load (prometheus-adapter and KEDA agreeing with the HPA), the alert rules' metrics and
runbook, and the model pool apart. Rendered manifests come from test_manifests.py; the rules run
in promtool (test_alerts.py) and on a real Prometheus (tests/e2e/test_prometheus.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from contract import routes
from gateway.api import create_api
from gateway.routes import router
from operations.metrics import REQUESTS_IN_FLIGHT
from tests.k8s.known_metrics import KUBERNETES_METRICS, metric_names, service_metrics
from tests.k8s.test_manifests import (
    PROD_LIKE,
    ROOT,
    api_config,
    api_container,
    api_deployment,
    by_kind,
    contract_paths,
    internal_paths,
    one,
    public_paths,
    render,
    selects,
)

NGINX_CONF = ROOT / "deploy" / "compose" / "nginx.conf"
ADAPTER = ROOT / "monitoring" / "prometheus-adapter.yaml"
K8S_README = ROOT / "k8s" / "README.md"
IN_FLIGHT = REQUESTS_IN_FLIGHT._name
LOCATION = re.compile(r"location\s+(=|~\*?|\^~)?\s*(\S+)\s*\{([^}]*)\}")


# --------------------------------------------------------------------------- routes


def test_the_public_routes_are_every_route_of_the_contract() -> None:
    assert set(routes.PUBLIC) == public_paths()
    assert not set(routes.PUBLIC) & internal_paths()


def test_every_route_the_app_serves_is_in_the_contract() -> None:
    """So a route added to the app without contract/routes.py fails here, and one added there
    fails the proxies' tests until they route it."""
    mounted = {route.path for route in create_api().routes if hasattr(route, "path")}
    served = mounted | {route.path for route in router.routes}
    assert routes.REMOVE in served and routes.PLAYGROUND in served  # the walk sees them
    assert served - contract_paths() == set()


def nginx_location(path: str, text: str) -> str:
    """The body of the `location` block nginx picks for `path` (its documented order: exact,
    then the longest prefix unless regexes match first in file order)."""
    blocks = [(kind or "", where, body) for kind, where, body in LOCATION.findall(text)]
    for kind, where, body in blocks:
        if kind == "=" and where == path:
            return body
    prefixes = [(where, kind, body) for kind, where, body in blocks if kind in ("", "^~")]
    longest = max((b for b in prefixes if path.startswith(b[0])), default=None, key=len)
    if longest is not None and longest[1] == "^~":
        return longest[2]
    for kind, where, body in blocks:
        flags = re.IGNORECASE if kind == "~*" else 0
        if kind.startswith("~") and re.search(where, path, flags):
            return body
    assert longest is not None, f"no location for {path}"
    return longest[2]


def test_compose_nginx_routes_every_public_route_and_nothing_internal() -> None:
    text = re.sub(r"#.*", "", NGINX_CONF.read_text())
    for path in public_paths() | {f"{prefix}x.js" for prefix in routes.PUBLIC_PREFIXES}:
        assert "proxy_pass" in nginx_location(path, text), f"nginx does not route {path}"
    assert "return 404" in nginx_location(routes.METRICS, text)


# --------------------------------------------------------------------------- autoscaling


def adapter_rule() -> dict[str, Any]:
    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]
    return rule


def test_the_adapter_serves_the_hpas_metric_from_the_services_gauge() -> None:
    rule = adapter_rule()
    hpa = one(render("prod"), "HorizontalPodAutoscaler", "bg-remover")
    (pods,) = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert rule["name"]["as"] == pods["metric"]["name"] == IN_FLIGHT
    assert metric_names(rule["seriesQuery"]) == {IN_FLIGHT} and IN_FLIGHT in service_metrics()
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert (
        "<<.LabelMatchers>>" in rule["metricsQuery"] and "by (<<.GroupBy>>)" in rule["metricsQuery"]
    )


def test_keda_scales_like_the_prod_hpa() -> None:
    hpa = one(render("prod"), "HorizontalPodAutoscaler", "bg-remover")["spec"]
    scaled = one(render("keda"), "ScaledObject", "bg-remover")["spec"]
    assert scaled["scaleTargetRef"]["name"] == hpa["scaleTargetRef"]["name"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        hpa["minReplicas"],
        hpa["maxReplicas"],
    )
    assert scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["behavior"]
    triggers = {trigger["type"]: trigger for trigger in scaled["triggers"]}
    metrics = {metric["type"]: metric for metric in hpa["metrics"]}
    prometheus = triggers["prometheus"]
    assert prometheus["metricType"] == "AverageValue"  # per pod, as the Pods metric
    assert prometheus["metadata"]["threshold"] == metrics["Pods"]["pods"]["target"]["averageValue"]
    assert metric_names(prometheus["metadata"]["query"]) == {IN_FLIGHT}
    namespace = one(render("keda"), "Deployment", "bg-remover")["metadata"]["namespace"]
    assert f'namespace="{namespace}"' in prometheus["metadata"]["query"]
    cpu = metrics["Resource"]["resource"]["target"]["averageUtilization"]
    assert triggers["cpu"]["metadata"]["value"] == str(cpu)
    assert scaled["fallback"]["replicas"] >= hpa["minReplicas"]


# --------------------------------------------------------------------------- alerts


def rules_of(target: str) -> dict[str, dict[str, Any]]:
    (rule,) = by_kind(render(target), "PrometheusRule")
    found = {}
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            found[item.get("alert") or item["record"]] = item
    return found


ALERTS = {
    "BgRemoverErrorRatioHigh": "bg_remover_requests_total",
    "BgRemoverLatencyHigh": "bg_remover_request_duration_seconds_bucket",
    "BgRemoverShedding": "bg_remover_shed_total",
    "BgRemoverRedisDown": "bg_remover_redis_up",
    "BgRemoverOOMKilled": "kube_pod_container_status_last_terminated_reason",
    "BgRemoverRestarting": "kube_pod_container_status_restarts_total",
    "BgRemoverAtMaxReplicas": "kube_horizontalpodautoscaler_spec_max_replicas",
}


def resolved_metrics(expr: str, rules: dict[str, dict[str, Any]]) -> set[str]:
    """The metrics an expression reads, through the recording rules it uses."""
    names = set()
    for name in metric_names(expr):
        names |= resolved_metrics(rules[name]["expr"], rules) if name in rules else {name}
    return names


@pytest.mark.parametrize("target", PROD_LIKE)
def test_prod_alerts_on_each_saturation_and_service_level_signal(target: str) -> None:
    rules = rules_of(target)
    alerts = {name: rule for name, rule in rules.items() if "alert" in rule}
    assert set(alerts) == set(ALERTS)
    for name, metric in ALERTS.items():
        assert metric in resolved_metrics(alerts[name]["expr"], rules), name


@pytest.mark.parametrize("target", PROD_LIKE)
def test_rules_read_only_metrics_that_exist(target: str) -> None:
    rules = rules_of(target)
    for name, rule in rules.items():
        unknown = resolved_metrics(rule["expr"], rules) - service_metrics() - KUBERNETES_METRICS
        assert not unknown, f"{name} reads {unknown}"


def readme_anchors() -> set[str]:
    """GitHub's anchors of the headings of k8s/README.md."""
    headings = re.findall(r"^#+ (.+)$", K8S_README.read_text(), re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings
    }


def test_every_alert_has_a_severity_summary_and_runbook_section() -> None:
    anchors = readme_anchors()
    for name, rule in rules_of("prod").items():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        page, anchor = rule["annotations"]["runbook_url"].split("#")
        assert page == "k8s/README.md" and anchor == name.lower(), name
        assert anchor in anchors, f"k8s/README.md has no section for {name}"


# --------------------------------------------------------------------------- model pool


def model_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", "bg-remover-model")


def test_the_model_pool_serves_the_model_service_alone() -> None:
    docs = render("model-pool")
    (container,) = model_deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["start-http-server", "--service-name", "segmenter"]
    assert container["image"] == api_container(docs)["image"]  # one image, two roles
    assert container["envFrom"] == api_container(docs)["envFrom"]


def test_the_api_reaches_the_pool_through_its_service() -> None:
    docs = render("model-pool")
    env = {e["name"]: e.get("value") for e in api_container(docs)["env"]}
    name, url = env["BENTOML_SERVE_DEPENDS"].split("=", 1)
    assert name == "segmenter"
    host = re.fullmatch(r"http://([a-z0-9-]+)(?::(\d+))?", url)
    assert host, url
    service = one(docs, "Service", host.group(1))
    (port,) = service["spec"]["ports"]
    assert port["port"] == int(host.group(2) or 80) and port["targetPort"] == "http"
    model_pods = model_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    api_pods = api_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], model_pods)
    assert not selects(service["spec"]["selector"], api_pods)
    api_service = one(docs, "Service", "bg-remover")
    assert not selects(api_service["spec"]["selector"], model_pods)
    assert float(api_config(docs)["MODEL_CONNECTION_MAX_AGE_S"]) > 0


def test_the_pool_scales_and_drains_apart_and_admits_only_the_api() -> None:
    docs = render("model-pool")
    model_pods = model_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    api_pods = api_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    hpa = one(docs, "HorizontalPodAutoscaler", "bg-remover-model")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "bg-remover-model"
    pdb = one(docs, "PodDisruptionBudget", "bg-remover-model")
    assert selects(pdb["spec"]["selector"]["matchLabels"], model_pods)
    assert pdb["spec"]["maxUnavailable"] == 1
    policy = one(docs, "NetworkPolicy", "bg-remover-model")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], model_pods)
    peers = policy["spec"]["ingress"][0]["from"]
    pod_peers = [peer["podSelector"]["matchLabels"] for peer in peers if "podSelector" in peer]
    assert pod_peers and all(selects(peer, api_pods) for peer in pod_peers)
    # Scraped through the ServiceMonitor like the API, not twice.
    monitor = one(docs, "ServiceMonitor", "bg-remover")
    model_service = one(docs, "Service", "bg-remover-model")
    assert selects(monitor["spec"]["selector"]["matchLabels"], model_service["metadata"]["labels"])
    annotations = model_deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "false"


def test_one_pod_is_still_the_default() -> None:
    for target in ("base", "dev", "prod", "keda"):
        assert not [d for d in render(target) if d["metadata"]["name"] == "bg-remover-model"]

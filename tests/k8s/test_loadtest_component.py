"""k8s/components/loadtest: the locust master and workers, and the load-test identity of the API
pods, as rendered on top of the base (tests/k8s/test_manifests.py schema- and policy-checks
the same rendering: checkov holds the Jobs to the same lockdown as every pod)."""

from __future__ import annotations

from typing import Any

from loadtests.plans import Schedule
from tests.k8s.test_manifests import COMPONENTS_TARGET, api_config, api_container, one, render


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def test_the_locust_jobs_are_configured_by_their_configmap() -> None:
    docs = render(COMPONENTS_TARGET)
    for name in ("bg-remover-loadtest-master", "bg-remover-loadtest-workers"):
        (container,) = pod(one(docs, "Job", name))["containers"]
        (source,) = container["envFrom"]
        config = one(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
        assert Schedule(config["LOADTEST_RATE"]).end > 0  # a schedule the locustfile accepts
        assert config["LOCUST_HOST"] == "http://bg-remover:3000"


def test_the_workers_reach_the_master_and_are_as_many_as_it_expects() -> None:
    docs = render(COMPONENTS_TARGET)
    master = one(docs, "Job", "bg-remover-loadtest-master")
    workers = one(docs, "Job", "bg-remover-loadtest-workers")
    args = pod(master)["containers"][0]["args"]
    assert "--headless" in args and "--master" in args
    assert int(args[args.index("--expect-workers") + 1]) == workers["spec"]["parallelism"]
    worker_args = pod(workers)["containers"][0]["args"]
    service = one(docs, "Service", worker_args[worker_args.index("--master-host") + 1])
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()  # the Service selects the master
    assert master["spec"]["backoffLimit"] == 0  # the exit code is the verdict: never rerun


def test_the_load_test_key_reaches_the_api_and_the_workers_from_one_secret() -> None:
    docs = render(COMPONENTS_TARGET)
    api_env = {e["name"]: e for e in api_container(docs)["env"]}
    api_ref = api_env["LOADTEST_KEYS"]["valueFrom"]["secretKeyRef"]
    assert api_ref == {"name": "bg-remover-loadtest", "key": "LOADTEST_KEY", "optional": True}
    workers = one(docs, "Job", "bg-remover-loadtest-workers")
    env = {e["name"]: e for e in pod(workers)["containers"][0]["env"]}
    ref = env["LOADTEST_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (api_ref["name"], api_ref["key"])
    assert int(api_config(docs)["RATE_LIMIT_LOADTEST_PER_HOUR"]) > 0
    assert "API_KEYS" in api_env  # production keys stay as they are

"""What the service tells its operators, without a server: the pod's memory from its cgroup
files, the labels that keep probes and scrapes apart, the metric helpers. Through the HTTP API:
tests/integration/test_api_saturation.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from contract import routes
from contract.errors import SHED_REASONS, Overloaded, ServiceError, Unavailable
from gateway.observe import RequestObserver
from operations import health
from operations.metrics import report_build
from operations.resources import container_memory_working_set

MIB = 1024 * 1024


def cgroup_files(folder: Path, usage_name: str, usage: int, stat: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / usage_name).write_text(f"{usage}\n")
    (folder / "memory.stat").write_text(stat)
    return folder / usage_name


def test_working_set_is_usage_less_inactive_page_cache_v2(tmp_path: Path) -> None:
    stat = "anon 400000000\nfile 300000000\ninactive_file 100000000\nactive_file 200000000\n"
    usage = cgroup_files(tmp_path / "v2", "memory.current", 700_000_000, stat)
    assert container_memory_working_set((usage,)) == 600_000_000


def test_working_set_of_cgroup_v1(tmp_path: Path) -> None:
    stat = "cache 5\ninactive_file 7\ntotal_inactive_file 250000000\n"
    usage = cgroup_files(tmp_path / "v1", "memory.usage_in_bytes", 1_000_000_000, stat)
    missing = tmp_path / "none" / "memory.current"
    assert container_memory_working_set((missing, usage)) == 750_000_000


def test_no_cgroup_files_means_no_working_set(tmp_path: Path) -> None:
    assert container_memory_working_set((tmp_path / "memory.current",)) is None


def test_memory_check_compares_the_working_set_with_the_container_limit() -> None:
    fine = health.memory(95, limit=2048 * MIB, working_set=1024 * MIB)
    assert fine.ok
    assert fine.detail == "50% of the container's 2048 MiB used (1024 MiB; limit 95%)"
    full = health.memory(95, limit=2048 * MIB, working_set=2000 * MIB)
    assert not full.ok and full.detail.startswith("98% of the container's 2048 MiB")


def test_without_a_container_limit_the_machine_is_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "container_memory_limit", lambda: None)
    monkeypatch.setattr(health.psutil, "virtual_memory", lambda: type("M", (), {"percent": 40})())
    assert health.memory(95) == health.Check(True, "40% of the machine used (limit 95%)")
    assert not health.memory(30).ok


def test_a_container_limit_is_read_from_the_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "container_memory_limit", lambda: 1000 * MIB)
    monkeypatch.setattr(health, "container_memory_working_set", lambda: 900 * MIB)
    assert health.memory(95).detail == "90% of the container's 1000 MiB used (900 MiB; limit 95%)"


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/livez", "probe"),
        ("/readyz", "probe"),
        ("/healthz", "probe"),
        (routes.METRICS, "scrape"),
        (routes.REMOVE, routes.REMOVE),
        (routes.HEALTH, routes.HEALTH),
        ("/wp-login.php", "other"),
    ],
)
def test_probes_and_scrapes_have_labels_of_their_own(path: str, label: str) -> None:
    observer = RequestObserver(app=None, endpoints=routes.SERVICE)  # type: ignore[arg-type]
    assert observer.endpoint_of(path) == label


def test_every_shed_reason_starts_at_zero() -> None:
    RequestObserver(app=None, endpoints=routes.SERVICE)  # type: ignore[arg-type]
    for reason in SHED_REASONS:
        assert REGISTRY.get_sample_value("bg_remover_shed_total", {"reason": reason}) is not None


def test_errors_that_shed_name_their_reason() -> None:
    assert Overloaded("full").shed_reason == "overloaded"
    assert Overloaded("no room", shed_reason="memory").shed_reason == "memory"
    assert Unavailable("gone").shed_reason == "unavailable"
    assert ServiceError("bug").shed_reason is None
    assert Overloaded("x").shed_reason == "overloaded"  # an instance's reason stays its own


def test_build_info_is_one_with_labels() -> None:
    report_build("abc123", "u2netp", "1.4.40", "3.11.7")
    labels = {"version": "abc123", "model": "u2netp", "bentoml": "1.4.40", "python": "3.11.7"}
    assert REGISTRY.get_sample_value("bg_remover_build_info", labels) == 1

"""The alert rules under promtool: the rule file is the `spec` of the PrometheusRule the prod
overlay renders (one source), checked with `promtool check rules` and unit-tested with
`promtool test rules` on tests/k8s/alerts-test.yaml, which must make every alert fire and stay
quiet. Debian's `prometheus` package brings promtool (scripts/install-system-deps.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.test_manifests import by_kind, render

CASES = Path(__file__).with_name("alerts-test.yaml")


def rule_file(target: str = "prod") -> dict[str, Any]:
    (rule,) = by_kind(render(target), "PrometheusRule")
    return rule["spec"]


def alert_names() -> set[str]:
    return {r["alert"] for g in rule_file()["groups"] for r in g["rules"] if "alert" in r}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is missing: apt-get install prometheus (scripts/install-system-deps.sh)"
        )
    return found


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_file()))
    shutil.copy(CASES, tmp_path / CASES.name)
    return tmp_path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rendered_rules(rules_dir: Path) -> None:
    checked = run("check", "rules", "rules.yml", cwd=rules_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    count = sum(len(group["rules"]) for group in rule_file()["groups"])
    assert f"SUCCESS: {count} rules found" in checked.stdout


def test_promtool_unit_tests_pass(rules_dir: Path) -> None:
    tested = run("test", "rules", CASES.name, cwd=rules_dir)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_can_fail(rules_dir: Path) -> None:
    """A threshold moved in the rules must break the cases (they observe the rules)."""
    spec = rule_file()
    for group in spec["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "BgRemoverErrorRatioHigh":
                rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    (rules_dir / "rules.yml").write_text(yaml.safe_dump(spec))
    tested = run("test", "rules", CASES.name, cwd=rules_dir)
    assert tested.returncode != 0 and "BgRemoverErrorRatioHigh" in tested.stdout + tested.stderr


def test_every_alert_fires_in_a_case_and_stays_quiet_in_another() -> None:
    cases = yaml.safe_load(CASES.read_text())
    assert cases["rule_files"] == ["rules.yml"]
    fired, quiet = set(), set()
    for case in cases["tests"]:
        for expectation in case["alert_rule_test"]:
            (fired if expectation["exp_alerts"] else quiet).add(expectation["alertname"])
    assert fired == alert_names()
    assert quiet == alert_names()


def test_the_keda_and_model_pool_variants_carry_the_same_rules() -> None:
    for target in ("keda", "model-pool"):
        assert rule_file(target) == rule_file()

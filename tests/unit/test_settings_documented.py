"""One source for the settings: `settings.Settings`. The README's configuration table, the
Bento's environment, the Kubernetes ConfigMap and its overlays may only name settings that
exist, and the README must document every one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.model_fields}
# Read by BentoML, uvicorn, numba or the XDG cache users, not by settings.py.
RUNTIME_VARIABLES = {
    "BENTOML_DO_NOT_TRACK",
    "BENTOML_HOME",
    "FORWARDED_ALLOW_IPS",
    "NUMBA_CACHE_DIR",
    "XDG_CACHE_HOME",
}
NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def readme_configuration_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in NAME.findall(row.split("|")[1])}


def config_env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def overlay_literals() -> dict[str, str]:
    literals = {}
    for kustomization in ROOT.glob("k8s/overlays/*/kustomization.yaml"):
        for generator in yaml.safe_load(kustomization.read_text()).get("configMapGenerator", []):
            literals.update(item.split("=", 1) for item in generator.get("literals", []))
    return literals


def bentofile_envs() -> dict[str, str | None]:
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    return {env["name"]: env.get("value") for env in bentofile.get("envs", [])}


def test_the_readme_documents_every_setting_and_nothing_else() -> None:
    documented = readme_configuration_names()
    assert SETTINGS - documented == set(), "settings missing from the README's table"
    assert documented - SETTINGS == set(), "the README documents settings that do not exist"


@pytest.mark.parametrize("source", ["config.env", "overlays", "bentofile"])
def test_deployments_name_only_real_settings(source: str) -> None:
    names = {
        "config.env": lambda: config_env(ROOT / "k8s/base/config.env").keys(),
        "overlays": lambda: overlay_literals().keys(),
        "bentofile": lambda: bentofile_envs().keys(),
    }[source]()
    assert names, f"nothing read from {source}"
    assert set(names) - SETTINGS - RUNTIME_VARIABLES == set()


def test_the_kubernetes_values_are_valid_settings() -> None:
    values = {**config_env(ROOT / "k8s/base/config.env"), **overlay_literals()}
    given = {name.lower(): value for name, value in values.items() if name in SETTINGS}
    Settings(_env_file=None, **given)  # type: ignore[call-arg]  # raises on an invalid value

"""The dependency rules of the code base, read from the source with `ast`.

Packages depend on each other only along the edges below (an acyclic graph, checked too); only
the HTTP edge (`gateway/`) and the BentoML wiring (`service.py`, `import_model.py`) may import
a web framework or BentoML; the model code works on arrays and imports no image library.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Project module -> the project modules it may import.
ALLOWED = {
    "contract": set(),
    "redisroles": set(),
    "cache": {"redisroles"},
    "segmentation": set(),
    "ratelimit": {"redisroles"},
    "operations": set(),
    "optimizer": {"contract"},
    "settings": {"ratelimit"},
    "application": {
        "cache",
        "contract",
        "operations",
        "optimizer",
        "ratelimit",
        "redisroles",
        "segmentation",
        "settings",
    },
    "gateway": {
        "application",
        "contract",
        "operations",
        "optimizer",
        "ratelimit",
        "segmentation",
        "settings",
    },
    "service": {
        "application",
        "contract",
        "gateway",
        "operations",
        "ratelimit",
        "segmentation",
        "settings",
    },
    "import_model": {"segmentation", "settings"},
}
WEB_FRAMEWORKS = {"bentoml", "fastapi", "starlette", "uvicorn", "_bentoml_impl", "_bentoml_sdk"}
EDGE = {"gateway", "service", "import_model"}
IMAGE_LIBRARIES = {"PIL", "cv2", "skimage"}


def sources(module: str) -> list[Path]:
    package = ROOT / module
    return sorted(package.glob("*.py")) if package.is_dir() else [ROOT / f"{module}.py"]


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every absolute import in one file (relative ones stay inside)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def imports_of(module: str) -> set[str]:
    return set().union(*(imported_roots(path) for path in sources(module)))


def test_every_module_is_in_the_table() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    served = packages - {"tests", "bench", "loadtests", "bg_remover_client"}
    assert served | {"settings", "service", "import_model"} == ALLOWED.keys()


def test_the_allowed_graph_has_no_cycle() -> None:
    try:
        tuple(TopologicalSorter(ALLOWED).static_order())
    except CycleError as cycle:  # pragma: no cover - the failure message is the point
        pytest.fail(f"dependency cycle in the table: {cycle.args[1]}")


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_follow_the_table(module: str) -> None:
    ours = imports_of(module) & ALLOWED.keys() - {module}
    assert ours <= ALLOWED[module], f"{module} imports {sorted(ours - ALLOWED[module])}"


@pytest.mark.parametrize("module", sorted(ALLOWED.keys() - EDGE))
def test_only_the_edge_imports_a_web_framework(module: str) -> None:
    assert not imports_of(module) & WEB_FRAMEWORKS


def test_the_model_code_works_on_arrays_only() -> None:
    assert not imports_of("segmentation") & IMAGE_LIBRARIES


def test_the_checker_sees_real_imports() -> None:
    """The walk must find what is plainly there, or every rule above passes vacuously."""
    assert {"bentoml", "application", "gateway"} <= imports_of("service")
    assert "onnxruntime" in imports_of("segmentation")


def test_the_bento_ships_every_module_the_service_imports() -> None:
    include = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    shipped = {pattern.strip("/").split("/")[0].removesuffix(".py") for pattern in include}
    assert ALLOWED.keys() - {"import_model"} <= shipped

"""The dependency rules of the code base, read from the source with `ast`.

The graph is the README's: its Architecture section lists, in a `text` block of lines
`part, part → part, part` (or `→ nothing`; a line without an arrow goes on with the one
before), all that each part imports of the project. The
code must import exactly that, edge for edge, and the graph must be acyclic. Only the HTTP edge
(`gateway/`) and the BentoML wiring (`service.py`, `import_model.py`) may import a web framework
or BentoML; the model code works on arrays and imports no image library.
"""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARROW = " → "
NOTHING = "nothing"


def readme_graph(readme: str) -> dict[str, set[str]]:
    """Part -> the parts it imports, from the dependency lines of the Architecture section."""
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```text\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    lines: list[str] = []
    for line in (line for block in blocks for line in block.splitlines() if line.strip()):
        if ARROW in line or not lines:
            lines.append(line)
        else:  # a wrapped line goes on with the parts imported
            lines[-1] += " " + line.strip()
    graph: dict[str, set[str]] = {}
    for line in lines:
        left, right = line.split(ARROW)
        imported = set() if right.strip() == NOTHING else set(_names(right))
        for part in _names(left):
            assert part not in graph, f"{part} has two lines in the README's graph"
            graph[part] = imported
    return graph


def _names(text: str) -> list[str]:
    return [name.strip().removesuffix(".py") for name in text.split(",")]


# Project module -> the project modules it imports, as the README states it.
ALLOWED = readme_graph((ROOT / "README.md").read_text())
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


def test_every_module_is_in_the_graph() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    served = packages - {"tests", "bench", "loadtests", "bg_remover_client"}
    assert served | {"settings", "service", "import_model"} == ALLOWED.keys()


def test_the_graph_names_only_its_parts() -> None:
    assert set().union(*ALLOWED.values()) <= ALLOWED.keys()


def test_the_graph_has_no_cycle() -> None:
    try:
        tuple(TopologicalSorter(ALLOWED).static_order())
    except CycleError as cycle:  # pragma: no cover - the failure message is the point
        pytest.fail(f"dependency cycle in the README's graph: {cycle.args[1]}")


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_imports_are_the_graphs_edges(module: str) -> None:
    ours = imports_of(module) & ALLOWED.keys() - {module}
    assert ours <= ALLOWED[module], f"{module} imports {sorted(ours - ALLOWED[module])}"
    assert ours >= ALLOWED[module], (
        f"the README says {module} imports {sorted(ALLOWED[module] - ours)}"
    )


def test_the_graph_is_read_from_the_lines_of_the_block() -> None:
    """The reader itself, on a block of its own: several parts on one line, a wrapped line,
    `.py` dropped, `nothing`, and arrows outside the block ignored."""
    readme = (
        "# x\n\n## Architecture\n\n`a` → `b` in prose\n\n```text\n"
        "a.py   → b,\n         c\nb, c → nothing\n```\n\n## Next\n\n```text\nd → a\n```\n"
    )
    assert readme_graph(readme) == {"a": {"b", "c"}, "b": set(), "c": set()}


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

"""tasks/ is pure logic: it never imports prefect, mlflow, dvc, great_expectations or flows; flows/ only wire:
they hold no array arithmetic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_TASKS = {"prefect", "mlflow", "dvc", "flows", "great_expectations"}


def _imports(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(), filename=str(file))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("file", sorted((REPO / "tasks").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_tasks_import_no_orchestration(file: Path) -> None:
    bad = _imports(file) & FORBIDDEN_IN_TASKS
    assert not bad, f"{file.relative_to(REPO)} imports {sorted(bad)}: tasks/ must stay pure"


def test_only_tracking_imports_mlflow() -> None:
    offenders = [f.name for f in (REPO / "flows").rglob("*.py") if "mlflow" in _imports(f) and f.name != "tracking.py"]
    assert offenders == []


# flows/ wire (read params, map tasks, write outputs, log): array arithmetic is stage logic and lives in tasks/.
# A flow imports no array-math library; numpy only where named here, and then only these attributes.
ARRAY_LIBRARIES = {"numpy", "scipy", "sklearn", "skimage"}
NUMPY_IN_FLOWS: dict[str, set[str]] = {
    # image files ↔ arrays, numpy scalars → JSON: the file boundary (flows/io.py is H6's; types, no arithmetic)
    "flows/io.py": {"ndarray", "integer", "floating", "int64"},
    # the all-zeros input example MLflow infers a logged model's signature from (no data, no arithmetic)
    "flows/tracking.py": {"zeros", "float32"},
}


def _array_uses(file: Path) -> tuple[set[str], set[str]]:
    """(array libraries `file` imports, the numpy attributes it uses: `np.X` and `from numpy[.y] import X`)."""
    tree = ast.parse(file.read_text(), filename=str(file))
    libraries, aliases, attrs = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                libraries.add(a.name.split(".")[0])
                if a.name.split(".")[0] == "numpy":
                    aliases.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            libraries.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "numpy":
                attrs |= {a.name for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            attrs.add(node.attr)
    return libraries & ARRAY_LIBRARIES, attrs


@pytest.mark.parametrize("file", sorted((REPO / "flows").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_flows_hold_no_array_arithmetic(file: Path) -> None:
    rel = str(file.relative_to(REPO))
    libraries, attrs = _array_uses(file)
    allowed = NUMPY_IN_FLOWS.get(rel)
    assert libraries <= ({"numpy"} if allowed is not None else set()), (
        f"{rel} imports {sorted(libraries)}: array arithmetic is stage logic, move it to a tasks/ module")
    assert attrs <= (allowed or set()), f"{rel} uses numpy's {sorted(attrs - (allowed or set()))}: move it to tasks/"


def test_the_array_checker_catches_arithmetic(tmp_path: Path) -> None:
    f = tmp_path / "flow.py"
    f.write_text("import numpy as np\nfrom numpy.linalg import norm\n\ndef f(a):\n"
                 "    import scipy.stats\n    return np.mean(a) + norm(a), np.ndarray\n")
    assert _array_uses(f) == ({"numpy", "scipy"}, {"mean", "ndarray", "norm"})
    f.write_text("import pandas as pd\nfrom flows import io\n")
    assert _array_uses(f) == (set(), set())


def _string_constants(file: Path) -> set[str]:
    tree = ast.parse(file.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings}


def test_only_io_names_params_yaml() -> None:
    offenders = [str(f.relative_to(REPO)) for d in ("flows", "tasks") for f in (REPO / d).rglob("*.py")
                 if any("params.yaml" in s for s in _string_constants(f)) and f.name != "io.py"]
    assert offenders == []


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("import mlflow\nfrom prefect import flow\nfrom flows.io import load_params\n")
    assert _imports(f) & FORBIDDEN_IN_TASKS == {"mlflow", "prefect", "flows"}


STAGES = sorted(p.name for p in (REPO / "tasks").iterdir() if p.is_dir() and (p / "__init__.py").exists())


def _tasks_modules(file: Path) -> set[str]:
    """Every `tasks.*` module `file` imports, at any depth (lazy imports inside functions included)."""
    tree = ast.parse(file.read_text(), filename=str(file))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("tasks.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("tasks."):
            names.add(node.module)
    return names


def stage_graph() -> dict[str, set[str]]:
    """Stage package → the other stage packages its modules import."""
    graph: dict[str, set[str]] = {s: set() for s in STAGES}
    for stage in STAGES:
        for file in (REPO / "tasks" / stage).rglob("*.py"):
            for module in _tasks_modules(file):
                other = module.split(".")[1]
                if other in graph and other != stage:
                    graph[stage].add(other)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that starts and ends on the same node, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_stage_packages_form_an_acyclic_graph() -> None:
    graph = stage_graph()
    assert set(graph) >= {"ingest", "anonymize", "check_quality", "train", "audit", "report"}
    assert _cycle(graph) is None, f"stage import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def _private_imports(file: Path) -> list[str]:
    tree = ast.parse(file.read_text(), filename=str(file))
    return [f"{node.module}.{a.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            and node.module.split(".")[0] in {"tasks", "flows", "bench", "tests"}
            for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]


@pytest.mark.parametrize("folder", ["tasks", "flows", "bench", "tests"])
def test_no_module_imports_another_modules_private_names(folder: str) -> None:
    offenders = {str(f.relative_to(REPO)): bad for f in sorted((REPO / folder).rglob("*.py"))
                 if (bad := _private_imports(f))}
    assert offenders == {}


def test_the_private_import_checker_catches_one(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("from tasks.train.dp import _logits, evaluate\nfrom __future__ import annotations\n")
    assert _private_imports(f) == ["tasks.train.dp._logits"]


@pytest.mark.parametrize("file", sorted(p for d in ("tasks", "flows", "bench") for p in (REPO / d).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_opens_with_a_docstring_line(file: Path) -> None:
    doc = ast.get_docstring(ast.parse(file.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{file.relative_to(REPO)}: no one-line docstring saying what it is for"

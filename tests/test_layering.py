"""tasks/ is pure logic: it never imports prefect, mlflow, dvc, great_expectations or flows."""

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

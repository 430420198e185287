"""params.yaml, tasks/params.py and dvc.yaml agree: every section is typed and a dependency of its stage."""

from __future__ import annotations

from pathlib import Path

import yaml

from tasks.params import STAGES, Params

REPO = Path(__file__).resolve().parents[1]


def _dvc() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_params_yaml_validates_and_has_every_section(raw_params: dict) -> None:
    Params.model_validate(raw_params)
    assert set(raw_params) == set(Params.model_fields)


def test_dvc_stages_are_the_pipeline_stages_in_order() -> None:
    assert tuple(_dvc()) == STAGES


def test_each_stage_runs_its_flow_and_depends_on_its_whole_section() -> None:
    for stage, spec in _dvc().items():
        assert spec["cmd"] == f"python -m flows.{stage}"
        assert (REPO / "flows" / f"{stage}.py").exists()
        declared = [p if isinstance(p, str) else next(iter(p)) for p in spec.get("params", [])]
        assert stage in declared, f"stage {stage} must list its whole params section"
        assert all("." not in p for p in declared), f"{stage}: list whole sections, not keys: {declared}"


def test_every_params_section_is_a_dependency_somewhere(raw_params: dict) -> None:
    used = {p if isinstance(p, str) else next(iter(p)) for s in _dvc().values() for p in s.get("params", [])}
    assert set(raw_params) - used - NOT_PIPELINE_INPUTS == set()


# Sections that configure how the DAG is run, not what it computes: a change must not rerun any stage.
NOT_PIPELINE_INPUTS = {"schedule"}  # the cron of `python -m flows.pipeline serve`


def test_stage_code_is_a_dependency_of_its_stage() -> None:
    for stage, spec in _dvc().items():
        assert f"flows/{stage}.py" in spec["deps"]
        if (REPO / "tasks" / stage).is_dir():
            assert f"tasks/{stage}" in spec["deps"]


def test_paths_are_interpolated_not_repeated(raw_params: dict) -> None:
    text = (REPO / "dvc.yaml").read_text()
    for key, value in raw_params["paths"].items():
        if key != "reports":
            assert f" {value}" not in text.replace("${paths.", " ${paths."), f"use ${{paths.{key}}} instead of {value}"


def test_shared_code_is_a_dependency_of_every_stage() -> None:
    for stage, spec in _dvc().items():
        for shared in ("flows/io.py", "flows/common.py", "tasks/params.py", "tasks/types.py", "tasks/errors.py",
                       "tasks/codec.py"):
            assert shared in spec["deps"], f"{stage} must depend on {shared}"


def test_every_flow_import_is_a_dependency() -> None:
    """A stage reruns when any code it imports from tasks/ or flows/ changes (tracking.py only logs)."""
    import ast

    for stage, spec in _dvc().items():
        tree = ast.parse((REPO / "flows" / f"{stage}.py").read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {f"flows.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "flows"
                 for a in n.names}
        for mod in mods:
            if not mod.startswith(("tasks.", "flows.")) or mod in ("flows.tracking", "flows.expectations"):
                continue
            parts = mod.split(".")
            covered = any(d == "/".join(parts[:k]) or d == "/".join(parts[:k]) + ".py"
                          for d in spec["deps"] for k in range(1, len(parts) + 1))
            assert covered, f"stage {stage} imports {mod} but does not depend on it"


def _module_file(mod: str) -> Path | None:
    path = REPO / Path(*mod.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_project_modules(file: Path) -> set[str]:
    import ast

    tree = ast.parse(file.read_text())
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
            mods |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
    return {m for m in mods if m.startswith(("tasks.", "flows.")) and _module_file(m)}


def _has_code(file: Path) -> bool:
    import ast

    body = ast.parse(file.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def _closure(stage: str) -> set[str]:
    """Every tasks/flows module the stage's flow imports, directly or through other project modules."""
    todo, seen = [f"flows.{stage}"], set()
    while todo:
        mod = todo.pop()
        if mod in seen or mod in ("flows.tracking", "flows.expectations"):
            continue
        seen.add(mod)
        file = _module_file(mod)
        assert file is not None
        todo += sorted(_imported_project_modules(file))
        parent = mod.rsplit(".", 1)[0]
        if parent not in ("tasks", "flows") and _module_file(parent):
            todo.append(parent)  # importing a.b.c runs a/b/__init__.py first
    return seen


def test_every_module_a_stage_runs_is_a_dependency() -> None:
    """Transitively: a change to any project module a stage executes reruns that stage."""
    for stage, spec in _dvc().items():
        deps = [d.split("#")[0].strip().rstrip("/") for d in spec["deps"]]
        for mod in sorted(_closure(stage)):
            file = _module_file(mod)
            assert file is not None
            if file.name == "__init__.py" and not _has_code(file):
                continue  # a package's docstring changes nothing a stage computes
            rel = str(file.relative_to(REPO))
            assert any(rel == d or rel.startswith(d + "/") for d in deps), f"stage {stage} runs {rel} but does not depend on it"

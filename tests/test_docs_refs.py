"""Code points at the docs site, not at README sections: every `docs/<page>.md#anchor` named in a docstring,
comment or params.yaml resolves, and no code names a README section (the README is a quickstart now)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from tests.test_docs import REPO, broken_links

# where docstrings and comments live; the README is a quickstart, so code names pages of docs/ instead
SOURCES = ("tasks", "flows", "bench", "params.yaml", "dvc.yaml", "Makefile")
_DOC_REF = re.compile(r"\bdocs/[\w./-]*?\.md(?:#[\w-]+)?")
_README_REF = re.compile(r"\bREADME\b(?!\.json)")  # README.json: a note the flows write, not the README


def _files(root: Path) -> list[Path]:
    """The source files of `SOURCES` under `root`: every .py file of the folders, and the named files."""
    out: list[Path] = []
    for name in SOURCES:
        path = root / name
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else [])
    return out


def doc_refs(root: Path) -> dict[str, list[str]]:
    """Every `docs/....md[#anchor]` reference in the sources under `root`, by the file:line that names it."""
    refs: dict[str, list[str]] = {}
    for file in _files(root):
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            for ref in _DOC_REF.findall(line):
                refs.setdefault(ref, []).append(f"{file.relative_to(root)}:{n}")
    return refs


def broken_doc_refs(root: Path, tmp: Path) -> list[str]:
    """The references of `doc_refs` whose page or heading (MkDocs' own slug) does not exist, one line each."""
    refs = doc_refs(root)
    page = tmp / "refs.md"  # one link per reference, checked by the docs' own link checker
    page.write_text(
        "".join(f"[{i}]({(root / ref).as_posix()})\n" for i, ref in enumerate(refs)), encoding="utf-8"
    )
    problems = broken_links(page, root=None, slug=lambda text: slugify(text, "-"))
    return [
        f"{p.split(': ', 1)[1]} named in {', '.join(where)}"
        for p in problems
        for ref, where in refs.items()
        if (root / ref).as_posix() in p
    ]


def readme_refs(root: Path) -> list[str]:
    """file:line of every README reference in the sources under `root`."""
    return [
        f"{file.relative_to(root)}:{n}: {line.strip()}"
        for file in _files(root)
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1)
        if _README_REF.search(line)
    ]


def test_every_docs_page_and_anchor_named_in_the_code_exists(tmp_path: Path) -> None:
    assert doc_refs(REPO), "no docs/ reference found: the scan is broken"
    assert broken_doc_refs(REPO, tmp_path) == []


def test_no_code_names_a_readme_section() -> None:
    assert readme_refs(REPO) == []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A two-file project: one docs page with one heading, one module naming it."""
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "benchmarks.md").write_text(
        "# Benchmarks\n\n## The presets (`fast`)\n", encoding="utf-8"
    )
    (root / "tasks").mkdir()
    return root


@pytest.mark.parametrize(
    ("comment", "broken"),
    [
        ("# numbers: docs/benchmarks.md#the-presets-fast", []),
        ("# numbers: docs/benchmarks.md", []),
        ("# numbers: docs/benchmarks.md#nope", ["#nope"]),
        ("# numbers: docs/bench.md#the-presets-fast", ["bench.md"]),
    ],
)
def test_the_reference_checker_finds_a_missing_page_or_heading(
    project: Path, tmp_path: Path, comment: str, broken: list[str]
) -> None:
    (project / "tasks" / "a.py").write_text(f'"""A module."""\n{comment}\n', encoding="utf-8")
    problems = broken_doc_refs(project, tmp_path)
    assert len(problems) == len(broken)
    assert all(b in p and "tasks/a.py:2" in p for b, p in zip(broken, problems, strict=True))


def test_the_readme_checker_finds_a_section_reference_and_spares_readme_json(project: Path) -> None:
    (project / "tasks" / "a.py").write_text(
        '"""A module (README: Videos)."""\nNOTE = "restricted/README.json"\n', encoding="utf-8"
    )
    assert readme_refs(project) == ['tasks/a.py:1: """A module (README: Videos)."""']

"""The project's habits are files a test can read: pre-commit hooks that need no network and match `make lint`,
a Keep a Changelog file whose latest release is the package's version, and a contributor guide that is linked."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}  # Keep a Changelog 1.1.0
_RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$")


def _hooks(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def offline_problems(config: dict[str, Any]) -> list[str]:
    """Why the pre-commit config would fetch something or not use the venv's tools, one line each."""
    problems = [
        f"repo {r['repo']!r} is fetched (use repo: local)" for r in config["repos"] if r["repo"] != "local"
    ]
    for hook_id, hook in _hooks(config).items():
        if hook.get("language") != "system":
            problems.append(
                f"hook {hook_id}: language {hook.get('language')!r} builds an environment (use system)"
            )
        if not str(hook.get("entry", "")).startswith(".venv/bin/"):
            problems.append(
                f"hook {hook_id}: entry {hook.get('entry')!r} is not a tool of the project's venv"
            )
    return problems


def _make_lint() -> list[str]:
    """The commands of the Makefile's `lint` recipe, `$(BIN)/` dropped."""
    recipe = (REPO / "Makefile").read_text().split("\nlint: setup\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip().removeprefix("$(BIN)/") for line in recipe.splitlines() if line.startswith("\t")]


def changelog_problems(text: str, version: str) -> list[str]:
    """What keeps `text` from being a Keep a Changelog file whose newest release is `version`."""
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    problems = [] if headings[:1] == ["## [Unreleased]"] else ["the first section is not ## [Unreleased]"]
    releases = [m.groups() for h in headings[1:] if (m := _RELEASE.match(h))]
    problems += [f"not '## [X.Y.Z] - YYYY-MM-DD': {h}" for h in headings[1:] if not _RELEASE.match(h)]
    if not releases or releases[0][0] != version:
        problems.append(
            f"the newest release is {releases[0][0] if releases else None}, pyproject says {version}"
        )
    problems += [
        f"{h}: not a Keep a Changelog category"
        for h in re.findall(r"^### (.+)$", text, re.M)
        if h not in CATEGORIES
    ]
    return problems


@pytest.fixture(scope="module")
def precommit() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return config


def test_precommit_hooks_are_local_and_use_the_venv(precommit: dict[str, Any]) -> None:
    assert offline_problems(precommit) == []


def test_precommit_runs_what_make_lint_runs_and_the_format_check(precommit: dict[str, Any]) -> None:
    hooks = _hooks(precommit)
    entries = {h["entry"].removeprefix(".venv/bin/").split(" --force-exclude")[0] for h in hooks.values()}
    lint = _make_lint()
    ruff_check = next(c for c in lint if c.startswith("ruff check"))
    assert {"ruff check", "ruff format --check", *[c for c in lint if c.startswith("mypy")]} <= entries
    check_files = re.compile(
        next(h["files"] for h in hooks.values() if h["entry"].startswith(".venv/bin/ruff check"))
    )
    assert all(check_files.match(f"{folder}/x.py") for folder in ruff_check.split()[2:])
    assert not check_files.match("docs/x.py")


def test_the_offline_checker_names_a_fetched_repo_and_a_foreign_tool() -> None:
    config = {
        "repos": [
            {"repo": "https://github.com/astral-sh/ruff-pre-commit", "hooks": [{"id": "ruff"}]},
            {"repo": "local", "hooks": [{"id": "m", "entry": "mypy", "language": "system"}]},
        ]
    }
    assert [p.split(" ")[0] + " " + p.split(" ")[1] for p in offline_problems(config)] == [
        "repo 'https://github.com/astral-sh/ruff-pre-commit'",
        "hook ruff:",
        "hook ruff:",
        "hook m:",
    ]


def test_precommit_accepts_the_config() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    assert clientlib.load_config(str(REPO / ".pre-commit-config.yaml"))["repos"]


def test_the_changelog_keeps_the_format_and_names_the_current_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert changelog_problems((REPO / "CHANGELOG.md").read_text(encoding="utf-8"), version) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("## [0.1.0] - 2026-12-07\n### Added\n", "the first section is not ## [Unreleased]"),
        ("## [Unreleased]\n## [0.1.0] - 2026-12-07\n### New\n", "New: not a Keep a Changelog category"),
        ("## [Unreleased]\n## [0.0.9] - 2026-12-07\n", "the newest release is 0.0.9, pyproject says 0.1.0"),
        ("## [Unreleased]\n## 0.1.0\n", "not '## [X.Y.Z] - YYYY-MM-DD': ## 0.1.0"),
    ],
)
def test_the_changelog_checker_finds_each_mistake(text: str, problem: str) -> None:
    assert problem in changelog_problems(text, "0.1.0")


def test_the_contributor_guide_is_linked_from_the_readme_and_the_development_page() -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert "make test" in guide and "make pipeline" in guide and "## Commits" in guide
    assert "](CONTRIBUTING.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    assert "`CONTRIBUTING.md`" in (REPO / "docs" / "development.md").read_text(encoding="utf-8")

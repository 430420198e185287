"""The README stays a quickstart and the docs site builds: sizes, links, anchors, nav, `mkdocs build --strict`."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_BYTES = 10_240

_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1\s*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)[^`]*?\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def _prose(text: str) -> str:
    """`text` without fenced code blocks and code spans (a link written there is not a link)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _links(text: str) -> list[str]:
    """Every Markdown link and image target of `text` outside code."""
    return _LINK.findall(_prose(text))


def _heading_text(raw: str) -> str:
    """A heading's visible text: inline formatting and link targets dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    return re.sub(r"[`*]", "", text)


def _mkdocs_slug(text: str) -> str:
    """The id Python-Markdown's toc extension (MkDocs) gives a heading."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _github_slug(text: str) -> str:
    """The id GitHub gives a heading when it renders a Markdown file (how README.md is read)."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _anchors(page: Path, slug: Callable[[str], str]) -> set[str]:
    """The heading ids of `page` (duplicates numbered `-1`, `-2`, ... as both renderers do)."""
    seen: dict[str, int] = {}
    ids = set()
    for match in _HEADING.finditer(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(_heading_text(match.group(1)))
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def broken_links(page: Path, *, root: Path | None, slug: Callable[[str], str]) -> list[str]:
    """Every relative link of `page` whose file (or heading) does not exist, one line each.

    Args:
        page: a Markdown file.
        root: links must stay inside this folder (the docs site cannot serve anything else); None: anywhere.
        slug: how the renderer of `page` turns a heading into its id.
    """
    problems = []
    for target in _links(page.read_text(encoding="utf-8")):
        if _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if root is not None and not dest.is_relative_to(root.resolve()):
            problems.append(f"{page.name}: {target} leaves {root.name}/")
        elif not dest.exists():
            problems.append(f"{page.name}: {target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest, slug):
            problems.append(f"{page.name}: {target} (no heading #{anchor} in {dest.name})")
    return problems


def _nav_pages(nav: object) -> Iterator[str]:
    """The page paths of a `nav:` tree (strings, or {title: path-or-subtree})."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_pages(value)


def _config() -> dict:
    return yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))


def test_readme_is_at_most_10_kb() -> None:
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes; move detail to docs/ (limit {README_MAX_BYTES})"
    )


def test_readme_links_to_the_docs_pages() -> None:
    targets = {t.partition("#")[0] for t in _links((REPO / "README.md").read_text(encoding="utf-8"))}
    for page in (
        "getting-started",
        "your-data",
        "anonymization",
        "privacy-guarantee",
        "attack-audit",
        "compliance-report",
        "operations",
        "development",
        "benchmarks",
    ):
        assert f"docs/{page}.md" in targets, f"README.md does not link docs/{page}.md"


def test_every_relative_link_in_the_readme_resolves() -> None:
    assert broken_links(REPO / "README.md", root=None, slug=_github_slug) == []


@pytest.mark.parametrize(
    "page",
    sorted(
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not p.relative_to(DOCS).as_posix().startswith("gallery/")
    ),
)
def test_every_relative_link_in_a_docs_page_resolves(page: str) -> None:
    assert broken_links(DOCS / page, root=DOCS, slug=_mkdocs_slug) == []


def test_the_link_checker_finds_a_missing_file_a_missing_heading_and_an_escape(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## The presets (`fast`)\n")
    page = tmp_path / "docs" / "a.md"
    page.write_text(
        "[ok](b.md#the-presets-fast) [gone](c.md) [anchor](b.md#nope) [out](../x.md)\n"
        "`[code](c.md)`\n```\n[fenced](c.md)\n```\n[web](https://example.org/c.md)\n"
    )
    (tmp_path / "x.md").write_text("# X\n")
    problems = broken_links(page, root=tmp_path / "docs", slug=_mkdocs_slug)
    assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == ["c.md", "b.md#nope", "../x.md"]


@pytest.mark.parametrize(
    ("heading", "mkdocs", "github"),
    [
        (
            "The default pipeline (`python -m bench.pipeline_stages`)",
            "the-default-pipeline-python-m-benchpipeline_stages",
            "the-default-pipeline-python--m-benchpipeline_stages",
        ),
        ("640×480 composites", "640480-composites", "640480-composites"),
        ("Privacy–utility sweep", "privacyutility-sweep", "privacyutility-sweep"),
    ],
)
def test_slugs_follow_each_renderer(heading: str, mkdocs: str, github: str) -> None:
    assert (_mkdocs_slug(_heading_text(heading)), _github_slug(_heading_text(heading))) == (mkdocs, github)


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    config = _config()
    nav = list(_nav_pages(config["nav"]))
    assert [p for p in nav if not (DOCS / p).is_file()] == []
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - set(nav) - {p for p in pages if p.startswith("gallery/")}) == []
    assert len(nav) == len(set(nav)), "a page is listed twice in the nav"


def test_the_build_is_strict_and_offline() -> None:
    config = _config()
    assert config["strict"] is True
    assert config["theme"]["font"] is False  # Material would fetch Google Fonts
    assert {
        k: config["validation"][k] for k in ("omitted_files", "not_found", "unrecognized_links", "anchors")
    } == dict.fromkeys(("omitted_files", "not_found", "unrecognized_links", "anchors"), "warn")
    plugins = {next(iter(p)) if isinstance(p, dict) else p for p in config["plugins"]}
    assert plugins <= {"search", "mkdocstrings"}, f"a plugin that may need the network: {plugins}"


def _mkdocs_build(config_file: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_file), "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(site.parent)},
    )


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("[fine](b.md#the-b-page)", None),
        ("[broken](missing.md)", "missing.md"),
        ("[broken anchor](b.md#nope)", "#nope"),
    ],
)
def test_the_projects_build_settings_fail_on_a_broken_link(
    tmp_path: Path, link: str, message: str | None
) -> None:
    """mkdocs.yml's own validation and theme, on a two-page site: a broken link or anchor aborts the build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Home\n\n{link}\n")
    (docs / "b.md").write_text("# The B page\n")
    config = {
        **_config(),
        "docs_dir": str(docs),
        "site_dir": str(tmp_path / "site"),
        "plugins": ["search"],
        "nav": ["index.md", "b.md"],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    if message is None:
        assert result.returncode == 0, result.stderr
    else:
        output = result.stdout + result.stderr
        assert result.returncode != 0 and message in output and "warnings in strict mode" in output, output


@pytest.mark.slow
def test_the_docs_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """`make docs` in a temp folder: every page, the API reference from the docstrings, no warning."""
    result = _mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    api = (tmp_path / "site" / "api" / "anonymize" / "index.html").read_text(encoding="utf-8")
    assert 'id="tasks.anonymize.engine"' in api  # submodules rendered from their docstrings
    html = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis.com" not in html

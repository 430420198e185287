"""Where DVC names and keeps outputs, read for `privtrail purge`: the local cache, the run cache and every remote
(`Stores`), and every record that names outputs: the workspace's dvc.lock, the dvc.lock of every commit reachable
from any git ref or reflog, experiment workspaces under `.dvc/tmp/exps`, the run cache's entries.

Reading only; what the records mean (which output is raw, which version is due) is `tasks.report.purge_inventory`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flows import io, tracking
from tasks.redact import redact_uri
from tasks.report.purge_inventory import (
    WORKSPACE,
    Stages,
    distinct_locks,
    lock_stages,
    parse_cat_batch,
    run_cache_stages,
)
from tasks.report.retention import cache_relpath

EXP_WORKSPACES = ".dvc/tmp/exps"  # where `dvc exp run --queue` / `--temp` run their copies of the workspace


@dataclass
class Stores:
    """Where DVC objects live: the local cache (`<cache>/files/md5`), the run cache, every configured remote."""

    cache: Path
    run_cache: Path
    remotes: dict[str, Any] = field(default_factory=dict)  # name → dvc ObjectDB
    remote_urls: dict[str, str] = field(default_factory=dict)  # name → URL, credentials removed

    def read(self, md5: str) -> bytes | None:
        """An object's bytes from the cache, else from the first remote that has it; None when none has it."""
        obj = self.cache / cache_relpath(md5)
        if obj.exists():
            return obj.read_bytes()
        for odb in self.remotes.values():
            path = odb.oid_to_path(md5)
            if odb.fs.exists(path):
                return bytes(odb.fs.cat_file(path))
        return None

    def where(self, md5s: tuple[str, ...]) -> dict[str, int]:
        """How many of `md5s` the cache and each remote hold."""
        out = {"cache": sum((self.cache / cache_relpath(m)).exists() for m in md5s)}
        for name, odb in self.remotes.items():
            out[f"remote {name}"] = sum(bool(odb.fs.exists(odb.oid_to_path(m))) for m in md5s)
        return out


@contextmanager
def stores() -> Iterator[Stores]:
    """This workspace's DVC cache, run cache and every configured remote (`dvc remote add`)."""
    from dvc.repo import Repo

    with Repo(str(io.repo_root())) as repo:
        names = list(repo.config.get("remote", {}))
        yield Stores(
            cache=Path(repo.cache.local.path),
            run_cache=Path(repo.stage_cache.cache_dir),
            remotes={n: repo.cloud.get_remote_odb(n, command="purge") for n in names},
            remote_urls={n: redact_uri(str(repo.config["remote"][n].get("url", ""))) for n in names},
        )


def _git(*args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=io.repo_root(), input=stdin, capture_output=True, check=False
        )
    except OSError:
        return None
    return out.stdout if out.returncode == 0 else None


def git_locks() -> list[tuple[str, Stages]]:
    """(where, stages) of every distinct dvc.lock in git: ref tips by name, then every commit reachable from any
    ref or reflog (`refs/exps/*` experiments and the stash of queued ones included)."""
    prefix = (_git("rev-parse", "--show-prefix") or b"").decode().strip()
    tips = [
        line.split(" ", 1)
        for line in (_git("for-each-ref", "--format=%(objectname) %(refname)") or b"").decode().splitlines()
        if " " in line
    ]
    commits = (_git("rev-list", "--all", "--reflog") or b"").decode().split()
    labelled = [(ref, sha) for sha, ref in tips] + [(f"commit {c[:10]}", c) for c in commits]
    specs = "".join(f"{sha}:{prefix}dvc.lock\n" for _, sha in labelled)
    blobs = parse_cat_batch(_git("cat-file", "--batch", stdin=specs.encode()) or b"", len(labelled))
    return distinct_locks([label for label, _ in labelled], blobs)


def experiment_workspaces() -> list[tuple[Path, Stages]]:
    """Experiment workspaces DVC left under `.dvc/tmp/exps` (running or failed), with their dvc.lock."""
    root = io.path(EXP_WORKSPACES)
    found = [] if not root.is_dir() else sorted(root.glob("*/dvc.lock")) + sorted(root.glob("*/*/dvc.lock"))
    return [(f.parent, lock_stages(f.read_text())) for f in found]


def run_cache_entries(run_cache: Path) -> list[Stages]:
    """The run cache's records (one single-stage lock entry each, labelled by its command): experiments with
    other params leave them even when no commit names their outputs. Which output is raw is decided by its
    path (`split_outs`), never by the command: an edited or discarded ingest command is still ingest."""
    files = sorted(f for f in run_cache.rglob("*") if f.is_file()) if run_cache.is_dir() else []
    return run_cache_stages([yaml.safe_load(f.read_text()) for f in files])


def lock_sources(run_cache: Path) -> list[tuple[str, Stages]]:
    """(where, stages) of every record that names outputs: the workspace's dvc.lock, git's, experiments',
    the run cache's entries."""
    sources = [(WORKSPACE, tracking.dvc_lock_entries()), *git_locks()]
    sources += [
        (f"experiment workspace {w.relative_to(io.repo_root())}", s) for w, s in experiment_workspaces()
    ]
    return sources + [("run-cache", s) for s in run_cache_entries(run_cache)]


def dir_listing(st: Stores, md5: str, workspace_dir: Path | None) -> list[dict[str, str]] | None:
    """A directory output's `.dir` listing: from the cache or a remote, else (the workspace's own version)
    its files hashed; None when no copy exists (then DVC cannot restore it either)."""
    raw = st.read(md5)
    if raw is not None:
        return list(json.loads(raw))
    if workspace_dir is None or not workspace_dir.is_dir():
        return None
    return [
        {"md5": hashlib.md5(f.read_bytes()).hexdigest(), "relpath": f.relative_to(workspace_dir).as_posix()}
        for f in sorted(workspace_dir.rglob("*"))
        if f.is_file()
    ]

"""`privtrail purge`: delete expired raw data — every version of it — from the workspace, the DVC cache and
the DVC remotes; keep everything else; record what went.

Not a DVC stage (it removes a stage's output on purpose): afterwards `dvc status` shows `data/raw` as
deleted and `dvc repro --allow-missing` skips ingest instead of regenerating the raw data.
The ingest time is the ingest run's recorded start (`reports/runs/ingest.json: started_at`), else the
MLflow run's start time; never a file modification time (copies, clones and checkouts reset those).

Every version of the raw output counts, not only the one the workspace's dvc.lock names: the dvc.lock of
every commit reachable from any git ref or reflog (branches, tags, `refs/exps/*` experiments, the queue's
stash of queued experiments), experiment workspaces under `.dvc/tmp/exps`, and the ingest entries of the
DVC run cache (experiments with other ingest params leave their raw images there). A version is due when
its own ingest record is older than `retention.raw_days`, or when its age cannot be read (fail closed).
Objects any other output of any version references (anonymized images identical to their raw image) stay.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from flows import io, tracking
from flows.retention import retention
from tasks.errors import InvalidInputError
from tasks.params import Params
from tasks.redact import redact_uri
from tasks.report.retention import (
    PURGE_COUNTS,
    PurgePlan,
    RawVersion,
    RetentionStatus,
    cache_relpath,
    ledger_entry,
    plan_purge_versions,
    split_outs,
    version_due,
)

RUN_RECORD = "runs/ingest.json"  # the ingest output that records when the run started
EXP_WORKSPACES = ".dvc/tmp/exps"  # where `dvc exp run --queue` / `--temp` run their copies of the workspace
Stages = Mapping[str, Mapping[str, Any]]


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
        yield Stores(cache=Path(repo.cache.local.path), run_cache=Path(repo.stage_cache.cache_dir),
                     remotes={n: repo.cloud.get_remote_odb(n, command="purge") for n in names},
                     remote_urls={n: redact_uri(str(repo.config["remote"][n].get("url", ""))) for n in names})


# --- where raw versions are named -------------------------------------------------------------------


def _git(*args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=io.repo_root(), input=stdin, capture_output=True, check=False)
    except OSError:
        return None
    return out.stdout if out.returncode == 0 else None


def _cat_batch(specs: list[str]) -> list[bytes | None]:
    """`git cat-file --batch` of `<commit>:<path>` specs, in order (None where the path does not exist)."""
    raw = _git("cat-file", "--batch", stdin="".join(f"{s}\n" for s in specs).encode()) or b""
    out: list[bytes | None] = []
    pos = 0
    for _ in specs:
        end = raw.index(b"\n", pos)
        header = raw[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":  # "<spec> missing" or not a file
            out.append(None)
            continue
        size = int(header[2])
        out.append(raw[pos : pos + size])
        pos += size + 1
    return out


def git_locks() -> list[tuple[str, Stages]]:
    """(where, stages) of every distinct dvc.lock in git: ref tips by name, then every commit reachable from any
    ref or reflog (`refs/exps/*` experiments and the stash of queued ones included)."""
    prefix = (_git("rev-parse", "--show-prefix") or b"").decode().strip()
    tips = [line.split(" ", 1) for line in (_git("for-each-ref", "--format=%(objectname) %(refname)") or b"")
            .decode().splitlines() if " " in line]
    commits = (_git("rev-list", "--all", "--reflog") or b"").decode().split()
    labelled = [(ref, sha) for sha, ref in tips] + [(f"commit {c[:10]}", c) for c in commits]
    blobs = _cat_batch([f"{sha}:{prefix}dvc.lock" for _, sha in labelled])
    found: dict[bytes, tuple[list[str], Stages]] = {}
    for (label, _), blob in zip(labelled, blobs, strict=True):
        if blob is None:
            continue
        if blob not in found:
            found[blob] = ([], dict((yaml.safe_load(blob) or {}).get("stages") or {}))
        if len(found[blob][0]) < 5:
            found[blob][0].append(label)
    return [(", ".join(labels), stages) for labels, stages in found.values()]


def experiment_workspaces() -> list[tuple[Path, Stages]]:
    """Experiment workspaces DVC left under `.dvc/tmp/exps` (running or failed), with their dvc.lock."""
    root = io.path(EXP_WORKSPACES)
    found = [] if not root.is_dir() else sorted(root.glob("*/dvc.lock")) + sorted(root.glob("*/*/dvc.lock"))
    return [(f.parent, dict((yaml.safe_load(f.read_text()) or {}).get("stages") or {})) for f in found]


def run_cache_entries(run_cache: Path) -> list[Stages]:
    """The run cache's records (one single-stage lock entry each, labelled by its command): experiments with
    other params leave them even when no commit names their outputs. Which output is raw is decided by its
    path (`split_outs`), never by the command: an edited or discarded ingest command is still ingest."""
    files = sorted(f for f in run_cache.rglob("*") if f.is_file()) if run_cache.is_dir() else []
    entries = [e for e in (yaml.safe_load(f.read_text()) for f in files) if isinstance(e, dict)]
    return [{f"run {e.get('cmd')}": e} for e in entries]


def lock_sources(run_cache: Path) -> list[tuple[str, Stages]]:
    """(where, stages) of every record that names outputs: the workspace's dvc.lock, git's, experiments',
    the run cache's entries."""
    sources = [("workspace", tracking.dvc_lock_entries()), *git_locks()]
    sources += [(f"experiment workspace {w.relative_to(io.repo_root())}", s) for w, s in experiment_workspaces()]
    return sources + [("run-cache", s) for s in run_cache_entries(run_cache)]


# --- versions and what they share -------------------------------------------------------------------


def _listing(st: Stores, md5: str, workspace_dir: Path | None) -> list[dict[str, str]] | None:
    """A directory output's `.dir` listing: from the cache or a remote, else (the workspace's own version)
    its files hashed; None when no copy exists (then DVC cannot restore it either)."""
    raw = st.read(md5)
    if raw is not None:
        return list(json.loads(raw))
    if workspace_dir is None or not workspace_dir.is_dir():
        return None
    import hashlib

    return [{"md5": hashlib.md5(f.read_bytes()).hexdigest(), "relpath": f.relative_to(workspace_dir).as_posix()}
            for f in sorted(workspace_dir.rglob("*")) if f.is_file()]


def _ingested_at(st: Stores, others: list[tuple[str, str]]) -> datetime | None:
    """The start of the ingest run whose record is among `others` (the same lock entry's outputs)."""
    for path, md5 in others:
        if path.endswith(RUN_RECORD):
            raw = st.read(md5)
            started = datetime.fromisoformat(json.loads(raw)["started_at"]) if raw and b"started_at" in raw else None
            return started if started is not None and started.tzinfo else None  # no zone: unknown, so due
    return None


@dataclass(frozen=True)
class Inventory:
    """Every raw version found, what the other outputs reference, and the workspace's current version."""

    versions: tuple[RawVersion, ...]
    keep: frozenset[str]
    current: str | None
    experiment_raw: tuple[tuple[Path, str | None], ...]  # (raw dir in an experiment workspace, its .dir md5)


def inventory(params: Params, st: Stores) -> Inventory:
    """Collect the raw versions of every source and the objects every other output references."""
    refs: dict[str, tuple[str, list[str]]] = {}  # .dir md5 → (its path, where it is named)
    times: dict[str, datetime] = {}
    keep: set[str] = set()
    current = None
    for where, stages in lock_sources(st.run_cache):
        raw, others = split_outs(stages, default_raw=params.paths.raw)
        for path, md5 in raw:
            refs.setdefault(md5, (path, []))[1].append(where)
            current = md5 if where == "workspace" else current
            when = _ingested_at(st, others)  # the earliest record wins: an older version is due sooner
            if when is not None and (md5 not in times or when < times[md5]):
                times[md5] = when
        for path, md5 in others:
            if md5 in keep:
                continue
            keep.add(md5)
            if md5.endswith(".dir"):  # its files too (a listing nowhere: nothing can restore them either)
                keep |= {e["md5"] for e in _listing(st, md5, io.path(path) if where == "workspace" else None) or []}
    versions = tuple(_version(st, path, md5, tuple(dict.fromkeys(w)), times.get(md5), md5 == current)
                     for md5, (path, w) in refs.items())
    exp_raw = tuple((w / raw[0][0], raw[0][1]) if raw else (w / params.paths.raw, None)
                    for w, s in experiment_workspaces()
                    for raw in [split_outs(s, default_raw=params.paths.raw)[0]])
    return Inventory(versions=versions, keep=frozenset(keep), current=current, experiment_raw=exp_raw)


def _version(st: Stores, path: str, md5: str, where: tuple[str, ...], when: datetime | None,
             is_current: bool) -> RawVersion:
    listing = _listing(st, md5, io.path(path) if is_current else None)
    files = None if listing is None else tuple(sorted({e["md5"] for e in listing}))
    return RawVersion(out_path=path, out_md5=md5, refs=where, files=files, ingested_at=when,
                      n_files=len(listing or []))


def plan(params: Params, st: Stores, status: RetentionStatus, now: datetime) -> tuple[PurgePlan, Inventory]:
    """What purge deletes: every due raw version's objects minus those any other output or kept version needs.

    The workspace's version is due when its retention status is expired; another when its own ingest
    record is older than `retention.raw_days` or cannot be read.
    Raises:
        InvalidInputError: no record anywhere names a raw output.
    """
    inv = inventory(params, st)
    if not inv.versions:
        raise InvalidInputError(f"dvc.lock: no ingest output {params.paths.raw} in the workspace, git history, "
                                "experiments or run cache (run `dvc repro ingest` first)")
    # the current version too by its own age, whether or not its files are here (a clone that never pulled
    # them still has them on the remote)
    due = {v.out_md5 for v in inv.versions
           if version_due(v.ingested_at, raw_days=params.retention.raw_days, now=now)
           or (v.out_md5 == inv.current and status.expired)}
    return plan_purge_versions(inv.versions, current=inv.current, keep=inv.keep, due=due), inv


# --- deleting ---------------------------------------------------------------------------------------


def _delete_remotes(p: PurgePlan, st: Stores) -> dict[str, int]:
    """Delete the planned objects from every configured DVC remote (local path or object storage)."""
    counts = {"deleted_remote_objects": 0, "missing_remote_objects": 0}
    for odb in st.remotes.values():
        for md5 in p.cache_objects:
            path = odb.oid_to_path(md5)
            if odb.fs.exists(path):
                odb.fs.rm(path)
                counts["deleted_remote_objects"] += 1
            else:
                counts["missing_remote_objects"] += 1
    return counts


def _delete_tree(root: Path) -> tuple[int, int]:
    files = [f for f in root.rglob("*") if f.is_file()] if root.is_dir() else []
    size = sum(f.stat().st_size for f in files)
    if root.exists():
        shutil.rmtree(root)
    return len(files), size


def _delete(p: PurgePlan, st: Stores, workspaces: list[Path]) -> dict[str, int]:
    """Remotes first (a remote that fails leaves the local copies for a retry), then the cache, then the
    workspace copies (this one's raw directory when due, experiment workspaces' of due versions)."""
    counts = dict.fromkeys(PURGE_COUNTS, 0) | _delete_remotes(p, st)
    for md5 in p.cache_objects:
        obj = st.cache / cache_relpath(md5)
        if not obj.exists():
            counts["missing_cache_objects"] += 1
            continue
        counts["deleted_cache_bytes"] += obj.stat().st_size
        obj.unlink()
        counts["deleted_cache_objects"] += 1
    for root in workspaces:
        n, size = _delete_tree(root)
        counts["deleted_workspace_files"] += n
        counts["deleted_workspace_bytes"] += size
    return counts


def _due_workspaces(params: Params, p: PurgePlan, inv: Inventory, status: RetentionStatus) -> list[Path]:
    """Working copies of due raw data: this workspace's (when its status is expired), experiments' (when their
    version is due or unknown)."""
    mine = [io.path(params.paths.raw)] if status.expired else []
    return mine + [d for d, md5 in inv.experiment_raw if d.exists() and (md5 is None or md5 in p.due)]


def listing(p: PurgePlan, st: Stores) -> list[dict[str, Any]]:
    """Per raw version: where it is named, whether it is due, and how many of its objects each store holds."""
    return [v.as_dict(due=v.out_md5 in p.due) | {"present": st.where(v.objects)} for v in p.versions]


def purge(*, apply: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Delete every due raw version (workspace, DVC cache, DVC remotes) when `apply`; otherwise list what would go.

    Returns the retention ledger entry (dry runs return it without writing it anywhere) with `listing`.
    """
    params = io.load_params()
    now = now or datetime.now(UTC)
    status = retention(params, now=now)
    with stores() as st:
        p, inv = plan(params, st, status, now)
        workspaces = _due_workspaces(params, p, inv, status)
        present = sum(st.where(p.cache_objects).values()) + len(workspaces)
        stamp = now.isoformat(timespec="seconds")
        extra = {"state": status.state, "workspace_files_present": _n_files(params), "listing": listing(p, st),
                 "due_objects_present": present, "remotes": st.remote_urls}
        if not (apply and present):
            return ledger_entry(p, status, applied=False, counts=dict.fromkeys(PURGE_COUNTS, 0), run_id=None,
                                time=stamp) | extra
        entry = _apply(params, p, st, status, workspaces, stamp)
        return entry | extra | {"state": "purged", "listing": listing(p, st)}  # what is left, after


def _apply(params: Params, p: PurgePlan, st: Stores, status: RetentionStatus, workspaces: list[Path],
           stamp: str) -> dict[str, Any]:
    ledger = params.retention.ledger
    with tracking.stage_run("purge", params=params, inputs=[], outputs=[ledger]) as run:
        counts = _delete(p, st, workspaces)
        entry = ledger_entry(p, status, applied=True, counts=counts, run_id=run.run_id, time=stamp)
        record = f"{params.paths.reports}/retention/purged_{run.run_id}.json"
        io.write_json(record, {"entry": entry, "cache_objects": list(p.cache_objects),
                               "kept_shared_objects": list(p.shared_objects), "remotes": st.remote_urls,
                               "workspaces": [str(w.relative_to(io.repo_root())) for w in workspaces]})
        run.log_artifact(record, "retention")
        run.log_metrics({f"purge/{k}": float(v) for k, v in counts.items()} | status.as_metrics())
        run.set_tags({"out_path": p.out_path, "out_md5": p.out_md5, "objects_sha256": p.objects_digest,
                      "versions_purged": str(len(p.due)), "retention.raw_days": str(params.retention.raw_days)})
        io.append_line(ledger, json.dumps(entry, sort_keys=True) + "\n")
    return entry


def _n_files(params: Params) -> int:
    raw = io.path(params.paths.raw)
    return sum(f.is_file() for f in raw.rglob("*")) if raw.is_dir() else 0

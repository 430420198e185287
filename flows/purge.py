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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows import io, tracking
from flows.dvc_records import Stores, dir_listing, experiment_workspaces, lock_sources, stores
from flows.retention import retention
from tasks.errors import InvalidInputError
from tasks.params import Params
from tasks.report.purge_inventory import Inventory, collect_versions, due_versions, experiment_raw
from tasks.report.retention import (
    PURGE_COUNTS,
    PurgePlan,
    RetentionStatus,
    cache_relpath,
    ledger_entry,
    plan_purge_versions,
)


def inventory(params: Params, st: Stores) -> Inventory:
    """Collect the raw versions of every source and the objects every other output references."""

    def listed(md5: str, path: str, in_workspace: bool) -> list[dict[str, str]] | None:
        return dir_listing(st, md5, io.path(path) if in_workspace else None)

    versions, keep, current = collect_versions(
        lock_sources(st.run_cache), default_raw=params.paths.raw, read=st.read, listing=listed
    )
    return Inventory(
        versions=versions,
        keep=keep,
        current=current,
        experiment_raw=experiment_raw(experiment_workspaces(), default_raw=params.paths.raw),
    )


def plan(params: Params, st: Stores, status: RetentionStatus, now: datetime) -> tuple[PurgePlan, Inventory]:
    """What purge deletes: every due raw version's objects minus those any other output or kept version needs.

    The workspace's version is due when its retention status is expired; another when its own ingest
    record is older than `retention.raw_days` or cannot be read.
    Raises:
        InvalidInputError: no record anywhere names a raw output.
    """
    inv = inventory(params, st)
    if not inv.versions:
        raise InvalidInputError(
            f"dvc.lock: no ingest output {params.paths.raw} in the workspace, git history, "
            "experiments or run cache (run `dvc repro ingest` first)"
        )
    due = due_versions(inv, raw_days=params.retention.raw_days, now=now, expired=status.expired)
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
        extra = {
            "state": status.state,
            "workspace_files_present": _n_files(params),
            "listing": listing(p, st),
            "due_objects_present": present,
            "remotes": st.remote_urls,
        }
        if not (apply and present):
            return (
                ledger_entry(
                    p, status, applied=False, counts=dict.fromkeys(PURGE_COUNTS, 0), run_id=None, time=stamp
                )
                | extra
            )
        entry = _apply(params, p, st, status, workspaces, stamp)
        return entry | extra | {"state": "purged", "listing": listing(p, st)}  # what is left, after


def _apply(
    params: Params, p: PurgePlan, st: Stores, status: RetentionStatus, workspaces: list[Path], stamp: str
) -> dict[str, Any]:
    ledger = params.retention.ledger
    with tracking.stage_run("purge", params=params, inputs=[], outputs=[ledger]) as run:
        counts = _delete(p, st, workspaces)
        entry = ledger_entry(p, status, applied=True, counts=counts, run_id=run.run_id, time=stamp)
        record = f"{params.paths.reports}/retention/purged_{run.run_id}.json"
        io.write_json(
            record,
            {
                "entry": entry,
                "cache_objects": list(p.cache_objects),
                "kept_shared_objects": list(p.shared_objects),
                "remotes": st.remote_urls,
                "workspaces": [str(w.relative_to(io.repo_root())) for w in workspaces],
            },
        )
        run.log_artifact(record, "retention")
        run.log_metrics({f"purge/{k}": float(v) for k, v in counts.items()} | status.as_metrics())
        run.set_tags(
            {
                "out_path": p.out_path,
                "out_md5": p.out_md5,
                "objects_sha256": p.objects_digest,
                "versions_purged": str(len(p.due)),
                "retention.raw_days": str(params.retention.raw_days),
            }
        )
        io.append_line(ledger, json.dumps(entry, sort_keys=True) + "\n")
    return entry


def _n_files(params: Params) -> int:
    raw = io.path(params.paths.raw)
    return sum(f.is_file() for f in raw.rglob("*")) if raw.is_dir() else 0

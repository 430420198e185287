"""`privtrail purge`: delete expired raw data from the workspace and the DVC cache, keep everything else,
record what went.

Not a DVC stage (it removes a stage's output on purpose): afterwards `dvc status` shows `data/raw` as
deleted and `dvc repro --allow-missing` skips ingest instead of regenerating the raw data.
The ingest time is the ingest run's recorded start (`reports/runs/ingest.json: started_at`), else the
MLflow run's start time; never a file modification time (copies, clones and checkouts reset those).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows import io, tracking
from flows.retention import cache_root, retention
from tasks.errors import InvalidInputError
from tasks.params import Params
from tasks.report.retention import (
    PURGE_COUNTS,
    PurgePlan,
    cache_relpath,
    ledger_entry,
    plan_purge,
)


def _listing(cache: Path, md5: str, out_path: str) -> list[dict[str, str]]:
    """The md5/relpath listing of a directory output: its .dir object, else its workspace files hashed."""
    obj = cache / cache_relpath(md5)
    if obj.exists():
        return list(io.read_json(obj))
    root = io.path(out_path)
    if not root.is_dir():  # neither cached nor checked out: it shares nothing with the raw data
        return []
    import hashlib

    return [
        {"md5": hashlib.md5(f.read_bytes()).hexdigest(), "relpath": f.relative_to(root).as_posix()}
        for f in sorted(root.rglob("*"))
        if f.is_file()
    ]


def plan(params: Params, cache: Path) -> PurgePlan:
    """What purge deletes, from dvc.lock: the raw output's objects minus those any other output references."""
    stages = tracking.dvc_lock_entries()
    outs = [(s, o) for s, e in stages.items() for o in e.get("outs", [])]
    raw = [o for s, o in outs if s == "ingest" and o["path"] == params.paths.raw and "md5" in o]
    if not raw:
        raise InvalidInputError(
            f"dvc.lock: no ingest output {params.paths.raw} (run `dvc repro ingest` first)"
        )
    keep: set[str] = set()
    for _, o in outs:
        if o is raw[0] or "md5" not in o:
            continue
        keep.add(o["md5"])
        if o["md5"].endswith(".dir"):
            keep |= {e["md5"] for e in _listing(cache, o["md5"], o["path"])}
    listing = (
        io.read_json(cache / cache_relpath(raw[0]["md5"]))
        if (cache / cache_relpath(raw[0]["md5"])).exists()
        else _listing(cache, raw[0]["md5"], params.paths.raw)
    )
    return plan_purge(out_path=params.paths.raw, out_md5=raw[0]["md5"], listing=listing, keep=keep)


def _delete_remote(p: PurgePlan) -> dict[str, int]:
    """Delete the same objects from the default DVC remote (local path or object storage), if one is set."""
    from dvc.repo import Repo

    counts = {"deleted_remote_objects": 0, "missing_remote_objects": 0}
    with Repo(str(io.repo_root())) as repo:
        if not repo.config["core"].get("remote"):
            return counts
        odb = repo.cloud.get_remote_odb(command="purge")
        for md5 in p.cache_objects:
            path = odb.oid_to_path(md5)
            if odb.fs.exists(path):
                odb.fs.rm(path)
                counts["deleted_remote_objects"] += 1
            else:
                counts["missing_remote_objects"] += 1
    return counts


def _delete(p: PurgePlan, cache: Path, raw: Path) -> dict[str, int]:
    counts = dict.fromkeys(PURGE_COUNTS, 0)
    for md5 in p.cache_objects:
        obj = cache / cache_relpath(md5)
        if not obj.exists():
            counts["missing_cache_objects"] += 1
            continue
        counts["deleted_cache_bytes"] += obj.stat().st_size
        obj.unlink()
        counts["deleted_cache_objects"] += 1
    files = [f for f in raw.rglob("*") if f.is_file()] if raw.is_dir() else []
    counts["deleted_workspace_files"] = len(files)
    counts["deleted_workspace_bytes"] = sum(f.stat().st_size for f in files)
    if raw.exists():
        shutil.rmtree(raw)
    return counts | _delete_remote(p)


def purge(*, apply: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Delete expired raw data (workspace, DVC cache, default DVC remote) when `apply`; otherwise say what would go.

    Returns the retention ledger entry (dry runs return it without writing it anywhere).
    """
    params = io.load_params()
    status = retention(params, now=now)
    p = plan(params, cache := cache_root())
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    if not (apply and status.expired):
        return ledger_entry(
            p, status, applied=False, counts=dict.fromkeys(PURGE_COUNTS, 0), run_id=None, time=stamp
        ) | {"state": status.state, "workspace_files_present": _n_files(params)}
    ledger = params.retention.ledger
    with tracking.stage_run("purge", params=params, inputs=[], outputs=[ledger]) as run:
        counts = _delete(p, cache, io.path(params.paths.raw))
        entry = ledger_entry(p, status, applied=True, counts=counts, run_id=run.run_id, time=stamp)
        io.write_json(
            f"{params.paths.reports}/retention/purged_{run.run_id}.json",
            {
                "entry": entry,
                "cache_objects": list(p.cache_objects),
                "kept_shared_objects": list(p.shared_objects),
            },
        )
        run.log_artifact(f"{params.paths.reports}/retention/purged_{run.run_id}.json", "retention")
        run.log_metrics({f"purge/{k}": float(v) for k, v in counts.items()} | status.as_metrics())
        run.set_tags(
            {
                "out_path": p.out_path,
                "out_md5": p.out_md5,
                "objects_sha256": p.objects_digest,
                "retention.raw_days": str(params.retention.raw_days),
            }
        )
        io.append_line(ledger, _json_line(entry))
    return entry | {"state": "purged"}


def _n_files(params: Params) -> int:
    raw = io.path(params.paths.raw)
    return sum(f.is_file() for f in raw.rglob("*")) if raw.is_dir() else 0


def _json_line(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True) + "\n"

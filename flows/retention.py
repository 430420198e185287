"""The raw data's retention status read from this workspace: when it was ingested, whether it is still here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flows import io, tracking
from tasks.params import Params
from tasks.report.retention import RetentionStatus, cache_relpath, retention_status


def ingest_time(params: Params) -> tuple[datetime | None, str]:
    """When the raw data came to exist, and which record says so."""
    rec_file = io.path(f"{params.paths.reports}/runs/ingest.json")
    rec = io.read_json(rec_file) if rec_file.exists() else {}
    if rec.get("started_at"):
        return datetime.fromisoformat(
            rec["started_at"]
        ), f"{params.paths.reports}/runs/ingest.json started_at"
    if rec.get("run_id"):
        started = tracking.run_times(rec["run_id"])["started_at"]
        if started:
            return datetime.fromisoformat(started), f"MLflow ingest run {rec['run_id']} start time"
    return None, "no ingest record (age unknown: treated as expired)"


def _raw_md5(params: Params) -> str | None:
    entry = tracking.dvc_lock_entries().get("ingest", {})
    return next((o.get("md5") for o in entry.get("outs", []) if o["path"] == params.paths.raw), None)


def raw_present(params: Params) -> bool:
    """Raw images in the workspace, or the raw output dvc.lock names still in the DVC cache."""
    raw = io.path(params.paths.raw)
    if raw.is_dir() and any(f.is_file() for f in raw.rglob("*")):
        return True
    md5 = _raw_md5(params)
    return md5 is not None and (cache_root() / cache_relpath(md5)).exists()


def retention(params: Params, *, now: datetime | None = None) -> RetentionStatus:
    """The raw data's retention status now (or at the injected `now`)."""
    when, source = ingest_time(params)
    ledger = io.path(params.retention.ledger)
    return retention_status(
        raw_days=params.retention.raw_days,
        ingested_at=when,
        time_source=source,
        now=now or datetime.now(UTC),
        raw_present=raw_present(params),
        purges=io.read_jsonl(ledger) if ledger.exists() else [],
    )


def cache_root() -> Path:
    """`<cache>/files/md5` of this workspace's DVC cache (honours `dvc cache dir`)."""
    from dvc.repo import Repo

    with Repo(str(io.repo_root())) as repo:
        return Path(repo.cache.local.path)

"""Retention of the raw (un-anonymized) data: its status against `retention.raw_days`, and the purge plan.

GDPR Art. 5(1)(e) (storage limitation): raw images that show people are kept no longer than needed —
for video-surveillance footage supervisory authorities expect a few days. The clock starts when the ingest
run started (recorded in `reports/runs/ingest.json`, else the MLflow run's start time): a recorded time
survives copies, `git clone` and `dvc checkout`, which all reset file modification times.

The purge plan is computed from DVC's own records: the raw output's `.dir` listing (md5 → relative path)
and the md5s every other output of `dvc.lock` references. An object shared with another output (an image
with nothing to redact is byte-identical after anonymization) is kept: purge deletes raw data and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence, Set
from dataclasses import asdict, dataclass
from datetime import datetime

from tasks.errors import InvalidInputError

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class RetentionStatus:
    """Where the raw data stands against its retention limit."""

    raw_days: int
    ingested_at: str | None  # ISO 8601 UTC; None: unknown (treated as expired: fail closed)
    time_source: str  # where ingested_at came from
    checked_at: str
    age_days: float | None
    raw_present: bool
    expired: bool  # present and older than the limit (or of unknown age)
    purged_at: str | None  # the last applied purge, when the raw data is gone

    @property
    def state(self) -> str:
        if not self.raw_present:
            return "purged" if self.purged_at else "absent"
        return "EXPIRED: purge due" if self.expired else "within limit"

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"state": self.state}

    def as_metrics(self) -> dict[str, float]:
        return {
            "retention/age_days": float("nan") if self.age_days is None else self.age_days,
            "retention/raw_days": float(self.raw_days),
            "retention/expired": float(self.expired),
            "retention/raw_present": float(self.raw_present),
        }


def retention_status(
    *,
    raw_days: int,
    ingested_at: datetime | None,
    time_source: str,
    now: datetime,
    raw_present: bool,
    purges: Sequence[Mapping[str, object]] = (),
) -> RetentionStatus:
    """Age of the raw data and whether it is past `raw_days`.

    Args:
        raw_days: the limit in days (0: raw data expires as soon as it exists).
        ingested_at: timezone-aware start of the ingest run; None when no record exists.
        time_source: where `ingested_at` came from (shown in the report).
        now: timezone-aware current time (injected: tests move the clock).
        raw_present: whether raw images are still in the workspace.
        purges: the retention ledger's entries (dicts with `applied`, `time`).
    Raises:
        InvalidInputError: a naive datetime, or an ingest time in the future.
    """
    for name, t in (("now", now), ("ingested_at", ingested_at)):
        if t is not None and t.tzinfo is None:
            raise InvalidInputError(f"retention: {name}={t} has no time zone")
    age = None if ingested_at is None else (now - ingested_at).total_seconds() / DAY_SECONDS
    if age is not None and age < -1 / 24:  # an hour of clock skew is tolerated
        raise InvalidInputError(
            f"retention: ingest time {ingested_at} ({time_source}) is in the future of {now}"
        )
    applied = [str(p["time"]) for p in purges if p.get("applied")]
    return RetentionStatus(
        raw_days=raw_days,
        ingested_at=None if ingested_at is None else ingested_at.isoformat(),
        time_source=time_source,
        checked_at=now.isoformat(timespec="seconds"),
        age_days=None if age is None else round(max(age, 0.0), 4),
        raw_present=raw_present,
        expired=raw_present and (age is None or age > raw_days),
        purged_at=max(applied) if applied and not raw_present else None,
    )


def cache_relpath(md5: str) -> str:
    """Where DVC 3 keeps an object in its cache, relative to `<cache>/files/md5` (`ab/cdef…`, `.dir` kept)."""
    if len(md5.removesuffix(".dir")) != 32 or any(
        c not in "0123456789abcdef" for c in md5.removesuffix(".dir")
    ):
        raise InvalidInputError(f"dvc.lock: {md5!r} is not an md5 hex digest")
    return f"{md5[:2]}/{md5[2:]}"


@dataclass(frozen=True)
class PurgePlan:
    """What a purge deletes: the raw output's workspace files and its cache objects not shared with other outputs."""

    out_path: str  # the raw output, e.g. data/raw
    out_md5: str  # its DVC digest in dvc.lock (the md5 of its .dir listing)
    n_files: int  # files the .dir listing names
    cache_objects: tuple[str, ...]  # md5s to delete from the cache (the .dir listing last)
    shared_objects: tuple[str, ...]  # md5s also referenced by another output: kept

    @property
    def objects_digest(self) -> str:
        """sha256 over the sorted md5s purged: one digest naming exactly what was deleted."""
        return hashlib.sha256("\n".join(sorted(self.cache_objects)).encode()).hexdigest()


def plan_purge(
    *, out_path: str, out_md5: str, listing: Sequence[Mapping[str, str]], keep: Set[str]
) -> PurgePlan:
    """Plan the deletion of one DVC directory output.

    Args:
        out_path: the output's path as dvc.lock names it.
        out_md5: its md5 in dvc.lock (ends with `.dir`).
        listing: the `.dir` object's content: [{"md5", "relpath"}, ...].
        keep: md5s referenced by every other output of dvc.lock (never deleted).
    Raises:
        InvalidInputError: `out_md5` is not a directory digest, or the listing has an entry without md5.
    """
    if not out_md5.endswith(".dir"):
        raise InvalidInputError(f"dvc.lock: {out_path} is not a directory output (md5 {out_md5})")
    md5s = []
    for entry in listing:
        if "md5" not in entry:
            raise InvalidInputError(f"{out_path}: .dir listing entry without md5: {dict(entry)}")
        md5s.append(entry["md5"])
    unique = sorted(set(md5s))
    own = tuple(m for m in unique if m not in keep) + ((out_md5,) if out_md5 not in keep else ())
    return PurgePlan(
        out_path=out_path,
        out_md5=out_md5,
        n_files=len(md5s),
        cache_objects=own,
        shared_objects=tuple(m for m in unique if m in keep),
    )


PURGE_COUNTS = (
    "deleted_workspace_files",
    "deleted_workspace_bytes",
    "deleted_cache_objects",
    "deleted_cache_bytes",
    "missing_cache_objects",
    "deleted_remote_objects",  # on the default DVC remote, when one is configured
    "missing_remote_objects",
)


def ledger_entry(
    plan: PurgePlan,
    status: RetentionStatus,
    *,
    applied: bool,
    counts: Mapping[str, int],
    run_id: str | None,
    time: str,
) -> dict[str, object]:
    """One line of the retention ledger: what was (or, dry, would be) deleted, with digests, never pixels.

    Args:
        counts: the PURGE_COUNTS measured while deleting (zeros for a dry run).
    Raises:
        InvalidInputError: a count is missing.
    """
    missing = [k for k in PURGE_COUNTS if k not in counts]
    if missing:
        raise InvalidInputError(f"retention ledger entry: counts lack {missing}")
    return {
        "time": time,
        "applied": applied,
        "out_path": plan.out_path,
        "out_md5": plan.out_md5,
        "n_files": plan.n_files,
        **{k: int(counts[k]) for k in PURGE_COUNTS},
        "planned_cache_objects": len(plan.cache_objects),
        "kept_shared_objects": len(plan.shared_objects),
        "objects_sha256": plan.objects_digest,
        "ingested_at": status.ingested_at,
        "age_days": status.age_days,
        "raw_days": status.raw_days,
        "mlflow_run_id": run_id,
    }

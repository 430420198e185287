"""Retention of the raw (un-anonymized) data: its status against `retention.raw_days`, and the purge plan.

GDPR Art. 5(1)(e) (storage limitation): raw images that show people are kept no longer than needed —
for video-surveillance footage supervisory authorities expect a few days. The clock starts when the ingest
run started (recorded in `reports/runs/ingest.json`, else the MLflow run's start time): a recorded time
survives copies, `git clone` and `dvc checkout`, which all reset file modification times.

The purge plan is computed from DVC's own records: the raw output's `.dir` listing (md5 → relative path)
and the md5s every other output of `dvc.lock` references. An object shared with another output (an image
with nothing to redact is byte-identical after anonymization) is kept: purge deletes raw data and nothing else.
Every version of the raw output counts, not only the one the workspace's dvc.lock names: earlier commits,
experiments (`refs/exps`, queued ones included) and the run cache name raw versions of other ingest params
whose images stay in the DVC cache and on the remote until purged (`plan_purge_versions`).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence, Set
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

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
class RawVersion:
    """One version of the raw output, wherever some record names it (dvc.lock of a commit, an experiment,
    the run cache): its `.dir` digest, the objects its listing names, and when its ingest run started."""

    out_path: str
    out_md5: str  # md5 of its .dir listing
    refs: tuple[
        str, ...
    ]  # where it is named: "workspace", "refs/heads/main", "refs/exps/...", "run-cache", ...
    files: (
        tuple[str, ...] | None
    )  # md5s of its files (sorted, unique); None: no copy of its .dir listing exists
    ingested_at: datetime | None  # the start of its ingest run, when a record of it is readable
    n_files: int = 0  # entries of its .dir listing (files; equal contents count once in `files`)

    @property
    def objects(self) -> tuple[str, ...]:
        """Every object of this version: its files' and its .dir listing's (listed last)."""
        return (*(self.files or ()), self.out_md5)

    def as_dict(self, *, due: bool) -> dict[str, object]:
        return {
            "out_path": self.out_path,
            "out_md5": self.out_md5,
            "refs": list(self.refs),
            "due": due,
            "n_files": self.n_files,
            "listed": self.files is not None,
            "ingested_at": None if self.ingested_at is None else self.ingested_at.isoformat(),
        }


@dataclass(frozen=True)
class PurgePlan:
    """What a purge deletes: the raw output's workspace files and its cache objects not shared with other outputs."""

    out_path: str  # the raw output, e.g. data/raw
    out_md5: str  # its DVC digest in dvc.lock (the md5 of its .dir listing)
    n_files: int  # files the .dir listing names
    cache_objects: tuple[str, ...]  # md5s to delete from the cache (the .dir listing last)
    shared_objects: tuple[str, ...]  # md5s also referenced by another output: kept
    # every version of the raw output found (`plan_purge_versions`) and the .dir md5s of those due
    versions: tuple[RawVersion, ...] = ()
    due: tuple[str, ...] = ()

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


def raw_path_of(entry: Mapping[str, Any], *, default: str) -> str:
    """The raw output's path in one dvc.lock stage entry: the `paths.raw` param it recorded, else `default`."""
    for values in (entry.get("params") or {}).values():  # {"params.yaml": {"paths": {...}, ...}}
        paths = values.get("paths") if isinstance(values, Mapping) else None
        if isinstance(paths, Mapping) and isinstance(paths.get("raw"), str):
            return str(paths["raw"])
    return default


def split_outs(
    stages: Mapping[str, Mapping[str, Any]], *, default_raw: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(raw, other) outputs, as (path, md5), of one dvc.lock `stages` mapping (or one run-cache entry).

    Raw outputs are recognised by their path, never by a stage name or command (a run-cache entry of an
    edited or discarded ingest command names neither): every directory output at a raw path, i.e. the
    `paths.raw` its entry recorded or `default_raw`. Other: every other output that has an md5 (anonymized
    data, models, reports, the ingest stage's own records): never deleted. An output at a raw path is never
    other, whatever its kind: kept, it would shield raw objects from deletion.
    """
    raw: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for entry in stages.values():
        raw_paths = {posixpath.normpath(p) for p in (raw_path_of(entry, default=default_raw), default_raw)}
        for out in entry.get("outs") or ():
            md5 = out.get("md5") if isinstance(out, Mapping) else None
            if not isinstance(md5, str):
                continue
            path = str(out.get("path"))
            if posixpath.normpath(path) not in raw_paths:
                other.append((path, md5))
            elif md5.endswith(".dir"):
                raw.append((path, md5))
    return raw, other


def version_due(ingested_at: datetime | None, *, raw_days: int, now: datetime) -> bool:
    """A raw version is due for deletion once older than `raw_days`, or when its age is unknown (fail closed)."""
    return ingested_at is None or (now - ingested_at).total_seconds() / DAY_SECONDS > raw_days


def plan_purge_versions(
    versions: Sequence[RawVersion], *, current: str | None, keep: Set[str], due: Set[str]
) -> PurgePlan:
    """Plan the deletion of every due version of the raw output.

    Args:
        versions: every version found (one per .dir md5).
        current: the .dir md5 the workspace's dvc.lock names (its path and file count head the plan), if any.
        keep: every object any non-raw output of any version references (anonymized data: never deleted).
        due: .dir md5s of the versions to delete; objects they share with a version kept stay too.
    Raises:
        InvalidInputError: `due` or `current` names no version, or a version digest is not a directory.
    """
    by_md5 = {v.out_md5: v for v in versions}
    unknown = sorted((set(due) | ({current} if current else set())) - set(by_md5))
    if unknown:
        raise InvalidInputError(f"purge plan: no raw version with digest {unknown}")
    bad = [v.out_md5 for v in versions if not v.out_md5.endswith(".dir")]
    if bad:
        raise InvalidInputError(f"purge plan: raw versions {bad} are not directory outputs")
    kept_raw = {o for v in versions if v.out_md5 not in due for o in v.objects}
    wanted = {o for m in due for o in by_md5[m].objects}
    protected = set(keep) | kept_raw
    head = by_md5.get(current or "") or next((by_md5[m] for m in sorted(due)), None)
    return PurgePlan(
        out_path=head.out_path if head else "", out_md5=head.out_md5 if head else "",
        n_files=head.n_files if head else 0,
        cache_objects=tuple(sorted(o for o in wanted - protected if not o.endswith(".dir")))
        + tuple(sorted(o for o in wanted - protected if o.endswith(".dir"))),
        shared_objects=tuple(sorted(wanted & protected)), versions=tuple(versions), due=tuple(sorted(due)),
    )  # fmt: skip


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
        "versions": [v.as_dict(due=v.out_md5 in plan.due) for v in plan.versions],
        "ingested_at": status.ingested_at,
        "age_days": status.age_days,
        "raw_days": status.raw_days,
        "mlflow_run_id": run_id,
    }

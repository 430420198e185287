"""Which raw versions exist and what every other output keeps, from the records that name outputs (dvc.lock of the
workspace, of git commits, of experiment workspaces, and the run cache's entries): purge's inventory, pure.

Stores are reached through injected functions (`read` an object's bytes, `listing` a directory output's files),
so the rules here are tested without DVC, git or a cache on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tasks.report.retention import RawVersion, split_outs, version_due

Stages = Mapping[str, Mapping[str, Any]]  # a dvc.lock's `stages`, or one run-cache entry under its label
Listing = list[dict[str, str]]  # a `.dir` object: [{"md5": ..., "relpath": ...}, ...]
RUN_RECORD = "runs/ingest.json"  # the ingest output that records when the run started
WORKSPACE = "workspace"  # where the workspace's own dvc.lock names a version
MAX_LABELS = 5  # places named per distinct dvc.lock (the rest of a long history adds nothing to read)


def lock_stages(text: str | bytes) -> dict[str, Any]:
    """The `stages` mapping of a dvc.lock's text ({} when empty or absent)."""
    return dict((yaml.safe_load(text) or {}).get("stages") or {})


def parse_cat_batch(out: bytes, n: int) -> list[bytes | None]:
    """The `n` blobs of `git cat-file --batch` output, in order (None where the spec named no file).

    Each answer is `<oid> blob <size>\\n<bytes>\\n`, or `<spec> missing\\n` (or another type, also None).
    """
    blobs: list[bytes | None] = []
    pos = 0
    for _ in range(n):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[pos : pos + size])
        pos += size + 1
    return blobs


def distinct_locks(labels: Sequence[str], blobs: Sequence[bytes | None]) -> list[tuple[str, Stages]]:
    """(where, stages) of every distinct dvc.lock among `blobs` (one per label; None: that commit has none),
    named by at most `MAX_LABELS` of the labels that hold it, in first-seen order."""
    found: dict[bytes, tuple[list[str], dict[str, Any]]] = {}
    for label, blob in zip(labels, blobs, strict=True):
        if blob is None:
            continue
        if blob not in found:
            found[blob] = ([], lock_stages(blob))
        if len(found[blob][0]) < MAX_LABELS:
            found[blob][0].append(label)
    return [(", ".join(where), stages) for where, stages in found.values()]


def run_cache_stages(entries: Sequence[Any]) -> list[Stages]:
    """The run cache's records as stages mappings (one single-stage lock entry each, labelled by its command;
    anything that is not a mapping is skipped)."""
    return [{f"run {e.get('cmd')}": e} for e in entries if isinstance(e, dict)]


def started_at(record: bytes | None) -> datetime | None:
    """The `started_at` of an ingest run record; None when unreadable or without a time zone (age unknown)."""
    if not record or b"started_at" not in record:
        return None
    started = datetime.fromisoformat(json.loads(record)["started_at"])
    return started if started.tzinfo else None


@dataclass(frozen=True)
class Inventory:
    """Every raw version found, what the other outputs reference, and the workspace's current version."""

    versions: tuple[RawVersion, ...]
    keep: frozenset[str]
    current: str | None
    experiment_raw: tuple[tuple[Path, str | None], ...]  # (raw dir in an experiment workspace, its .dir md5)


def collect_versions(
    sources: Sequence[tuple[str, Stages]],
    *,
    default_raw: str,
    read: Callable[[str], bytes | None],
    listing: Callable[[str, str, bool], Listing | None],
) -> tuple[tuple[RawVersion, ...], frozenset[str], str | None]:
    """The raw versions every source names and the objects every other output references.

    Args:
        sources: (where, stages) of every record; `WORKSPACE` names the workspace's own dvc.lock.
        default_raw: `paths.raw`, for entries that recorded none.
        read: an object's bytes by md5 (None when no store has it).
        listing: (md5, path, in the workspace) → a `.dir` output's listing, None when no copy exists.
    Returns:
        (versions, keep, current): one `RawVersion` per `.dir` md5 (its age the earliest ingest record that
        names it: an older version is due sooner), every object another output needs (a directory's files
        too), and the workspace's current raw md5.
    """
    refs: dict[str, tuple[str, list[str]]] = {}  # .dir md5 → (its path, where it is named)
    times: dict[str, datetime] = {}
    keep: set[str] = set()
    current = None
    for where, stages in sources:
        raw, others = split_outs(stages, default_raw=default_raw)
        for path, md5 in raw:
            refs.setdefault(md5, (path, []))[1].append(where)
            current = md5 if where == WORKSPACE else current
            when = next((started_at(read(m)) for p, m in others if p.endswith(RUN_RECORD)), None)
            if when is not None and (md5 not in times or when < times[md5]):
                times[md5] = when
        for path, md5 in others:
            if md5 in keep:
                continue
            keep.add(md5)
            if md5.endswith(".dir"):  # its files too (a listing nowhere: nothing can restore them either)
                keep |= {e["md5"] for e in listing(md5, path, where == WORKSPACE) or []}
    versions = tuple(
        _version(path, md5, tuple(dict.fromkeys(w)), times.get(md5), listing(md5, path, md5 == current))
        for md5, (path, w) in refs.items()
    )
    return versions, frozenset(keep), current


def _version(
    path: str, md5: str, where: tuple[str, ...], when: datetime | None, found: Listing | None
) -> RawVersion:
    files = None if found is None else tuple(sorted({e["md5"] for e in found}))
    return RawVersion(
        out_path=path, out_md5=md5, refs=where, files=files, ingested_at=when, n_files=len(found or [])
    )


def due_versions(inv: Inventory, *, raw_days: int, now: datetime, expired: bool) -> set[str]:
    """The `.dir` md5s of the versions to delete: each by its own age (`version_due`: unknown is due), whether or
    not its files are here (a clone that never pulled them still has them on a remote), and the workspace's
    current version also when its retention status is expired."""
    return {
        v.out_md5
        for v in inv.versions
        if version_due(v.ingested_at, raw_days=raw_days, now=now) or (v.out_md5 == inv.current and expired)
    }


def experiment_raw(
    workspaces: Sequence[tuple[Path, Stages]], *, default_raw: str
) -> tuple[tuple[Path, str | None], ...]:
    """(raw directory, its `.dir` md5 or None) of each experiment workspace, from its dvc.lock."""
    out = []
    for w, stages in workspaces:
        raw = split_outs(stages, default_raw=default_raw)[0]
        out.append((w / raw[0][0], raw[0][1]) if raw else (w / default_raw, None))
    return tuple(out)

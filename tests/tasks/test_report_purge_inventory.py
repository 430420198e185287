"""purge's inventory without DVC, git or a cache on disk: git's batch output parsed, distinct dvc.locks, the run
cache's entries, ingest ages, the raw versions every record names and the objects other outputs keep."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tasks.report.purge_inventory import (
    MAX_LABELS,
    WORKSPACE,
    Inventory,
    collect_versions,
    distinct_locks,
    due_versions,
    experiment_raw,
    parse_cat_batch,
    run_cache_stages,
    started_at,
)

NOW = datetime(2026, 11, 20, tzinfo=UTC)
CUR, OLD, ANON = "1" * 32 + ".dir", "2" * 32 + ".dir", "3" * 32 + ".dir"
A, B, C, D, REC_CUR, REC_OLD = ("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32, "f" * 32)


def test_git_batch_output_is_split_into_blobs() -> None:
    out = b"0123 blob 6\nhel\nlo\n" b"HEAD:dvc.lock missing\n" b"89ab blob 0\n\n"
    assert parse_cat_batch(out, 3) == [b"hel\nlo", None, b""]
    assert parse_cat_batch(b"", 0) == []


def test_distinct_locks_are_named_by_at_most_five_places() -> None:
    lock = yaml.safe_dump({"stages": {"ingest": {"cmd": "x"}}}).encode()
    other = yaml.safe_dump({"stages": {"train": {"cmd": "y"}}}).encode()
    labels = [f"commit {i}" for i in range(8)] + ["refs/heads/b", "commit none"]
    found = distinct_locks(labels, [lock] * 8 + [other, None])
    assert [w for w, _ in found] == [", ".join(labels[:MAX_LABELS]), "refs/heads/b"]
    assert found[0][1] == {"ingest": {"cmd": "x"}} and found[1][1] == {"train": {"cmd": "y"}}
    assert distinct_locks(["a"], [b""]) == [("a", {})]


def test_run_cache_entries_are_labelled_by_command_and_age_needs_a_zone() -> None:
    assert run_cache_stages([{"cmd": "python -m flows.ingest"}, "junk", None]) == [
        {"run python -m flows.ingest": {"cmd": "python -m flows.ingest"}}]
    assert started_at(json.dumps({"started_at": NOW.isoformat()}).encode()) == NOW
    assert started_at(b'{"started_at": "2026-11-20T10:00:00"}') is None  # no zone: age unknown, so due
    assert started_at(None) is None and started_at(b"{}") is None


def _entry(raw: str, record: str) -> dict:
    return {"ingest": {"outs": [{"path": "data/raw", "md5": raw}, {"path": "reports/runs/ingest.json", "md5": record}]},
            "anonymize": {"outs": [{"path": "data/anonymized", "md5": ANON}]}}


def test_versions_their_ages_and_what_other_outputs_keep() -> None:
    objects = {REC_CUR: json.dumps({"started_at": NOW.isoformat()}).encode(),
               REC_OLD: json.dumps({"started_at": (NOW - timedelta(days=30)).isoformat()}).encode()}
    listings = {CUR: [{"md5": B, "relpath": "b"}, {"md5": C, "relpath": "c"}, {"md5": C, "relpath": "c2"}],
                ANON: [{"md5": D, "relpath": "b"}]}
    calls: list[tuple[str, str, bool]] = []

    def listing(md5: str, path: str, here: bool) -> list[dict[str, str]] | None:
        calls.append((md5, path, here))
        return listings.get(md5)

    sources = [(WORKSPACE, _entry(CUR, REC_CUR)), ("refs/heads/old", _entry(OLD, REC_OLD)),
               ("run-cache", _entry(OLD, REC_CUR))]  # the same version, a younger record: the older one counts
    versions, keep, current = collect_versions(sources, default_raw="data/raw", read=objects.get, listing=listing)
    by = {v.out_md5: v for v in versions}
    assert current == CUR and set(by) == {CUR, OLD}
    assert by[OLD].refs == ("refs/heads/old", "run-cache") and by[OLD].ingested_at == NOW - timedelta(days=30)
    assert by[CUR].files == (B, C) and by[CUR].n_files == 3 and by[OLD].files is None  # no copy of its listing
    assert keep == {REC_CUR, REC_OLD, ANON, D}  # raw never protects raw
    assert (ANON, "data/anonymized", True) in calls and (CUR, "data/raw", True) in calls
    assert (OLD, "data/raw", False) in calls  # only the workspace's own version is hashed from its files
    inv = Inventory(versions=versions, keep=keep, current=current, experiment_raw=())
    assert due_versions(inv, raw_days=7, now=NOW, expired=False) == {OLD}
    assert due_versions(inv, raw_days=7, now=NOW, expired=True) == {OLD, CUR}
    assert due_versions(inv, raw_days=60, now=NOW, expired=False) == set()


def test_experiment_workspaces_raw_dirs() -> None:
    ws = Path("/ws/.dvc/tmp/exps/e1")
    assert experiment_raw([(ws, _entry(OLD, REC_OLD)), (Path("/ws/e2"), {})], default_raw="data/raw") == (
        (ws / "data/raw", OLD), (Path("/ws/e2/data/raw"), None))

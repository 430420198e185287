"""Issue 34 item 6 (review): a run-cache ingest entry is raw data whatever its command.

An ingest run whose `cmd` no committed dvc.lock or dvc.yaml names (an edited stage, a discarded
experiment) leaves its raw output in the run cache. It is found by its path (`paths.raw`, a `.dir`
output), planned for deletion when due, and never counted among the objects other outputs keep.
No dvc or git command runs: the workspace, the run cache and the cache are written by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from flows import io

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, tzinfo=UTC)
CUR, OLD, ANON = "1" * 32 + ".dir", "2" * 32 + ".dir", "3" * 32 + ".dir"
A, B, C, D, REC_CUR, REC_OLD = ("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32, "f" * 32)
CMD = "python -m flows.ingest"


def _put(cache: Path, md5: str, content: object) -> None:
    obj = cache / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_text(content if isinstance(content, str) else json.dumps(content))


def _ingest_entry(cmd: str, raw: str, record: str) -> dict:
    return {"cmd": cmd, "params": {"params.yaml": {"paths": {"raw": "data/raw"}}},
            "outs": [{"path": "data/raw", "md5": raw, "hash": "md5"},
                     {"path": "reports/runs/ingest.json", "md5": record, "hash": "md5"}]}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Current raw version CUR (files B, C; ingested today) in dvc.lock; an old raw version OLD (files A, B;
    ingested 30 days ago) only in the run cache, written by an ingest command nothing else names."""
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no git repo: no git history
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ingest": {"cmd": CMD}}}))
    lock = {"ingest": _ingest_entry(CMD, CUR, REC_CUR),
            "anonymize": {"cmd": "python -m flows.anonymize", "outs": [{"path": "data/anonymized", "md5": ANON}]}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": lock}))
    entry = tmp_path / ".dvc/cache/runs/ab/abcdef/0123"
    entry.parent.mkdir(parents=True)
    entry.write_text(yaml.safe_dump(_ingest_entry(f"{CMD} --n-images 12", OLD, REC_OLD)))
    cache = tmp_path / ".dvc/cache/files/md5"
    _put(cache, CUR, [{"md5": B, "relpath": "images/b.png"}, {"md5": C, "relpath": "images/c.png"}])
    _put(cache, OLD, [{"md5": A, "relpath": "images/a.png"}, {"md5": B, "relpath": "images/b.png"}])
    _put(cache, ANON, [{"md5": D, "relpath": "images/b.png"}])
    _put(cache, REC_CUR, {"started_at": NOW.isoformat()})
    _put(cache, REC_OLD, {"started_at": (NOW - timedelta(days=30)).isoformat()})
    for md5 in (A, B, C, D):
        _put(cache, md5, f"pixels {md5[0]}")
    return tmp_path


def test_a_run_cache_ingest_with_an_unknown_command_is_planned_not_kept(workspace: Path) -> None:
    from flows.purge import Stores, plan
    from tasks.report.retention import retention_status

    params = io.load_params(REPO / "params.yaml")
    assert params.paths.raw == "data/raw" and params.retention.raw_days < 30
    st = Stores(cache=workspace / ".dvc/cache/files/md5", run_cache=workspace / ".dvc/cache/runs")
    status = retention_status(raw_days=params.retention.raw_days, ingested_at=NOW, time_source="test", now=NOW,
                              raw_present=True)
    p, inv = plan(params, st, status, NOW)
    versions = {v.out_md5: v for v in p.versions}
    assert set(versions) == {CUR, OLD} and versions[OLD].refs == ("run-cache",)
    assert OLD not in inv.keep and A not in inv.keep and not {OLD, A, B, C} & inv.keep  # raw never protects raw
    assert p.due == (OLD,) and p.cache_objects == (A, OLD)  # B stays: the current version (not due) has it
    assert p.shared_objects == (B,) and D in inv.keep

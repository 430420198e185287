"""Issue 34 item 6 (pure part): every raw version is planned; only due ones go; anonymized objects never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.errors import InvalidInputError
from tasks.report.retention import RawVersion, plan_purge_versions, split_outs, version_due

NOW = datetime(2026, 11, 20, tzinfo=UTC)
V1, V2 = "1" * 32 + ".dir", "2" * 32 + ".dir"
A, B, C, SAME, ANON = "a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32 + ".dir"


def _v(md5: str, files: tuple[str, ...] | None, days: float | None, refs: tuple[str, ...]) -> RawVersion:
    when = None if days is None else NOW - timedelta(days=days)
    return RawVersion(out_path="data/raw", out_md5=md5, refs=refs, files=files, ingested_at=when,
                      n_files=len(files or ()))


def test_split_outs_uses_the_raw_path_each_lock_recorded() -> None:
    stages = {
        "ingest": {"params": {"params.yaml": {"paths": {"raw": "old/raw"}}},
                   "outs": [{"path": "old/raw", "md5": V1}, {"path": "reports/runs/ingest.json", "md5": A},
                            {"path": "data/raw", "md5": V2}]},
        "anonymize": {"outs": [{"path": "data/anonymized", "md5": ANON}, {"path": "x", "hash": "md5"}]},
    }
    raw, other = split_outs(stages, default_raw="data/raw")
    assert raw[0] == ("old/raw", V1)  # the params of that commit said where raw data lived
    assert raw[1] == ("data/raw", V2)  # and today's raw path is raw too: never kept
    assert other == [("reports/runs/ingest.json", A), ("data/anonymized", ANON)]


def test_only_due_versions_go_and_what_others_need_stays() -> None:
    old = _v(V1, (A, B, SAME), 30, ("refs/exps/ab/cd/exp-1", "run-cache"))  # expired
    new = _v(V2, (B, C), 1, ("workspace",))  # within the limit: its objects stay, B too
    due = {v.out_md5 for v in (old, new) if version_due(v.ingested_at, raw_days=7, now=NOW)}
    assert due == {V1}
    plan = plan_purge_versions([old, new], current=V2, keep={SAME, ANON}, due=due)
    assert plan.cache_objects == (A, V1) and plan.shared_objects == (B, SAME)
    assert (plan.out_md5, plan.n_files, plan.due) == (V2, 2, (V1,))
    everything = plan_purge_versions([old, new], current=V2, keep={SAME, ANON}, due={V1, V2})
    assert everything.cache_objects == (A, B, C, V1, V2) and everything.shared_objects == (SAME,)


def test_unknown_age_is_due_and_an_unlisted_version_still_loses_its_listing() -> None:
    assert version_due(None, raw_days=7, now=NOW) and not version_due(NOW, raw_days=0, now=NOW)
    gone = _v(V1, None, None, ("commit 0123456789",))
    plan = plan_purge_versions([gone], current=None, keep=set(), due={V1})
    assert plan.cache_objects == (V1,) and plan.out_md5 == V1
    assert plan.versions[0].as_dict(due=True)["listed"] is False
    with pytest.raises(InvalidInputError, match="no raw version"):
        plan_purge_versions([gone], current=V2, keep=set(), due={V1})


def test_an_output_at_the_raw_path_is_raw_whatever_command_or_label_wrote_it() -> None:
    """A run-cache entry of an ingest command no dvc.lock names (edited dvc.yaml, discarded experiment):
    its raw output is a raw version, never an object other outputs keep (that would shield raw data)."""
    entry = {"cmd": "python -m flows.ingest --edited", "params": {"params.yaml": {"paths": {"raw": "data/raw"}}},
             "outs": [{"path": "data/raw", "md5": V1}, {"path": "reports/runs/ingest.json", "md5": A}]}
    raw, other = split_outs({"run python -m flows.ingest --edited": entry}, default_raw="data/raw")
    assert raw == [("data/raw", V1)] and other == [("reports/runs/ingest.json", A)]
    no_params = {"outs": [{"path": "data/raw", "md5": V2}, {"path": "./data/raw/", "md5": B}]}  # a file there: neither
    assert split_outs({"anything": no_params}, default_raw="data/raw") == ([("data/raw", V2)], [])

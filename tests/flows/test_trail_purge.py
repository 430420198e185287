"""`privtrail purge`: expired raw data leaves the workspace and the DVC cache; nothing else does.

A temp workspace runs `dvc repro anonymize` on a few builtin images; the clock is moved with `--now`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.flows.conftest import copy_workspace, run, shrink

pytestmark = [pytest.mark.integration]  # issue-7 acceptance, kept in CI; ~2-3 min: dvc repro ingest+anonymize, 4 purge runs

CACHE = ".dvc/cache/files/md5"


def _obj(ws: Path, md5: str) -> Path:
    return ws / CACHE / md5[:2] / md5[2:]


def _outs(ws: Path) -> dict[str, str]:
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for e in lock.values() for o in e.get("outs", [])}


def _records(ws: Path) -> dict[str, str]:
    """sha256 of every file that must survive: anonymized data, metrics, run records, GX results, dvc.lock."""
    files = [
        f
        for d in ("data/anonymized", "reports/metrics", "reports/runs", "reports/gx")
        for f in (ws / d).rglob("*")
        if f.is_file() and f.name != "purge.json"
    ] + [ws / "dvc.lock", ws / "params.yaml"]
    return {str(f.relative_to(ws)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _purge(ws: Path, env: dict[str, str], *args: str) -> str:
    proc = run(["python", "-m", "flows.cli", "purge", *args], ws, env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def purged(tmp_path_factory: pytest.TempPathFactory, workspace_env: dict[str, str]) -> dict:
    ws = copy_workspace(tmp_path_factory.mktemp("purge_ws"))
    shrink(ws / "params.yaml", ingest={"n_images": 16}, gates={"max_quarantine_fraction": 1.0})
    proc = run(["dvc", "repro", "anonymize"], ws, workspace_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    remote = tmp_path_factory.mktemp("dvc_remote")  # retention applies to the DVC remote too
    for cmd in (["dvc", "remote", "add", "-d", "store", str(remote)], ["dvc", "push", "-q"]):
        proc = run(cmd, ws, workspace_env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    outs = _outs(ws)
    raw_listing = json.loads(_obj(ws, outs["data/raw"]).read_text())
    anon_listing = json.loads(_obj(ws, outs["data/anonymized"]).read_text())
    before = {
        "records": _records(ws),
        "raw_files": sorted(p.name for p in (ws / "data/raw").rglob("*") if p.is_file()),
    }
    started = datetime.fromisoformat(json.loads((ws / "reports/runs/ingest.json").read_text())["started_at"])
    later = (started + timedelta(days=8)).isoformat()  # the default limit is 7 days
    steps = {"fresh": _purge(ws, workspace_env), "dry": _purge(ws, workspace_env, "--now", later)}
    steps["raw_after_dry"] = (ws / "data/raw").exists() and _obj(ws, outs["data/raw"]).exists()
    steps["apply"] = _purge(ws, workspace_env, "--apply", "--now", later)
    steps["again"] = _purge(ws, workspace_env, "--apply", "--now", later)
    return {
        "ws": ws,
        "outs": outs,
        "raw": raw_listing,
        "anon": anon_listing,
        "before": before,
        "steps": steps,
        "started": started,
        "remote": remote,
    }


def test_dry_run_is_the_default_and_fresh_data_is_kept(purged: dict) -> None:
    steps = purged["steps"]
    assert "nothing to delete" in steps["fresh"] and "within limit" in steps["fresh"]
    assert "(dry run)" in steps["dry"] and "over the 7-day limit" in steps["dry"]
    assert steps["raw_after_dry"], "a dry run deleted something"
    assert (
        "deleted" in steps["apply"] and "nothing to delete" in steps["again"] and "purged" in steps["again"]
    )


def test_raw_data_is_gone_from_workspace_and_cache(purged: dict) -> None:
    ws, raw, anon = purged["ws"], purged["raw"], purged["anon"]
    assert not (ws / "data/raw").exists()
    assert not _obj(ws, purged["outs"]["data/raw"]).exists()
    shared = {e["md5"] for e in raw} & {e["md5"] for e in anon}
    for e in raw:
        assert _obj(ws, e["md5"]).exists() == (e["md5"] in shared), e["relpath"]
    assert len(raw) >= 16 + 3  # images + manifest, annotations, quarantine list


def test_anonymized_data_and_records_survive(purged: dict) -> None:
    ws, anon = purged["ws"], purged["anon"]
    assert _obj(ws, purged["outs"]["data/anonymized"]).exists()
    for e in anon:  # every anonymized file: in the workspace with its content, and in the cache
        assert hashlib.md5((ws / "data/anonymized" / e["relpath"]).read_bytes()).hexdigest() == e["md5"]
        assert _obj(ws, e["md5"]).exists(), e["relpath"]
    assert _records(ws) == purged["before"]["records"]


def test_counts_and_digests_are_logged_to_ledger_and_mlflow(
    purged: dict, workspace_env: dict[str, str]
) -> None:
    ws, raw, anon = purged["ws"], purged["raw"], purged["anon"]
    ledger = [json.loads(line) for line in (ws / "reports/retention_ledger.jsonl").read_text().splitlines()]
    assert len(ledger) == 1 and ledger[0]["applied"]
    e = ledger[0]
    shared = {x["md5"] for x in raw} & {x["md5"] for x in anon}
    own = sorted({x["md5"] for x in raw} - shared | {purged["outs"]["data/raw"]})
    assert e["deleted_workspace_files"] == len(purged["before"]["raw_files"]) == e["n_files"] == len(raw)
    assert e["deleted_cache_objects"] == len(own) and e["kept_shared_objects"] == len(shared)
    assert e["missing_cache_objects"] == 0 and e["out_md5"] == purged["outs"]["data/raw"]
    assert e["deleted_remote_objects"] == len(own) and e["missing_remote_objects"] == 0
    assert e["objects_sha256"] == hashlib.sha256("\n".join(own).encode()).hexdigest()
    assert e["age_days"] == pytest.approx(8.0, abs=0.01) and e["raw_days"] == 7
    db = workspace_env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        name, status = con.execute(
            "select name, status from runs where run_uuid = ?", (e["mlflow_run_id"],)
        ).fetchone()
        metrics = dict(
            con.execute("select key, value from latest_metrics where run_uuid = ?", (e["mlflow_run_id"],))
        )
        tags = dict(con.execute("select key, value from tags where run_uuid = ?", (e["mlflow_run_id"],)))
    assert (name, status) == ("purge", "FINISHED") and tags["stage"] == "purge"
    assert metrics["purge/deleted_workspace_files"] == len(raw)
    assert (
        metrics["purge/deleted_cache_objects"] == len(own) and tags["objects_sha256"] == e["objects_sha256"]
    )


def test_dvc_sees_missing_data_not_a_change(purged: dict, workspace_env: dict[str, str]) -> None:
    """`dvc repro --allow-missing` neither re-ingests the purged raw data nor reruns anonymize."""
    proc = run(["dvc", "repro", "--allow-missing", "anonymize"], purged["ws"], workspace_env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Running stage" not in proc.stdout


def test_report_flags_expired_raw_data(purged: dict, workspace_env: dict[str, str]) -> None:
    """The retention status the report embeds, before and after purge, at an injected clock."""
    code = (
        "import json, sys; from datetime import datetime; from flows import io; from flows.retention import retention; "
        "print(json.dumps(retention(io.load_params(), now=datetime.fromisoformat(sys.argv[1])).as_dict()))"
    )
    later = (purged["started"] + timedelta(days=8)).isoformat()
    proc = run(["python", "-c", code, later], purged["ws"], workspace_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = json.loads(proc.stdout)
    assert status["state"] == "purged" and not status["expired"] and not status["raw_present"]
    assert status["time_source"] == "reports/runs/ingest.json started_at"
    assert datetime.fromisoformat(status["checked_at"]) == datetime.fromisoformat(later).astimezone(UTC)


def test_raw_data_is_gone_from_the_dvc_remote_and_anonymized_data_stays(purged: dict) -> None:
    remote = purged["remote"] / "files" / "md5"
    on_remote = lambda md5: (remote / md5[:2] / md5[2:]).exists()  # noqa: E731
    anon = {e["md5"] for e in purged["anon"]}
    raw_only = [e["md5"] for e in purged["raw"] if e["md5"] not in anon]
    assert raw_only and not any(on_remote(m) for m in raw_only)
    assert not on_remote(purged["outs"]["data/raw"])  # the .dir listing too
    assert all(on_remote(m) for m in anon) and on_remote(purged["outs"]["data/anonymized"])

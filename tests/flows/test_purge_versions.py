"""Issue 34 item 6: purge deletes every version of the raw data, from the cache and the DVC remote.

A toy DVC pipeline with the real stage names (ingest writes `data/raw` and its run record, anonymize
derives `data/anonymized`) in a temp git repo: raw version 1 is committed and pushed; raw version 2 comes
from an experiment with other ingest params (`dvc exp run -S ingest.n_images=…`: named only by
`refs/exps/*` and the run cache) and is pushed too; the workspace is then back on version 1. One anonymized
file is byte-identical to its raw file (an image with nothing to redact): that object is shared and stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.flows.test_credentials_redacted import fake_mlflow

pytestmark = [pytest.mark.integration]  # ~20 s: a dozen dvc and git commands on a toy pipeline

REPO = Path(__file__).resolve().parents[2]
STARTED = datetime(2026, 1, 1, tzinfo=UTC)
N1, N2 = 10, 12  # images of raw versions 1 and 2 (ingest.n_images; the schema needs >= 10)
INGEST = """\
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
raw = pathlib.Path(p["paths"]["raw"])
for i in range(p["ingest"]["n_images"]):
    (raw / "images").mkdir(parents=True, exist_ok=True)
    (raw / "images" / f"img_{i}.png").write_text(f"RAW PIXELS n={p['ingest']['n_images']} i={i}")
(raw / "images" / "empty_street.png").write_text("NOTHING TO REDACT")
pathlib.Path("reports/runs").mkdir(parents=True, exist_ok=True)
json.dump({"run_id": "r", "started_at": "STARTED"}, open("reports/runs/ingest.json", "w"))
""".replace("STARTED", STARTED.isoformat())
ANONYMIZE = """\
import pathlib
for f in sorted(pathlib.Path("data/raw").rglob("*.png")):
    out = pathlib.Path("data/anonymized") / f.relative_to("data/raw")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = f.read_text()
    out.write_text(text if text == "NOTHING TO REDACT" else "ANONYMIZED " + text.replace("RAW PIXELS", ""))
"""
DVC_YAML = {"stages": {
    "ingest": {"cmd": "python ingest.py", "deps": ["ingest.py"], "params": ["seed", "paths", "ingest"],
               "outs": ["data/raw", "reports/runs/ingest.json"]},
    "anonymize": {"cmd": "python anonymize.py", "deps": ["anonymize.py", "data/raw"], "outs": ["data/anonymized"]},
}}


def _run(ws: Path, env: dict[str, str], *cmd: str) -> str:
    proc = subprocess.run(list(cmd), cwd=ws, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def _outs(ws: Path, lock_text: str) -> dict[str, str]:
    stages = yaml.safe_load(lock_text)["stages"]
    return {o["path"]: o["md5"] for e in stages.values() for o in e["outs"]}


def _objects(cache: Path, dir_md5: str) -> set[str]:
    """The .dir object and every file object it lists."""
    obj = cache / dir_md5[:2] / dir_md5[2:]
    return {dir_md5} | {e["md5"] for e in json.loads(obj.read_text())}


def _has(root: Path, md5: str) -> bool:
    return (root / md5[:2] / md5[2:]).exists()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    ws, remote = tmp_path_factory.mktemp("purge_versions"), tmp_path_factory.mktemp("dvc_remote")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["n_images"] = N1
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (ws / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (ws / "ingest.py").write_text(INGEST)
    (ws / "anonymize.py").write_text(ANONYMIZE)
    _run(ws, env, "git", "init", "-q")
    _run(ws, env, "dvc", "init", "-q")
    _run(ws, env, "dvc", "remote", "add", "-d", "store", str(remote))
    _run(ws, env, "dvc", "repro", "-q")
    _run(ws, env, "git", "add", "-A")
    _run(ws, env, "git", "commit", "-qm", "raw v1")
    _run(ws, env, "dvc", "push", "-q")
    v1 = (ws / "dvc.lock").read_text()
    _run(ws, env, "dvc", "exp", "run", "-q", "-S", f"ingest.n_images={N2}")  # raw v2: named by refs/exps only
    _run(ws, env, "dvc", "push", "-q")
    v2 = (ws / "dvc.lock").read_text()
    _run(ws, env, "git", "checkout", "-q", "--", "params.yaml", "dvc.lock")
    _run(ws, env, "dvc", "checkout", "-q")
    assert (ws / "dvc.lock").read_text() == v1 and "refs/exps" in _run(ws, env, "git", "for-each-ref")
    return {"ws": ws, "remote": remote / "files/md5", "cache": ws / ".dvc/cache/files/md5",
            "v1": _outs(ws, v1), "v2": _outs(ws, v2)}


def test_purge_deletes_every_raw_version_from_cache_and_remote(two_versions: dict, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    ws, cache, remote, v1, v2 = (two_versions[k] for k in ("ws", "cache", "remote", "v1", "v2"))
    raw = _objects(cache, v1["data/raw"]) | _objects(cache, v2["data/raw"])
    anon = _objects(cache, v1["data/anonymized"]) | _objects(cache, v2["data/anonymized"])
    shared = raw & anon  # the image with nothing to redact
    assert v1["data/raw"] != v2["data/raw"] and len(shared) == 1 and len(raw - shared) == N1 + N2 + 2
    assert all(_has(cache, m) and _has(remote, m) for m in raw | anon)  # before: both versions everywhere

    monkeypatch.chdir(ws)
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(ws))
    fake_mlflow(monkeypatch)
    from flows.purge import purge

    later = STARTED + timedelta(days=30)
    dry = purge(now=later)  # the default is a dry run: a listing, nothing deleted
    versions = {v["out_md5"]: v for v in dry["listing"]}
    assert set(versions) == {v1["data/raw"], v2["data/raw"]} and all(v["due"] for v in versions.values())
    assert any("refs/exps" in r for r in versions[v2["data/raw"]]["refs"]), versions[v2["data/raw"]]["refs"]
    assert "run-cache" in versions[v2["data/raw"]]["refs"] and "workspace" in versions[v1["data/raw"]]["refs"]
    assert versions[v2["data/raw"]]["present"] == {"cache": N2 + 2, "remote store": N2 + 2}
    assert dry["planned_cache_objects"] == len(raw - shared) and not dry["applied"]
    assert all(_has(cache, m) and _has(remote, m) for m in raw) and (ws / "data/raw").exists()
    from flows import cli

    assert cli.main(["purge", "--now", later.isoformat()]) == 0  # `privtrail purge`: the dry-run listing
    out = capsys.readouterr().out
    assert "(dry run)" in out and f"--apply deletes {N1 + 1} workspace files and {len(raw - shared)} objects" in out
    assert f"DUE  data/raw {v2['data/raw']} ({N2 + 1} files" in out and "refs/exps" in out

    done = purge(apply=True, now=later)
    assert done["applied"] and done["deleted_cache_objects"] == len(raw - shared) == done["deleted_remote_objects"]
    assert not any(_has(cache, m) or _has(remote, m) for m in raw - shared)  # no raw object of either version
    assert all(_has(cache, m) and _has(remote, m) for m in anon)  # anonymized data stays, shared object too
    assert not (ws / "data/raw").exists() and (ws / "data/anonymized/images/img_0.png").exists()
    ledger = [json.loads(line) for line in (ws / "reports/retention_ledger.jsonl").read_text().splitlines()]
    assert len(ledger) == 1 and ledger[0]["applied"] and ledger[0]["kept_shared_objects"] == 1
    assert {v["out_md5"] for v in ledger[0]["versions"] if v["due"]} == {v1["data/raw"], v2["data/raw"]}
    assert ledger[0]["objects_sha256"] and ledger[0]["deleted_remote_objects"] == len(raw - shared)

    again = purge(apply=True, now=later)  # nothing left: nothing deleted, nothing appended
    assert not again["applied"] and again["due_objects_present"] == 0
    assert len((ws / "reports/retention_ledger.jsonl").read_text().splitlines()) == 1

"""Issue 34 item 5: a tracking URI and a git remote that carry credentials are recorded without them.

Every place a URI or remote is written down is exercised with the real flow code: the stage run record
(`reports/runs/<stage>.json`), the report's lineage rendered into compliance.json/html/md, and the tags
and description promote sends to the model registry (captured at the MLflow client).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flows import io, promote, report, tracking
from tasks.params import Gates
from tasks.report.compliance import build_compliance
from tasks.report.html import render_html, render_markdown
from tests.tasks.test_report import RECORD, report_metrics

REPO = Path(__file__).resolve().parents[2]
PASSWORD, TOKEN = "S3cretDbPassw0rd", "ghp_T0kenSecret9876"
STORE = f"postgresql://privtrail:{PASSWORD}@db.internal:5432/mlflow?sslmode=require"
REMOTE = f"https://{TOKEN}@github.com/acme/privtrail.git"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "params.yaml"], ["commit", "-qm", "ws"], ["remote", "add", "origin", REMOTE]):
        subprocess.run([*git, *cmd], cwd=tmp_path, check=True)
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", STORE)
    return tmp_path


class RecordingClient:
    """Records every string the flows send to the MLflow client (tags, descriptions)."""

    sent: list[str] = []

    def __init__(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            RecordingClient.sent.extend(str(a) for a in (*args, *kwargs.values()))
            return SimpleNamespace(version="1", run_id="run-report", name="m")
        return call


def fake_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextmanager
    def start_run(**_: Any) -> Any:
        yield SimpleNamespace(info=SimpleNamespace(run_id="run-1"))

    fake = SimpleNamespace(start_run=start_run, set_tags=lambda t: RecordingClient.sent.extend(map(str, t.values())),
                           set_tag=lambda k, v: RecordingClient.sent.append(str(v)), log_params=lambda p: None,
                           log_metrics=lambda m: None, log_artifact=lambda path, artifact_path=None: None,
                           register_model=lambda uri, name: SimpleNamespace(version="1"))
    monkeypatch.setattr(tracking, "mlflow", fake)
    monkeypatch.setattr(tracking, "configure", lambda: "0")
    monkeypatch.setattr(tracking, "MlflowClient", RecordingClient)
    RecordingClient.sent = []


def _leaks(text: str) -> list[str]:
    return [s for s in (PASSWORD, TOKEN) if s in text]


def test_tracking_uri_and_remote_are_recorded_without_credentials(workspace: Path) -> None:
    assert tracking.tracking_uri() == "postgresql://privtrail:***@db.internal:5432/mlflow?sslmode=require"
    assert tracking.git_remote() == "https://***@github.com/acme/privtrail.git"
    assert tracking._store_uri() == STORE  # connecting still uses the real one


def test_no_output_carries_the_credentials(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mlflow(monkeypatch)
    params = io.load_params()
    for stage in report.UPSTREAM:  # the stage run records, written by the real `stage_run`
        with tracking.stage_run(stage, params=params, inputs=[], outputs=[]) as run:
            run.extra["model_uri"] = "models:/m-1"
    with tracking.stage_run("report", params=params, inputs=[], outputs=[]):
        pass
    runs = [p.read_text() for p in (workspace / "reports/runs").glob("*.json")]
    assert len(runs) == len(report.UPSTREAM) + 1 and all("db.internal" in r and not _leaks(r) for r in runs)

    lineage = report._lineage(params)
    c = build_compliance(metrics=report_metrics(), dp_record=RECORD, epsilon_recomputed=2.985, gates=Gates(),
                         lineage=lineage, quarantine_reasons=[])
    outputs = {"json": json.dumps(c), "html": render_html(c, title="T", figures={}, reproduce=lineage["reproduce"]),
               "md": render_markdown(c, title="T", figures={}, reproduce=lineage["reproduce"])}
    for kind, text in outputs.items():
        assert "github.com/acme/privtrail.git" in text and not _leaks(text), kind
    assert "db.internal" in outputs["json"] and "db.internal" in outputs["md"]

    c["inventory"] = {"datasets": []}
    promote._register(c, params)
    sent = "\n".join(RecordingClient.sent)
    assert "github.com/acme/privtrail.git" in sent and not _leaks(sent)

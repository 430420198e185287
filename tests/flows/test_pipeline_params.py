"""`python -m flows.pipeline repro` refuses params that cannot work before `dvc repro` starts any stage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.errors import InvalidInputError


def test_the_pipeline_refuses_before_dvc_runs(raw_params: dict, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import pipeline

    raw_params["ingest"]["folder"] = "/data/camera7"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    calls: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    with pytest.raises(InvalidInputError, match="ingest.folder would be ignored"):
        pipeline.repro()
    assert calls == []


def test_a_refusal_at_promote_still_records_lineage_and_pushes(raw_params: dict, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduled flow: when only promote refused (the verdict is FAIL), the run's report, lineage tags and
    data are still recorded and pushed, and the flow then fails naming the refusal; any other failure of
    `dvc repro` stops before pushing."""
    import logging

    from flows import pipeline
    from tasks.errors import PipelineError

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    done: list[str] = []
    monkeypatch.setattr(pipeline, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setattr(pipeline.tracking, "sync_lineage", lambda **_: done.append("lineage") or {})
    monkeypatch.setattr(pipeline, "default_remote", lambda: "storage")
    monkeypatch.setattr(pipeline, "_dvc", lambda *args: done.append(" ".join(args)) or [])
    refused = ["Running stage 'report':", "privtrail promote: error: promote: refusing to register the model",
               "ERROR: failed to reproduce 'promote': failed to run: python -m flows.promote, exited with 1"]
    monkeypatch.setattr(pipeline, "_run", lambda cmd: (255, refused))
    with pytest.raises(PipelineError, match="promote refused the model .*pushed to storage"):
        pipeline.pipeline.fn()
    assert done == ["lineage", "push --remote storage"]
    done.clear()
    broken = ["ERROR: failed to reproduce 'audit': failed to run: python -m flows.audit, exited with 1"]
    monkeypatch.setattr(pipeline, "_run", lambda cmd: (255, broken))
    with pytest.raises(PipelineError, match="`dvc repro` failed"):
        pipeline.pipeline.fn()
    assert done == []

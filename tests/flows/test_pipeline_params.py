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

"""The report stage's own derivations without Prefect or MLflow: the source's handling in words, the DP plan a
record is checked against, the reproduce command, the stage metrics and tags."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.errors import InvalidInputError
from tasks.params import Params, parse_params
from tasks.report import stage
from tasks.report.stage import (
    TAG_LIMIT,
    reproduce_command,
    source_handling,
    stage_metrics,
    stage_tags,
)


def test_source_handling_in_words(raw_params: dict) -> None:
    builtin = parse_params(raw_params)
    text = source_handling(builtin.ingest, builtin.anonymize, n_resized=0)
    assert text.startswith("generated from assets bundled in pinned packages")
    raw_params["ingest"] |= {"source": "folder", "folder": "photos", "label_from": "dir", "max_side": 1024}
    raw_params["anonymize"]["detect_max_side"] = 640
    folder = parse_params(raw_params)
    assert source_handling(folder.ingest, folder.anonymize, n_resized=7) == (
        "labels from the first directory level; no ground-truth boxes; whole dataset downscaled at ingest to at "
        "most 1024 px (7 images); detectors saw copies of at most 640 px, output at full resolution")
    raw_params["ingest"] |= {"source": "csv", "labels": "labels.csv", "max_side": None}
    raw_params["anonymize"]["detect_max_side"] = None
    csv = parse_params(raw_params)
    assert source_handling(csv.ingest, csv.anonymize, n_resized=0) == (
        "labels from labels.csv; no ground-truth boxes; kept at full resolution")


def test_record_plan_per_image_and_per_unit(params: Params, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, dict[str, Any]]] = []
    monkeypatch.setattr(stage, "dp_plan", lambda n, **kw: calls.append(("image", n, kw)) or "image plan")
    monkeypatch.setattr(stage, "unit_dp_plan", lambda n, **kw: calls.append(("unit", n, kw)) or "unit plan")
    t = params.train
    kw = {"batch_size": t.batch_size, "epochs": t.epochs, "max_grad_norm": t.dp.max_grad_norm,
          "target_epsilon": t.dp.target_epsilon, "target_delta": t.dp.target_delta, "accountant": t.dp.accountant}
    assert stage.record_plan({"epsilon": 1.0}, n_train=400, n_kept=None, train=t) == "image plan"
    unit = {"privacy_unit": {"unit": "person", "cap": "3"}}
    assert stage.record_plan(unit, n_train=400, n_kept=300, train=t) == "unit plan"
    assert calls == [("image", 400, kw), ("unit", 300, kw | {"cap": 3})]  # per unit: the kept images, the cap
    with pytest.raises(InvalidInputError, match="kept_train_ids.json"):
        stage.record_plan(unit, n_train=400, n_kept=None, train=t)


def test_reproduce_command_says_when_the_commit_alone_does_not() -> None:
    clean = reproduce_command(remote="https://git.example/p.git", sha="abc123")
    assert clean == "git clone https://git.example/p.git privtrail && cd privtrail && git checkout abc123 && make pipeline"
    dirty = reproduce_command(remote="/ws", sha="abc123-dirty")
    assert "git checkout abc123 &&" in dirty and dirty.endswith("this commit alone does not reproduce it")


def test_stage_metrics_and_tags() -> None:
    compliance = {"verdict": "fail", "gate_states": {"pass": 2, "fail": 1},
                  "gates": [{"name": "a", "passed": True, "status": "pass", "reason": None},
                            {"name": "b", "passed": True, "status": "pass", "reason": ""},
                            {"name": "c", "passed": False, "status": "fail", "reason": "x" * 400}],
                  "inventory": {"retention": {"expired": True}}}
    m = stage_metrics(compliance, epsilon=None)
    assert m == {"report/passed": 0.0, "report/gates_passed": 2, "report/gates_total": 3, "report/gates_pass": 2,
                 "report/gates_fail": 1, "report/raw_retention_expired": 1.0}
    assert stage_metrics(compliance | {"verdict": "pass"}, epsilon=2.5)["report/epsilon_recomputed"] == 2.5
    tags = stage_tags(compliance)
    assert tags["verdict"] == "fail" and tags["gate.a"] == "pass: " and len(tags["gate.c"]) == TAG_LIMIT

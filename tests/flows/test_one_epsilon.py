"""Issue 34 item 7 through the flows: the report refuses a short history; promote tags the checked ε."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from flows import io, promote, report
from tasks.errors import PrivacyBudgetError
from tasks.params import Gates
from tasks.report.accounting import checked_epsilon
from tasks.report.compliance import build_compliance
from tasks.train.checked import dp_plan
from tasks.train.dp import recompute_epsilon
from tests.flows.test_credentials_redacted import RecordingClient, fake_mlflow, workspace  # noqa: F401 (fixture)
from tests.flows.test_report_dp_plan import write_workspace
from tests.tasks.test_report import report_metrics
from tests.tasks.test_report_accounting import gdp_record


def test_report_refuses_a_history_shorter_than_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    write_workspace(tmp_path, n_train=100, names=["a", "b"], train={"epochs": 1, "batch_size": 50},
                    dp={"target_epsilon": 5.0, "target_delta": 1e-5, "max_grad_norm": 1.0, "accountant": "gdp"})
    params = io.load_params()
    sigma = dp_plan(100, batch_size=50, epochs=1, max_grad_norm=1.0, target_epsilon=5.0, target_delta=1e-5,
                    accountant="gdp").noise_multiplier
    rec = replace(gdp_record(), noise_multiplier=sigma, history=((sigma, 0.5, 2),))
    short = replace(rec, history=((sigma, 0.5, 1),), steps=1)
    with pytest.raises(PrivacyBudgetError, match=r"steps recorded 1, planned 2; history has 1 steps, planned 2"):
        report._recompute(params, short.as_dict())
    assert report._recompute(params, rec.as_dict()) == pytest.approx(recompute_epsilon(rec))


def test_registry_tag_is_the_checked_epsilon_when_pld_is_larger(workspace: Path,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mlflow(monkeypatch)
    rec = gdp_record()
    c = build_compliance(metrics=report_metrics(), dp_record=rec.as_dict(), epsilon_recomputed=recompute_epsilon(rec),
                         gates=Gates(), lineage={"git_sha": "abc", "dvc_lock_sha256": "f" * 64, "model_uri": "models:/m-1",
                                                 "mlflow_runs": {s: f"run-{s}" for s in report.UPSTREAM}},
                         quarantine_reasons=[])
    checked = checked_epsilon(rec)
    assert c["dp"]["epsilon_checked"] == pytest.approx(checked.pld) and checked.pld > checked.opacus + 0.5
    io.write_json("reports/runs/report.json", {"run_id": "run-report"})
    captured: dict[str, dict[str, str]] = {}
    monkeypatch.setattr(promote.tracking, "register_model",
                        lambda **kw: captured.setdefault("tags", dict(kw["tags"])) and "1")
    promote._register(c | {"inventory": {"datasets": []}}, io.load_params())
    tags = captured["tags"]
    assert float(tags["epsilon"]) == pytest.approx(checked.pld)  # not Opacus' smaller value
    assert float(tags["epsilon_opacus"]) == pytest.approx(checked.opacus)
    assert f"ε = {checked.pld:.4g}" in " ".join(RecordingClient.sent)  # the version's description states the same ε

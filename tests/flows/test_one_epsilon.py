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
from tasks.train.dp import recompute_epsilon
from tests.flows.test_credentials_redacted import RecordingClient, fake_mlflow, workspace  # noqa: F401 (fixture)
from tests.tasks.test_report import report_metrics
from tests.tasks.test_report_accounting import gdp_record


def test_report_refuses_a_history_shorter_than_the_schedule() -> None:
    short = replace(gdp_record(), history=((1.0, 0.5, 1),), steps=1)
    with pytest.raises(PrivacyBudgetError, match=r"1 steps recorded, 2 planned \(1 epochs x 2\)"):
        report._recompute(short)
    assert report._recompute(gdp_record()) == pytest.approx(recompute_epsilon(gdp_record()))


def test_registry_tag_is_the_checked_epsilon_when_pld_is_larger(workspace: Path,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mlflow(monkeypatch)
    rec = gdp_record()
    c = build_compliance(metrics=report_metrics(), dp_record=rec.as_dict(), epsilon_recomputed=report._recompute(rec),
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

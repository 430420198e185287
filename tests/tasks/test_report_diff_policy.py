"""The diff against the promoted model never reads a policy decision or lost evidence as an improvement.

A gate that newly became waived (a policy decision) or not_assessed (evidence lost) is worse, whatever it was
before; the verdict's fail → pass is worse when a loosened threshold or a new waiver may have caused it; a
privacy budget raised above the promoted model's is worse.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasks.report.diff import diff_compliance
from tests.tasks import test_report_diff as base
from tests.tasks.test_report_diff import REF


def _with(verdict: str, **states: str) -> dict[str, Any]:
    c = base._compliance(verdict=verdict)
    c["gates"] = [{"name": n, "status": s, "passed": s == "passed", "value": None, "threshold": 0.9, "op": ">="}
                  for n, s in states.items()]
    return c


@pytest.mark.parametrize(("before", "after", "worse"), [
    ("failed", "waived", True),  # a waiver is a policy decision, not a fix
    ("failed", "not_assessed", True),  # the evidence that failed it is gone, not better
    ("passed", "waived", True),
    ("passed", "not_assessed", True),
    ("waived", "not_assessed", True),
    ("not_assessed", "waived", True),
    ("waived", "failed", True),
    ("not_assessed", "failed", True),
    ("failed", "passed", False),
    ("waived", "passed", False),
    ("not_assessed", "passed", False),
])
def test_a_gate_that_newly_is_waived_or_not_assessed_is_worse(before: str, after: str, worse: bool) -> None:
    rows = base._rows(diff_compliance(_with("fail", min_face_redaction_recall=after),
                                 _with("fail", min_face_redaction_recall=before), previous_ref=REF))
    assert rows["gates.min_face_redaction_recall"]["worse"] is worse


def test_a_verdict_that_passes_because_of_a_new_waiver_is_worse() -> None:
    d = diff_compliance(_with("pass", min_face_redaction_recall="waived"),
                        _with("fail", min_face_redaction_recall="failed"), previous_ref=REF)
    assert (base._rows(d)["verdict"]["before"], base._rows(d)["verdict"]["after"], base._rows(d)["verdict"]["worse"]) == (
        "fail", "pass", True)


def test_a_verdict_that_passes_under_a_loosened_threshold_is_worse() -> None:
    before, after = _with("fail", min_face_redaction_recall="failed"), _with("pass", min_face_redaction_recall="passed")
    after["gates"][0]["threshold"] = 0.5
    rows = base._rows(diff_compliance(after, before, previous_ref=REF))
    assert rows["gates.min_face_redaction_recall.threshold"]["worse"] is True
    assert rows["verdict"]["worse"] is True


def test_a_verdict_that_passes_because_a_gate_passes_now_is_better() -> None:
    d = diff_compliance(_with("pass", min_face_redaction_recall="passed"),
                        _with("fail", min_face_redaction_recall="failed"), previous_ref=REF)
    assert base._rows(d)["verdict"]["worse"] is False
    # a waiver the promoted model already had is no new decision
    d = diff_compliance(_with("pass", min_face_redaction_recall="passed", max_epsilon="waived"),
                        _with("fail", min_face_redaction_recall="failed", max_epsilon="waived"), previous_ref=REF)
    assert base._rows(d)["verdict"]["worse"] is False


def test_a_raised_privacy_budget_is_worse() -> None:
    before, after = base._compliance(), base._compliance()
    before["dp"]["ledger_max_total_epsilon"], after["dp"]["ledger_max_total_epsilon"] = 10.0, 15.0
    row = base._rows(diff_compliance(after, before, previous_ref=REF))["dp.ledger_max_total_epsilon"]
    assert (row["before"], row["after"], row["worse"]) == (10.0, 15.0, True)
    assert base._rows(diff_compliance(before, after, previous_ref=REF))["dp.ledger_max_total_epsilon"]["worse"] is False


def test_a_budget_policy_change_against_a_report_without_a_budget_compares_with_the_policy() -> None:
    before, after = base._compliance(), base._compliance()
    after["dp"]["ledger_max_total_epsilon"] = 15.0
    after["policy_changes"] = [{"name": "budget.max_total_epsilon", "default": 10.0, "value": 15.0,
                                "reason": "a second study on the same split, approved by the DPO", "op": "<="}]
    row = base._rows(diff_compliance(after, before, previous_ref=REF))["dp.ledger_max_total_epsilon"]
    assert (row["before"], row["after"], row["worse"]) == (10.0, 15.0, True)

"""The report flow lists a raised privacy budget with the gates' policy changes (first page, compliance.json)."""

from __future__ import annotations

from flows import report
from tasks.params import BUDGET_POLICY, parse_params

WHY = "a second study on the same split, approved by the DPO on 2026-11-30"


def test_the_report_lists_a_raised_budget_and_a_loosened_gate() -> None:
    p = parse_params({"train": {"budget": {"max_total_epsilon": 12.0}}, "gates": {"max_epsilon": 4.0},
                      "gates_policy_changes": {BUDGET_POLICY: WHY, "max_epsilon": WHY}})
    assert [(ch["name"], ch["default"], ch["value"]) for ch in report._policy_changes(p)] == [
        ("max_epsilon", 3.0, 4.0), (BUDGET_POLICY, 10.0, 12.0)]

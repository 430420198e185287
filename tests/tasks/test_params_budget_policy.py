"""train.budget.max_total_epsilon is policy: bounded, and raising it above the packaged default needs a reason."""

from __future__ import annotations

import pytest

from tasks.errors import InvalidInputError
from tasks.params import BUDGET_POLICY, BudgetParams, parse_params
from tasks.report.first_page import first_page
from tasks.report.gates import PolicyChange, policy_changes
from tests.tasks.test_report import build_report, report_metrics

WHY = "a second study on the same split, approved by the DPO on 2026-11-30"


def _budget(value: float, **reasons: str) -> dict:
    return {"train": {"budget": {"max_total_epsilon": value}}, "gates_policy_changes": reasons}


@pytest.mark.parametrize("value", [1e6, 20.5, 0.0, -1.0])
def test_the_budget_is_bounded(value: float) -> None:
    with pytest.raises(InvalidInputError, match=r"train\.budget\.max_total_epsilon"):
        parse_params(_budget(value, **{BUDGET_POLICY: WHY}))


def test_raising_the_budget_above_the_policy_needs_a_written_reason() -> None:
    assert BUDGET_POLICY == "budget.max_total_epsilon" and BudgetParams().max_total_epsilon == 10.0
    with pytest.raises(InvalidInputError, match=r"gates_policy_changes: .*train\.budget\.max_total_epsilon 15 is "
                                                r"looser than the packaged policy 10.*budget\.max_total_epsilon"):
        parse_params(_budget(15.0))
    with pytest.raises(InvalidInputError, match="written reason"):
        parse_params(_budget(15.0, **{BUDGET_POLICY: " "}))
    p = parse_params(_budget(15.0, **{BUDGET_POLICY: WHY}))
    assert policy_changes(p.gates, p.gates_policy_changes, budget=p.train.budget) == [
        PolicyChange(BUDGET_POLICY, 10.0, 15.0, WHY, "<=")]


def test_a_budget_at_or_below_the_policy_is_no_change() -> None:
    for value in (10.0, 4.0):
        p = parse_params(_budget(value))
        assert policy_changes(p.gates, p.gates_policy_changes, budget=p.train.budget) == []


def test_policy_changes_refuses_a_raised_budget_without_a_reason_for_any_caller() -> None:
    p = parse_params(_budget(15.0, **{BUDGET_POLICY: WHY}))
    with pytest.raises(InvalidInputError, match=r"budget\.max_total_epsilon"):
        policy_changes(p.gates, {}, budget=p.train.budget)


def test_a_raised_budget_is_listed_on_the_first_page() -> None:
    p = parse_params(_budget(15.0, **{BUDGET_POLICY: WHY}))
    listed = [ch.as_dict() for ch in policy_changes(p.gates, p.gates_policy_changes, budget=p.train.budget)]
    c = build_report(report_metrics(), policy_changes=listed)
    lines = " ".join(next(q for q in first_page(c)["questions"] if q["id"] == "open")["lines"])
    assert f"Policy change: budget.max_total_epsilon is 15 where the packaged policy is 10 — reason given: {WHY}." in lines

"""Issue 34 item 7 (review): a DP record is checked against the plan (params + data), not only against itself."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.errors import PrivacyBudgetError
from tasks.train.checked import DpPlan, check_plan, check_skipped, dp_plan, plan_mismatches
from tasks.train.dp import DpTrainingRecord, history_mismatches, planned_history

DP = {"max_grad_norm": 1.0, "target_epsilon": 5.0, "target_delta": 1e-5, "accountant": "gdp"}


def _plan() -> DpPlan:
    return dp_plan(100, batch_size=50, epochs=1, **DP)


def _record(plan: DpPlan) -> DpTrainingRecord:
    """What the planned run records (its ε is not checked here)."""
    return DpTrainingRecord(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=plan.steps,
                            epochs=plan.epochs, accountant=plan.accountant, target_epsilon=plan.target_epsilon,
                            target_delta=plan.target_delta, epsilon=4.9, max_grad_norm=plan.max_grad_norm,
                            n_train=plan.n_train, batch_size=plan.batch_size, poisson_sampling=True,
                            history=((plan.noise_multiplier, plan.sample_rate, plan.steps),))


def test_the_plan_is_opacus_calibration_on_the_train_stage_schedule() -> None:
    plan = _plan()
    assert ((plan.noise_multiplier, plan.sample_rate, plan.steps),) == planned_history(
        100, batch_size=50, epochs=1, target_epsilon=5.0, target_delta=1e-5, accountant="gdp")
    assert dp_plan(100, batch_size=256, epochs=1, **DP).batch_size == 100  # capped as flows/train.py caps it
    check_plan(_record(plan), plan)  # the planned record passes


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"n_train": 99}, "n_train recorded 99, planned 100"),  # same q, steps and σ: only the plan tells
        ({"batch_size": 34}, "batch_size recorded 34, planned 50"),  # ceil(100 / 34) = 3 != 2 batches
        ({"max_grad_norm": 2.0}, "max_grad_norm recorded 2, planned 1"),
        ({"target_delta": 1e-3}, "target_delta recorded 0.001, planned 1e-05"),
        ({"accountant": "rdp"}, "accountant recorded 'rdp', planned 'gdp'"),
    ],
)
def test_a_record_that_is_not_the_plan_is_refused(change: dict, named: str) -> None:
    plan = _plan()
    rec = replace(_record(plan), **change)
    assert named in plan_mismatches(rec, plan)
    with pytest.raises(PrivacyBudgetError, match="not the mechanism the params and the data plan") as err:
        check_plan(rec, plan)
    assert named in str(err.value) and "n_train=100, batch_size=50, epochs=1" in str(err.value)


def test_a_self_consistent_lower_sigma_passes_the_self_check_but_not_the_plan() -> None:
    plan = _plan()
    sigma = plan.noise_multiplier / 2
    rec = replace(_record(plan), noise_multiplier=sigma, history=((sigma, plan.sample_rate, plan.steps),))
    assert history_mismatches(rec) == []
    assert any(m.startswith("noise_multiplier recorded") for m in plan_mismatches(rec, plan))
    with pytest.raises(PrivacyBudgetError, match="history step 0: sigma"):
        check_plan(rec, plan)


def test_a_skipped_record_with_labels_is_refused() -> None:
    check_skipped("no labels", n_classes=0)
    with pytest.raises(PrivacyBudgetError, match="names 3 classes"):
        check_skipped("no labels", n_classes=3)

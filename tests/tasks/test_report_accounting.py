"""Issue 34 item 7: one ε everywhere (max of Opacus and PLD), priced only from a history that matches the schedule."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from tasks.errors import PrivacyBudgetError
from tasks.report.accounting import checked_epsilon, pld_epsilon
from tasks.train.dp import DpTrainingRecord, history_mismatches, loop_schedule, recompute_epsilon
from tasks.train.ledger import budget_status, entry_from_record

DIGEST = hashlib.sha256(b"a").hexdigest()


def gdp_record() -> DpTrainingRecord:
    """100 images, batch 50, 1 epoch: q = 0.5, 2 steps at σ = 1. Opacus' GDP (a CLT approximation) prices it
    ε ≈ 4.01; the PLD accountant ≈ 4.85: a record whose checked ε is the PLD one."""
    eps = 4.0098  # what Opacus' gdp accountant says of this history at δ 1e-5
    return DpTrainingRecord(noise_multiplier=1.0, sample_rate=0.5, steps=2, epochs=1, accountant="gdp",
                            target_epsilon=5.0, target_delta=1e-5, epsilon=eps, max_grad_norm=1.0, n_train=100,
                            batch_size=50, poisson_sampling=True, history=((1.0, 0.5, 2),))


def test_loop_schedule_is_opacus_poisson_loader() -> None:
    assert loop_schedule(1200, batch_size=256, epochs=10) == (0.2, 50)
    # Opacus runs int(1 / q) steps per epoch: one less than the 93 batches for this length
    rate, steps = loop_schedule(93 * 10, batch_size=10, epochs=2)
    assert rate == 1 / 92 and steps == 2 * 92  # priced at q = 1/92, above the 1/93 it samples


def test_checked_epsilon_is_the_larger_accountant() -> None:
    rec = gdp_record()
    c = checked_epsilon(rec)
    assert c.opacus == pytest.approx(recompute_epsilon(rec)) and c.opacus == pytest.approx(rec.epsilon, abs=1e-3)
    assert c.pld == pytest.approx(pld_epsilon(rec.history, delta=1e-5)) and c.pld > c.opacus + 0.5
    assert c.checked == c.pld


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"history": ((1.0, 0.5, 1),), "steps": 1}, "1 steps recorded, 2 planned"),  # fewer steps than planned
        ({"history": ((1.0, 0.5, 1),)}, "1 steps recorded, 2 planned"),  # only the history is short
        ({"history": ((1.0, 0.25, 2),)}, "q = 0.25, planned 0.5 (1 / 2 steps per epoch)"),
        ({"history": ((1.5, 0.5, 2),)}, "sigma = 1.5, recorded noise multiplier 1"),
        ({"epochs": 3}, "2 steps recorded, 6 planned"),
        ({"poisson_sampling": False}, "poisson_sampling is false"),
    ],
)
def test_a_history_that_is_not_the_schedule_is_refused(change: dict, named: str) -> None:
    rec = replace(gdp_record(), **change)
    assert any(named in m for m in history_mismatches(rec))
    with pytest.raises(PrivacyBudgetError, match="does not match the training schedule") as err:
        checked_epsilon(rec)
    assert named in str(err.value) and "n_train=100, batch_size=50" in str(err.value)


def test_ledger_carries_the_checked_epsilon() -> None:
    rec = gdp_record()
    entry = entry_from_record(rec, dataset_digest=DIGEST, time="t", mlflow_run_id="r", git_sha="s")
    assert entry.epsilon == pytest.approx(checked_epsilon(rec).pld) and entry.epsilon > rec.epsilon + 0.5
    status = budget_status([entry], dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=10.0)
    assert status.epsilon_total >= entry.epsilon  # the composed total never states less than the run's own
    short = replace(rec, history=((1.0, 0.5, 1),))
    with pytest.raises(PrivacyBudgetError, match="1 steps recorded, 2 planned"):
        entry_from_record(short, dataset_digest=DIGEST, time="t", mlflow_run_id="r", git_sha="s")


@pytest.mark.parametrize(("n", "batch"), [(96, 32), (93, 1)])  # 93 batches: Opacus runs int(1/q) = 92 steps
def test_a_real_training_history_matches_its_schedule(n: int, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.train import dp
    from tasks.train.dp import train_dp
    from tests.tasks.test_train import toy_data

    # at 93 batches Opacus calibrates σ at q = 1/93 but prices 1/92, so it overshoots the target by ~0.4 %
    # (a training-side quirk, not the history's): this test checks the history only
    monkeypatch.setattr(dp, "check_target_epsilon", lambda record: None)
    x, y = toy_data(n, seed=0)
    rec = train_dp(x, y, model_name="gn_cnn", epochs=1, batch_size=batch, lr=0.5, momentum=0.9, target_epsilon=8.0,
                   target_delta=1e-5, max_grad_norm=1.0, accountant="rdp", seed=0, physical_batch_size=32).record
    assert rec is not None and history_mismatches(rec) == []
    assert rec.steps == loop_schedule(n, batch_size=batch, epochs=1)[1]

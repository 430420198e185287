"""ε is checked against an accountant that shares no code with Opacus: Google's dp-accounting PLD.

PRV (the default) must agree with PLD within 3 %; RDP is an upper bound, so it must not be below it.
"""

from __future__ import annotations

import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant

from tasks.train.dp import DpTrainingRecord, planned_history, recompute_epsilon


def _pld_epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    for sigma, q, steps in history:
        event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
        acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return float(acc.get_epsilon(delta))


def _record(history: tuple[tuple[float, float, int], ...], accountant: str, delta: float) -> DpTrainingRecord:
    sigma, q, steps = history[0]
    return DpTrainingRecord(noise_multiplier=sigma, sample_rate=q, steps=steps, epochs=10, accountant=accountant,
                            target_epsilon=3.0, target_delta=delta, epsilon=float("nan"), max_grad_norm=1.0,
                            n_train=1200, batch_size=256, poisson_sampling=True, history=history)


# the default schedule (1,200 train images, batch 256, 10 epochs, ε=3, δ=1e-5) and two others
CASES = [(1200, 256, 10, 3.0, 1e-5), (1200, 256, 10, 1.0, 1e-5), (5000, 128, 5, 8.0, 1e-6)]


@pytest.mark.parametrize(("n", "batch", "epochs", "eps", "delta"), CASES)
def test_prv_matches_pld_and_rdp_bounds_it(n: int, batch: int, epochs: int, eps: float, delta: float) -> None:
    history = planned_history(n, batch_size=batch, epochs=epochs, target_epsilon=eps, target_delta=delta,
                              accountant="prv")
    pld = _pld_epsilon(history, delta)
    prv = recompute_epsilon(_record(history, "prv", delta))
    rdp = recompute_epsilon(_record(history, "rdp", delta))
    assert prv == pytest.approx(pld, rel=0.03), (prv, pld)
    assert rdp >= pld * 0.999, (rdp, pld)
    assert prv <= eps * 1.01

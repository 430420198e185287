"""The checked ε of a DP record: its history checked against the schedule, then priced by two accountants.

A fresh Opacus accountant of the recorded type (`tasks.train.dp.recompute_epsilon`) and the
privacy-loss-distribution accountant of Google's dp-accounting (Meiser & Mohammadi 2018; Doroshenko et
al. 2022), which shares no code with Opacus and is tight for the subsampled Gaussian. The larger of the two
is the one ε privtrail states (`dp/epsilon_checked`): the report's headline, the registry tag, the ledger.
It lives with training because the ledger, written by the train stage, records it; the report re-exports it
from `tasks.report.accounting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks.errors import InvalidInputError
from tasks.train.dp import DpTrainingRecord, check_history, recompute_epsilon

PLD_DISCRETIZATION = 1e-4  # value discretisation interval: ε within ~0.1 % of the exact PLD on our schedules


def pld_epsilon(history: Sequence[Sequence[float]], *, delta: float) -> float:
    """ε at `delta` of a DP-SGD history ((noise_multiplier, sample_rate, steps), ...) under Poisson sampling.

    Raises:
        InvalidInputError: an empty history, or a step with σ <= 0 or q outside (0, 1].
    """
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant

    if not history:
        raise InvalidInputError("pld_epsilon: empty mechanism history")
    acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)
    for sigma, q, steps in history:
        if not (sigma > 0 and 0 < q <= 1 and int(steps) >= 1):
            raise InvalidInputError(f"pld_epsilon: bad history step (sigma={sigma}, q={q}, steps={steps})")
        event = dp_accounting.PoissonSampledDpEvent(float(q), dp_accounting.GaussianDpEvent(float(sigma)))
        acc.compose(dp_accounting.SelfComposedDpEvent(event, int(steps)))
    return float(acc.get_epsilon(delta))


@dataclass(frozen=True)
class CheckedEpsilon:
    """A DP record priced twice at its δ: the one ε privtrail states is the larger (`checked`)."""

    opacus: float  # a fresh Opacus accountant of the recorded type (`recompute_epsilon`)
    pld: float  # dp-accounting's PLD accountant, which shares no code with Opacus
    delta: float

    @property
    def checked(self) -> float:
        """max(Opacus, PLD): `dp/epsilon_checked`, the ε of the headline, the registry tag and the ledger."""
        return max(self.opacus, self.pld)


def checked_epsilon(record: DpTrainingRecord) -> CheckedEpsilon:
    """Check the record's mechanism history against its schedule, then price it with both accountants.

    Raises:
        PrivacyBudgetError: the history is not the mechanism the schedule ran (`check_history`): fewer
            steps, another sample rate or noise multiplier than n_train, batch_size, epochs and σ give.
        InvalidInputError: an unknown accountant or a malformed history.
    """
    check_history(record)
    return CheckedEpsilon(opacus=recompute_epsilon(record), pld=pld_epsilon(record.history, delta=record.target_delta),
                          delta=record.target_delta)

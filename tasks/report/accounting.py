"""An accountant that shares no code with Opacus (Google's dp-accounting, PLD) to cross-check the reported ε.

The report re-prices the recorded mechanism history twice: with a fresh Opacus accountant of the recorded
type (`tasks.train.dp.recompute_epsilon`) and with the privacy-loss-distribution accountant of dp-accounting
(Meiser & Mohammadi 2018; Doroshenko et al. 2022), which is tight for the subsampled Gaussian. An ε that
the PLD accountant prices higher than training reported (e.g. the CLT-based `gdp` accountant on few steps)
fails the agreement gate: the check can disagree because it does not reuse Opacus. Both prices, and the
larger one (`checked_epsilon`, the one ε of headline, registry tag and ledger), come from `tasks.train.checked`.
"""

from __future__ import annotations

from tasks.errors import InvalidInputError
from tasks.train.checked import PLD_DISCRETIZATION, CheckedEpsilon, checked_epsilon, pld_epsilon

__all__ = ["PLD_DISCRETIZATION", "CheckedEpsilon", "checked_epsilon", "group_privacy", "pld_epsilon",
           "understatement"]


def understatement(reported: float, independent: float) -> float:
    """How much lower the reported ε is than the independent one, relative to it (<= 0: not understated)."""
    if independent <= 0:
        raise InvalidInputError(f"understatement: independent epsilon must be > 0, got {independent}")
    return (independent - reported) / independent


def group_privacy(epsilon: float, delta: float, *, k: int) -> tuple[float, float]:
    """(ε, δ) for a group of `k` records (one person in `k` images) from per-record (ε, δ)-DP.

    The standard group-privacy bound (Dwork & Roth 2014, Thm 2.2 generalised; Vadhan 2017, Lemma 2.2):
    kε and k·e^{(k−1)ε}·δ (capped at 1: a δ of 1 promises nothing).
    """
    if k < 1:
        raise InvalidInputError(f"group_privacy: k must be >= 1, got {k}")
    import math

    exponent = (k - 1) * epsilon
    group_delta = 1.0 if exponent > 700 else min(1.0, k * math.exp(exponent) * delta)
    return k * epsilon, group_delta

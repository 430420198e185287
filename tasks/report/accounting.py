"""An accountant that shares no code with Opacus (Google's dp-accounting, PLD) to cross-check the reported ε.

The report re-prices the recorded mechanism history twice: with a fresh Opacus accountant of the recorded
type (`tasks.train.dp.recompute_epsilon`) and with the privacy-loss-distribution accountant of dp-accounting
(Meiser & Mohammadi 2018; Doroshenko et al. 2022), which is tight for the subsampled Gaussian. An ε that
the PLD accountant prices higher than training reported (e.g. the CLT-based `gdp` accountant on few steps)
fails the agreement gate: the check can disagree because it does not reuse Opacus.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.errors import InvalidInputError

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

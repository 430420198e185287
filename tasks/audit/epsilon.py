"""Empirical lower bounds on ε from an attack's success (Jagielski et al. 2020, "Auditing Differentially
Private Machine Learning: How Private is Private SGD?").

(ε, δ)-DP forces every membership test to satisfy TPR ≤ e^ε · FPR + δ and (1 − FPR) ≤ e^ε · (1 − TPR) + δ.
From counts at a threshold, Clopper–Pearson intervals give, with confidence 1 − α, an upper bound on FPR
and on FNR; ε_LB = max(log((1 − δ − FNR_hi) / FPR_hi), log((1 − δ − FPR_hi) / FNR_hi)). The threshold is
chosen on one half of the samples and the bound computed on the other half, so picking the best of
many thresholds does not inflate the confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import beta

from tasks.errors import InvalidInputError, PrivacyBudgetError


class EmpiricalPrivacyViolationError(PrivacyBudgetError):
    """An attack proved more leakage than the accountant's ε allows: the DP implementation is broken."""


def clopper_pearson(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided (1 − alpha) binomial confidence interval for k successes in n trials.

    Raises:
        InvalidInputError: n < 1, k outside [0, n], alpha outside (0, 1).
    """
    if n < 1 or not 0 <= k <= n or not 0 < alpha < 1:
        raise InvalidInputError(
            f"clopper_pearson: need 0 <= k <= n, n >= 1, 0 < alpha < 1; got k={k}, n={n}, alpha={alpha}"
        )
    # Kept: the closed form that scipy.stats.binomtest(k, n).proportion_ci(method="exact") solves by root
    # finding, 20x slower (pinned to it in tests/tasks/test_library_pins.py).
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def epsilon_from_rates(fpr_hi: float, fnr_hi: float, *, delta: float) -> float:
    """ε lower bound implied by upper bounds on FPR and FNR (0 when nothing is proved)."""
    cands = [0.0]
    for a, b in ((fnr_hi, fpr_hi), (fpr_hi, fnr_hi)):
        if b > 0 and 1 - delta - a > 0:
            cands.append(math.log((1 - delta - a) / b))
    return max(cands)


def _bound_at(
    members: NDArray[np.float64], nonmembers: NDArray[np.float64], t: float, *, delta: float, alpha: float
) -> float:
    fp, fn = int(np.sum(nonmembers >= t)), int(np.sum(members < t))
    fpr_hi = clopper_pearson(fp, nonmembers.size, alpha=alpha)[1]
    fnr_hi = clopper_pearson(fn, members.size, alpha=alpha)[1]
    return epsilon_from_rates(fpr_hi, fnr_hi, delta=delta)


def _thresholds(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    u = np.unique(scores)
    return np.concatenate([u, [np.inf]])  # "everything is a member" … "nothing is"


@dataclass(frozen=True)
class EpsilonBound:
    """Empirical ε lower bound of one attack (confidence 1 − alpha), the threshold it used, and the counts."""

    epsilon_lower_bound: float
    threshold: float
    alpha: float
    n_members: int
    n_nonmembers: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """{"<prefix>/empirical_epsilon_lower_bound": ε_LB}."""
        return {f"{prefix}/empirical_epsilon_lower_bound": self.epsilon_lower_bound}


def _split(n: int, rng: np.random.Generator) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    perm = rng.permutation(n)
    return perm[: n // 2], perm[n // 2 :]


def empirical_epsilon(
    member_scores: NDArray[np.floating],
    nonmember_scores: NDArray[np.floating],
    *,
    delta: float,
    alpha: float = 0.05,
    seed: int = 0,
) -> EpsilonBound:
    """Lower-bound ε from membership scores (higher = member) with Clopper–Pearson intervals.

    The best threshold on a random half of each side is evaluated on the other half.

    Args:
        member_scores: (M,) scores of training samples; nonmember_scores: (K,) of held-out samples (M, K >= 2).
        delta: the δ of the DP guarantee being audited.
        alpha: 1 − confidence of the bound.
        seed: seed of the selection/evaluation split.
    Raises:
        InvalidInputError: fewer than 2 scores on a side, non-finite scores, δ outside [0, 1).
    """
    m, n = np.asarray(member_scores, np.float64), np.asarray(nonmember_scores, np.float64)
    if m.ndim != 1 or n.ndim != 1 or m.size < 2 or n.size < 2:
        raise InvalidInputError(f"empirical_epsilon: need >= 2 scores per side, got {m.shape} {n.shape}")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(n))) or not 0 <= delta < 1:
        raise InvalidInputError(
            f"empirical_epsilon: scores must be finite and 0 <= delta < 1 (delta={delta})"
        )
    rng = np.random.default_rng(seed)
    (m_sel, m_eval), (n_sel, n_eval) = _split(m.size, rng), _split(n.size, rng)
    ts = _thresholds(np.concatenate([m[m_sel], n[n_sel]]))
    sel = [_bound_at(m[m_sel], n[n_sel], t, delta=delta, alpha=alpha) for t in ts]
    t_best = float(ts[int(np.argmax(sel))])
    eps = _bound_at(m[m_eval], n[n_eval], t_best, delta=delta, alpha=alpha)
    return EpsilonBound(eps, t_best, alpha, int(m_eval.size), int(n_eval.size))


def check_empirical_epsilon(lower_bound: float, theoretical: float, *, source: str) -> None:
    """Fail loudly when an attack proves more than ε allows.

    Raises:
        EmpiricalPrivacyViolationError: lower_bound > theoretical, naming both and where the bound came from.
    """
    if lower_bound > theoretical:
        raise EmpiricalPrivacyViolationError(
            f"audit: empirical epsilon lower bound {lower_bound:.4f} from {source} exceeds the accountant's "
            f"epsilon {theoretical:.4f}: the DP-SGD implementation or its accounting is broken"
        )

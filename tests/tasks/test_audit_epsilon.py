"""Known-answer tests of the empirical ε lower bounds: Clopper–Pearson, Jagielski et al., Steinke et al."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.audit.canary import canary_audit, epsilon_from_guesses, guesses, make_canaries
from tasks.audit.epsilon import (
    EmpiricalPrivacyViolationError,
    check_empirical_epsilon,
    clopper_pearson,
    empirical_epsilon,
    epsilon_from_rates,
)
from tasks.errors import InvalidInputError, PrivacyBudgetError


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (5, 10, 0.1870860, 0.8129140),  # R: binom.test(5, 10)$conf.int
        (0, 10, 0.0, 1 - 0.025 ** (1 / 10)),  # closed form at k = 0: 0.3084971
        (10, 10, 0.025 ** (1 / 10), 1.0),
        (1, 100, 0.0002531460, 0.0544593854),  # R: binom.test(1, 100)$conf.int
    ],
)
def test_clopper_pearson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = clopper_pearson(k, n, alpha=0.05)
    assert got == pytest.approx((lo, hi), abs=1e-6)


def test_clopper_pearson_rejects_bad_counts() -> None:
    with pytest.raises(InvalidInputError, match="k <= n"):
        clopper_pearson(11, 10)


def test_epsilon_from_rates_known_value() -> None:
    assert epsilon_from_rates(0.01, 0.5, delta=0.0) == pytest.approx(math.log(50))
    assert epsilon_from_rates(0.5, 0.5, delta=0.0) == 0.0
    assert epsilon_from_rates(1.0, 0.0, delta=0.0) == 0.0


def test_identical_scores_give_epsilon_zero() -> None:
    b = empirical_epsilon(np.ones(500), np.ones(500), delta=1e-5)
    assert b.epsilon_lower_bound == 0.0
    rng = np.random.default_rng(0)
    same = empirical_epsilon(rng.normal(size=2000), rng.normal(size=2000), delta=1e-5)
    assert same.epsilon_lower_bound < 0.3


def test_perfect_separation_gives_the_largest_provable_bound() -> None:
    # 1000 per side, evaluated on 500 + 500: FPR_hi = FNR_hi = 1 - 0.025^(1/500) -> eps = log((1 - u) / u)
    b = empirical_epsilon(np.full(1000, 2.0), np.zeros(1000), delta=0.0, seed=1)
    u = 1 - 0.025 ** (1 / 500)
    assert b.epsilon_lower_bound == pytest.approx(math.log((1 - u) / u), rel=1e-6)
    assert (b.n_members, b.n_nonmembers) == (500, 500)


def test_bound_grows_with_separation() -> None:
    rng = np.random.default_rng(2)
    eps = [
        empirical_epsilon(rng.normal(mu, 1, 3000), rng.normal(0, 1, 3000), delta=1e-5).epsilon_lower_bound
        for mu in (0.5, 2.0, 4.0)
    ]
    assert eps[0] < eps[1] < eps[2]


def test_violation_is_a_typed_loud_error() -> None:
    check_empirical_epsilon(0.4, 3.0, source="test")
    with pytest.raises(EmpiricalPrivacyViolationError, match="4.0000 from lira exceeds.*3.0000"):
        check_empirical_epsilon(4.0, 3.0, source="lira")
    assert issubclass(EmpiricalPrivacyViolationError, PrivacyBudgetError)


def test_steinke_all_correct_known_value() -> None:
    # 64 correct of 64: the bound solves p^64 = 0.05, p = e^eps / (1 + e^eps).
    p = 0.05 ** (1 / 64)
    assert epsilon_from_guesses(64, 64, beta=0.05) == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
    assert epsilon_from_guesses(32, 64) == 0.0


def test_canary_audit_and_guesses() -> None:
    g = guesses(np.array([0.1, 5.0, -3.0, 0.2]), k_pos=1, k_neg=1)
    assert g.tolist() == [0, 1, -1, 0]
    included = np.array([True] * 50 + [False] * 50)
    perfect = canary_audit(included.astype(float), included, k_pos=20, k_neg=20)
    assert perfect.n_correct == 40 and perfect.epsilon_lower_bound > 1.5
    blind = canary_audit(np.zeros(100), included, k_pos=20, k_neg=20)
    assert blind.epsilon_lower_bound < perfect.epsilon_lower_bound
    x, y, inc = make_canaries(32, shape=(1, 8, 8), num_classes=10, seed=0)
    assert x.shape == (32, 1, 8, 8) and float(x.min()) >= 0 and float(x.max()) <= 1 and 5 < inc.sum() < 27
    assert np.array_equal(make_canaries(32, shape=(1, 8, 8), num_classes=10, seed=0)[2], inc)

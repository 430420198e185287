"""One-run privacy auditing with inserted canaries (Steinke, Nasr & Jagielski 2023, "Privacy Auditing
with One (1) Training Run").

m synthetic canaries are each inserted into the training set independently with probability 1/2.
After one DP training run the auditor scores every canary, guesses "IN" for the k_pos highest scores
and "OUT" for the k_neg lowest, abstaining on the rest. Under ε-DP the number W of correct guesses
among r = k_pos + k_neg is stochastically dominated by Binomial(r, e^ε / (1 + e^ε)) (their Theorem 3.1),
so the largest ε at which W is still implausible at level β is a lower bound on ε with confidence
1 − β. δ is not accounted for here (their §5 adds an O(m·δ) term; with δ = 1e-5 and a few hundred
canaries it is below 1e-2 of β); the bound is therefore of ε in the (ε, ~0) sense, as in their tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter
from scipy.optimize import brentq
from scipy.stats import binom

from tasks.errors import InvalidInputError


def make_canaries(
    m: int, *, shape: tuple[int, int, int], num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, NDArray[np.bool_]]:
    """Synthetic canaries (no user data): smoothed random ink blobs with random labels, and which are IN.

    Args:
        m: number of canaries.
        shape: (C, s, s) of one model input.
        num_classes: labels are drawn uniformly from range(num_classes).
        seed: seed of the images, labels and the fair coin that inserts each canary.
    Returns:
        x: (m, C, s, s) float32 in [0, 1]; y: (m,) int64; included: (m,) bool.
    """
    if m < 2:
        raise InvalidInputError(f"make_canaries: need at least 2 canaries, got {m}")
    rng = np.random.default_rng(seed)
    noise = (rng.random((m, *shape)) < 0.15).astype(np.float64)
    blobs = gaussian_filter(noise, sigma=(0, 0, 1.0, 1.0))
    x = np.clip(blobs / np.maximum(blobs.max(axis=(1, 2, 3), keepdims=True), 1e-9), 0, 1).astype(np.float32)
    y = rng.integers(0, num_classes, size=m)
    included = rng.random(m) < 0.5
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), included


def make_canary_persons(
    persons: int, k: int, *, shape: tuple[int, int, int], num_classes: int, seed: int, blend: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor, NDArray[np.intp], NDArray[np.bool_]]:
    """Synthetic canary *persons* (no user data): k images of each one identity, inserted or left out together.

    A person's images share a base canary (`make_canaries`) and its label, each blended with its own blob (weight
    `blend`): alike as one person's photos are, not identical. The coin is flipped per person.

    Args:
        persons: canary persons; k: images each (the run's cap per person); shape, num_classes: as `make_canaries`.
        seed: seed of the images, labels and coins.
    Returns:
        x: (persons·k, C, s, s) float32 in [0, 1]; y: (persons·k,) int64; owner: (persons·k,) each image's person;
        included: (persons,) bool.
    Raises:
        InvalidInputError: persons < 2, k < 1 or blend outside [0, 1).
    """
    if persons < 2 or k < 1 or not 0 <= blend < 1:
        raise InvalidInputError(
            f"make_canary_persons: need persons >= 2, k >= 1, 0 <= blend < 1; got {persons}, {k}, {blend}"
        )
    base, y, included = make_canaries(persons, shape=shape, num_classes=num_classes, seed=seed)
    own, _, _ = make_canaries(max(persons * k, 2), shape=shape, num_classes=num_classes, seed=seed + 1)
    owner = np.repeat(np.arange(persons), k)
    x = (1 - blend) * base[torch.from_numpy(owner)] + blend * own[: persons * k]
    return x.clamp(0, 1), y[torch.from_numpy(owner)], owner, included


def person_canary_scores(scores: NDArray[np.floating], owner: NDArray[np.integer]) -> NDArray[np.float64]:
    """(persons,) each canary person's score: the sum of their images' scores (`owner`: each image's person)."""
    s, o = np.asarray(scores, np.float64), np.asarray(owner, np.intp)
    if s.shape != o.shape or s.ndim != 1:
        raise InvalidInputError(f"person_canary_scores: scores {s.shape} and owner {o.shape} differ")
    return np.bincount(o, weights=s).astype(np.float64)


def guesses(scores: NDArray[np.floating], *, k_pos: int, k_neg: int) -> NDArray[np.int8]:
    """(m,) guesses: +1 for the k_pos highest scores, −1 for the k_neg lowest, 0 (abstain) otherwise."""
    s = np.asarray(scores, np.float64)
    if k_pos + k_neg > s.size or k_pos < 0 or k_neg < 0:
        raise InvalidInputError(f"guesses: k_pos + k_neg = {k_pos + k_neg} must be <= {s.size} canaries")
    order = np.argsort(s, kind="stable")
    out = np.zeros(s.size, np.int8)
    out[order[s.size - k_pos :]] = 1
    out[order[:k_neg]] = -1
    return out


def p_value(correct: int, total: int, *, eps: float, delta: float = 0.0, m: int | None = None) -> float:
    """P-value of `correct` right guesses out of `total` if training were (ε, δ)-DP.

    Steinke, Nasr & Jagielski 2023 (Thm 5.2 and their Appendix D): P[Bin(r, q) >= v] + 2mδ · max_i
    P[v > Bin(r, q) >= v − i] / i with q = e^ε / (1 + e^ε), m canaries; δ = 0 is the pure-DP test.
    """
    q = 1 / (1 + np.exp(-eps))
    tail = float(binom.sf(correct - 1, total, q))
    if delta == 0 or correct == 0:
        return min(tail, 1.0)
    below = binom.pmf(correct - np.arange(1, correct + 1), total, q).cumsum()  # P[v > Bin >= v - i], i = 1..v
    worst = float(np.max(below / np.arange(1, correct + 1)))
    return min(tail + worst * delta * 2 * (m if m is not None else total), 1.0)


def epsilon_from_guesses(
    correct: int, total: int, *, beta: float = 0.05, delta: float = 0.0, m: int | None = None
) -> float:
    """Largest ε whose (ε, δ)-DP hypothesis `p_value` rejects at level beta (0 if none is rejected)."""
    if total < 1 or not 0 <= correct <= total:
        raise InvalidInputError(
            f"epsilon_from_guesses: need 0 <= correct <= total, total >= 1; got {correct}/{total}"
        )

    def tail(eps: float) -> float:  # the p-value grows with ε: the bound is where it reaches beta
        return p_value(correct, total, eps=eps, delta=delta, m=m) - beta

    if tail(0.0) >= 0:
        return 0.0
    if tail(50.0) <= 0:
        return 50.0
    return float(brentq(tail, 0.0, 50.0, xtol=1e-6))


@dataclass(frozen=True)
class CanaryAudit:
    """One-run audit: m canaries, r guesses, W correct, and the ε lower bound at confidence 1 − beta."""

    n_canaries: int
    n_guesses: int
    n_correct: int
    beta: float
    epsilon_lower_bound: float
    delta: float = 0.0
    ceiling: float = float("nan")  # the largest bound this design can certify: every guess right

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Keys "<prefix>/canary/<field>"."""
        keys = ("n_canaries", "n_guesses", "n_correct", "epsilon_lower_bound", "beta", "ceiling")
        return {f"{prefix}/canary/{k}": float(getattr(self, k)) for k in keys}


def audit_ceiling(m: int, guesses_made: int, *, beta: float, delta: float) -> float:
    """The largest ε lower bound m canaries and r guesses can ever certify (all r right) at level beta and δ:
    an audit whose ceiling is below the claimed ε cannot catch a broken DP implementation."""
    return epsilon_from_guesses(guesses_made, guesses_made, beta=beta, delta=delta, m=m)


def canary_audit(
    scores: NDArray[np.floating],
    included: NDArray[np.bool_],
    *,
    k_pos: int,
    k_neg: int,
    beta: float = 0.05,
    delta: float = 0.0,
) -> CanaryAudit:
    """Steinke et al.'s one-run ε lower bound from canary scores (higher = more likely IN).

    Args:
        scores: (m,) canary scores under the model trained with the included canaries.
        included: (m,) bool, the coin flips.
        k_pos, k_neg: number of IN / OUT guesses.
        beta: 1 − confidence of the bound; delta: the δ of the (ε, δ) hypothesis tested (Thm 5.2).
    """
    inc = np.asarray(included, bool)
    g = guesses(scores, k_pos=k_pos, k_neg=k_neg)
    if g.shape != inc.shape:
        raise InvalidInputError(f"canary_audit: scores {g.shape} and included {inc.shape} differ")
    made = g != 0
    correct = int(np.sum((g[made] == 1) == inc[made]))
    total = int(made.sum())
    eps = epsilon_from_guesses(correct, total, beta=beta, delta=delta, m=inc.size)
    ceiling = audit_ceiling(inc.size, total, beta=beta, delta=delta)
    return CanaryAudit(inc.size, total, correct, beta, eps, delta, ceiling)

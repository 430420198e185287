"""Likelihood-ratio membership inference, LiRA (Carlini et al. 2022, "Membership Inference Attacks From
First Principles").

Each sample's logit-scaled confidence φ = log(p_y / (1 - p_y)) is close to Gaussian over training runs.
Shadow models trained on random halves of the data give, per sample, φ's distribution when the sample
was IN the training set and when it was OUT. Online LiRA scores the target's φ by the Gaussian
likelihood ratio IN vs OUT; offline LiRA (no shadow trained on the sample) by a one-sided test
against OUT only. With few shadows the per-sample variance is noisy: `fixed_variance` uses one
variance pooled over all samples (Carlini et al. §VI-B).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp
from scipy.stats import norm

from tasks.errors import InvalidInputError


def logit_confidence(logits: NDArray[np.floating], labels: NDArray[np.integer]) -> NDArray[np.float64]:
    """φ = z_y − logsumexp_{c≠y} z_c = log(p_y / (1 − p_y)), computed stably from logits.

    Args:
        logits: (..., N, C) logits (leading axes, e.g. K shadow models, are kept).
        labels: (N,) int labels.
    Returns:
        (..., N) float64.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.shape[-2] != y.shape[0] or y.ndim != 1:
        raise InvalidInputError(f"logit_confidence: logits {z.shape} do not match labels {y.shape}")
    onehot = np.eye(z.shape[-1], dtype=bool)[y]  # (N, C)
    zy = np.take_along_axis(z, np.broadcast_to(y[:, None], z.shape[:-1] + (1,)), axis=-1)[..., 0]
    out: NDArray[np.float64] = zy - logsumexp(np.where(onehot, -np.inf, z), axis=-1)
    return out


def _masked_stats(
    phi: NDArray[np.float64], mask: NDArray[np.bool_], *, fixed_variance: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-sample mean and std of φ over the shadows where `mask` holds; pooled std if fixed_variance."""
    count = mask.sum(0)
    if np.any(count == 0):
        raise InvalidInputError(
            f"LiRA: {int(np.sum(count == 0))} samples have no IN/OUT shadow model (raise K)"
        )
    mean = np.where(mask, phi, 0).sum(0) / count
    resid = np.where(mask, phi - mean, 0.0)
    if fixed_variance or np.any(count < 2):
        std = np.full(mean.shape, np.sqrt((resid**2).sum() / max(mask.sum() - mean.size, 1)))
    else:
        std = np.sqrt((resid**2).sum(0) / (count - 1))
    return mean, np.maximum(std, 1e-6)


def _check(
    target_phi: NDArray[np.floating], shadow_phi: NDArray[np.floating], shadow_in: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    t, s, m = (
        np.asarray(target_phi, np.float64),
        np.asarray(shadow_phi, np.float64),
        np.asarray(shadow_in, bool),
    )
    if t.ndim != 1 or s.shape != m.shape or s.ndim != 2 or s.shape[1] != t.size:
        raise InvalidInputError(
            f"LiRA: need target (N,), shadows (K, N), mask (K, N); got {t.shape} {s.shape} {m.shape}"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(s))):
        raise InvalidInputError("LiRA: confidences are not finite")
    return t, s, m


def lira_online(
    target_phi: NDArray[np.floating],
    shadow_phi: NDArray[np.floating],
    shadow_in: NDArray[np.bool_],
    *,
    fixed_variance: bool = True,
) -> NDArray[np.float64]:
    """Online LiRA score log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out) (higher = member).

    Args:
        target_phi: (N,) φ of each sample under the attacked model.
        shadow_phi: (K, N) φ under each shadow model; shadow_in: (K, N) whether the sample trained it.
        fixed_variance: one pooled σ per side instead of one per sample.
    Raises:
        InvalidInputError: shapes disagree, non-finite values, or a sample with no IN or no OUT shadow.
    """
    t, s, m = _check(target_phi, shadow_phi, shadow_in)
    mu_in, sd_in = _masked_stats(s, m, fixed_variance=fixed_variance)
    mu_out, sd_out = _masked_stats(s, ~m, fixed_variance=fixed_variance)
    return np.asarray(norm.logpdf(t, mu_in, sd_in) - norm.logpdf(t, mu_out, sd_out), dtype=np.float64)


def lira_offline(
    target_phi: NDArray[np.floating],
    shadow_phi: NDArray[np.floating],
    shadow_in: NDArray[np.bool_],
    *,
    fixed_variance: bool = True,
) -> NDArray[np.float64]:
    """Offline LiRA score: how far φ lies above the OUT distribution, (φ − μ_out) / σ_out
    (a monotone transform of the one-sided p-value, so the ROC is the same). Only OUT shadows are used."""
    t, s, m = _check(target_phi, shadow_phi, shadow_in)
    mu_out, sd_out = _masked_stats(s, ~m, fixed_variance=fixed_variance)
    return (t - mu_out) / sd_out

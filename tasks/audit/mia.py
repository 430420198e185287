"""Membership-inference attacks on plain arrays of per-sample scores.

Members are training samples, non-members come from the same distribution (the holdout split).
A higher attack score means "more likely a member".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

from tasks.errors import InvalidInputError


@dataclass(frozen=True)
class AttackResult:
    """Outcome of one attack.

    Attributes:
        name: registry key of the attack.
        auc: area under the ROC curve (0.5 = guessing).
        balanced_accuracy: best threshold's (TPR + 1 - FPR) / 2.
        advantage: membership advantage max(TPR - FPR) = 2 * balanced_accuracy - 1 (Yeom et al. 2018).
        tpr_at_0_1pct_fpr, tpr_at_1pct_fpr: largest TPR whose FPR is <= 0.001 / 0.01 (Carlini et al. 2022).
        n_members, n_nonmembers: sample counts.
        fpr, tpr: (K,) ROC curve points, for the plot (not metrics).
    """

    name: str
    auc: float
    balanced_accuracy: float
    advantage: float
    tpr_at_0_1pct_fpr: float
    tpr_at_1pct_fpr: float
    n_members: int
    n_nonmembers: int
    fpr: NDArray[np.float64] = field(repr=False, compare=False)
    tpr: NDArray[np.float64] = field(repr=False, compare=False)

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Scalar fields keyed "<prefix>/<name>/<field>", e.g. "audit/dp/loss_threshold/auc"."""
        keys: tuple[str, ...] = (
            "auc",
            "balanced_accuracy",
            "advantage",
            "tpr_at_0_1pct_fpr",
            "tpr_at_1pct_fpr",
        )
        keys += ("n_members", "n_nonmembers")
        return {f"{prefix}/{self.name}/{k}": float(getattr(self, k)) for k in keys}


def _validated(values: NDArray[np.floating] | list[float], *, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{name}: must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name}: {int(np.sum(~np.isfinite(arr)))} values are not finite")
    return arr


def tpr_at_fpr(fpr: NDArray[np.float64], tpr: NDArray[np.float64], *, max_fpr: float) -> float:
    """Largest TPR among ROC points with FPR <= max_fpr (0 if none)."""
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def score_attack(
    member_scores: NDArray[np.floating], nonmember_scores: NDArray[np.floating], *, name: str
) -> AttackResult:
    """Summarise an attack from its scores (higher = more likely a member).

    Args:
        member_scores: (M,) finite scores of training samples.
        nonmember_scores: (K,) finite scores of held-out samples.
        name: attack name recorded in the result.
    Raises:
        InvalidInputError: an input that is empty, not 1-D, or not finite.
    """
    members = _validated(member_scores, name=f"{name}: member scores")
    nonmembers = _validated(nonmember_scores, name=f"{name}: non-member scores")
    labels = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    scores = np.concatenate([members, nonmembers])
    fpr, tpr, _ = roc_curve(labels, scores)
    advantage = float(np.max(tpr - fpr))
    return AttackResult(
        name=name,
        auc=float(roc_auc_score(labels, scores)),
        balanced_accuracy=(1.0 + advantage) / 2.0,
        advantage=advantage,
        tpr_at_0_1pct_fpr=tpr_at_fpr(fpr, tpr, max_fpr=0.001),
        tpr_at_1pct_fpr=tpr_at_fpr(fpr, tpr, max_fpr=0.01),
        n_members=int(members.size),
        n_nonmembers=int(nonmembers.size),
        fpr=fpr.astype(np.float64),
        tpr=tpr.astype(np.float64),
    )


def loss_threshold_attack(
    member_losses: NDArray[np.floating], nonmember_losses: NDArray[np.floating]
) -> AttackResult:
    """Loss-threshold membership inference (Yeom et al. 2018): score = -loss, every threshold tried.

    Args:
        member_losses: (M,) per-sample losses of training samples under the attacked model.
        nonmember_losses: (K,) per-sample losses of held-out samples.
    Raises:
        InvalidInputError: an input that is empty, not 1-D, or not finite.
    """
    members = _validated(member_losses, name="loss_threshold: member losses")
    nonmembers = _validated(nonmember_losses, name="loss_threshold: non-member losses")
    return score_attack(-members, -nonmembers, name="loss_threshold")


Attack = Callable[[NDArray[np.floating], NDArray[np.floating]], AttackResult]
ATTACKS: dict[str, Attack] = {"loss_threshold": loss_threshold_attack}

"""Membership-inference attacks on plain arrays: model outputs in, per-sample scores and metrics out.

Members are training samples, non-members come from the same distribution (the holdout split).
A higher attack score means "more likely a member". `ATTACKS` maps a name to a scorer of `MiaData`
(the attacked model's logits on members and non-members, plus shadow models' logits where the
attack uses them): loss threshold (Yeom et al. 2018), shadow-model attack (Shokri et al. 2017),
LiRA online and offline (Carlini et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_softmax
from sklearn.metrics import roc_auc_score, roc_curve

from tasks.audit.epsilon import clopper_pearson
from tasks.audit.lira import lira_offline, lira_online, logit_confidence
from tasks.audit.shadow import shokri_scores
from tasks.errors import InvalidInputError

# A TPR at FPR f is "supported" when the non-members allow this many false positives at f (else coarse: with
# 400 non-members, "TPR at 0.1 % FPR" is the TPR at zero false positives).
MIN_FALSE_POSITIVES = 10


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
        """Scalar fields keyed "<prefix>/<name>/<field>", e.g. "audit/dp/loss_threshold/auc".

        Each TPR at a low FPR comes with `_supported` (1 when the non-members allow at least
        `MIN_FALSE_POSITIVES` false positives at that rate, else 0: "coarse", a TPR at almost no false
        positive) and a 95 % Clopper–Pearson interval of the TPR over the members (`_ci_low`, `_ci_high`).
        """
        keys: tuple[str, ...] = (
            "auc",
            "balanced_accuracy",
            "advantage",
            "tpr_at_0_1pct_fpr",
            "tpr_at_1pct_fpr",
        )
        keys += ("n_members", "n_nonmembers")
        out = {f"{prefix}/{self.name}/{k}": float(getattr(self, k)) for k in keys}
        for key, rate in (("tpr_at_0_1pct_fpr", 0.001), ("tpr_at_1pct_fpr", 0.01)):
            tpr = float(getattr(self, key))
            lo, hi = (
                clopper_pearson(round(tpr * self.n_members), self.n_members) if self.n_members else (0.0, 1.0)
            )
            out |= {
                f"{prefix}/{self.name}/{key}_supported": float(
                    self.n_nonmembers * rate >= MIN_FALSE_POSITIVES
                ),
                f"{prefix}/{self.name}/{key}_ci_low": lo,
                f"{prefix}/{self.name}/{key}_ci_high": hi,
            }
        return out


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


@dataclass(frozen=True)
class MiaData:
    """What a membership-inference attack sees (validated by `mia_data`).

    Attributes:
        target_logits: (N, C) logits of the attacked model on the N audited samples.
        labels: (N,) int64 true labels.
        is_member: (N,) bool ground truth: True for training samples (only used to score the attack).
        shadow_logits: (K, N, C) logits of K shadow models, or None when no shadows were trained.
        shadow_in: (K, N) bool, whether each sample trained each shadow, or None.
        fixed_variance: LiRA pools one variance over all samples (better with few shadows).
        seed: seed of any randomness inside an attack (the shadow attack's classifier).
    """

    target_logits: NDArray[np.float64] = field(repr=False)
    labels: NDArray[np.int64] = field(repr=False)
    is_member: NDArray[np.bool_] = field(repr=False)
    shadow_logits: NDArray[np.float64] | None = field(default=None, repr=False)
    shadow_in: NDArray[np.bool_] | None = field(default=None, repr=False)
    fixed_variance: bool = True
    seed: int = 0

    def shadows(self, attack: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The shadow logits and membership, or InvalidInputError naming the attack that needs them."""
        if self.shadow_logits is None or self.shadow_in is None:
            raise InvalidInputError(f"attack {attack!r} needs shadow models (audit.shadow.k >= 2)")
        return self.shadow_logits, self.shadow_in


def mia_data(
    target_logits: NDArray[np.floating],
    labels: NDArray[np.integer],
    is_member: NDArray[np.bool_],
    *,
    shadow_logits: NDArray[np.floating] | None = None,
    shadow_in: NDArray[np.bool_] | None = None,
    fixed_variance: bool = True,
    seed: int = 0,
) -> MiaData:
    """Validate and pack an attack's inputs (shapes in `MiaData`).

    Raises:
        InvalidInputError: shapes that disagree, non-finite logits, no members or no non-members.
    """
    z, y, m = np.asarray(target_logits, np.float64), np.asarray(labels, np.int64), np.asarray(is_member, bool)
    if z.ndim != 2 or y.shape != (len(z),) or m.shape != (len(z),):
        raise InvalidInputError(
            f"mia_data: need logits (N, C), labels (N,), is_member (N,); got {z.shape} {y.shape} {m.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise InvalidInputError("mia_data: target logits are not finite")
    if m.all() or not m.any():
        raise InvalidInputError(
            f"mia_data: need both members and non-members, got {int(m.sum())} of {m.size}"
        )
    if (shadow_logits is None) != (shadow_in is None):
        raise InvalidInputError("mia_data: shadow_logits and shadow_in must be given together")
    if shadow_logits is not None and shadow_in is not None:
        shadow_logits, shadow_in = np.asarray(shadow_logits, np.float64), np.asarray(shadow_in, bool)
        if shadow_logits.shape[1:] != z.shape or shadow_in.shape != shadow_logits.shape[:2]:
            raise InvalidInputError(
                f"mia_data: shadow logits {shadow_logits.shape} / membership {shadow_in.shape} "
                f"do not match target logits {z.shape}"
            )
    return MiaData(z, y, m, shadow_logits, shadow_in, fixed_variance, seed)  # type: ignore[arg-type]


def cross_entropy(logits: NDArray[np.floating], labels: NDArray[np.integer]) -> NDArray[np.float64]:
    """Per-sample cross-entropy −log_softmax(z)[label], (..., N), of logits (..., N, C) and labels (N,)."""
    logp = log_softmax(np.asarray(logits, np.float64), axis=-1)
    idx = np.broadcast_to(np.asarray(labels)[:, None], logp.shape[:-1] + (1,))
    out: NDArray[np.float64] = -np.take_along_axis(logp, idx, -1)[..., 0]
    return out


def _loss_scores(d: MiaData) -> NDArray[np.float64]:
    return -cross_entropy(d.target_logits, d.labels)


def _lira(online: bool) -> Callable[[MiaData], NDArray[np.float64]]:
    def scores(d: MiaData) -> NDArray[np.float64]:
        shadow_logits, shadow_in = d.shadows("lira_online" if online else "lira_offline")
        fn = lira_online if online else lira_offline
        phi = logit_confidence(shadow_logits, d.labels)
        return fn(
            logit_confidence(d.target_logits, d.labels), phi, shadow_in, fixed_variance=d.fixed_variance
        )

    return scores


def _shadow_scores(d: MiaData) -> NDArray[np.float64]:
    shadow_logits, shadow_in = d.shadows("shadow")
    return shokri_scores(d.target_logits, d.labels, shadow_logits, shadow_in, seed=d.seed)


Attack = Callable[[MiaData], NDArray[np.float64]]
ATTACKS: dict[str, Attack] = {
    "loss_threshold": _loss_scores,
    "shadow": _shadow_scores,
    "lira_online": _lira(online=True),
    "lira_offline": _lira(online=False),
}
SHADOW_ATTACKS = frozenset({"shadow", "lira_online", "lira_offline"})


def attack_scores(name: str, data: MiaData) -> NDArray[np.float64]:
    """(N,) membership scores of attack `name` (key of `ATTACKS`) on `data`.

    Raises:
        InvalidInputError: unknown attack, or a shadow attack without shadow models.
    """
    if name not in ATTACKS:
        raise InvalidInputError(f"attack {name!r} is not one of {sorted(ATTACKS)}")
    return ATTACKS[name](data)


def run_attack(name: str, data: MiaData) -> tuple[AttackResult, NDArray[np.float64]]:
    """Run attack `name` and summarise it; also returns its (N,) scores (for ε bounds and slices)."""
    scores = attack_scores(name, data)
    return score_attack(scores[data.is_member], scores[~data.is_member], name=name), scores


def per_class_results(name: str, scores: NDArray[np.floating], data: MiaData) -> dict[int, AttackResult]:
    """The attack's metrics restricted to each class that has both members and non-members.

    Result names are "<name>/class_<c>", so `as_metrics("audit/dp")` gives "audit/dp/<name>/class_<c>/<field>".
    """
    s = np.asarray(scores, np.float64)
    out = {}
    for c in np.unique(data.labels):
        sel = data.labels == c
        mem, non = s[sel & data.is_member], s[sel & ~data.is_member]
        if mem.size and non.size:
            out[int(c)] = score_attack(mem, non, name=f"{name}/class_{int(c)}")
    return out

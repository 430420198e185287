"""The audit's membership experiments: the audited pool, shadow trainers, every attack, ε bounds, canaries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from tasks.audit.canary import canary_audit, make_canaries, make_canary_persons, person_canary_scores
from tasks.audit.epsilon import empirical_epsilon
from tasks.audit.lira import lira_offline, lira_online, logit_confidence
from tasks.audit.mia import SHADOW_ATTACKS, AttackResult, mia_data, per_class_results, run_attack
from tasks.audit.person import cap_shadows, leave_one_out_trials, person_membership_matrix, person_metrics
from tasks.audit.shadow import EVAL_BATCH, Trainer, membership_matrix, train_shadows
from tasks.audit.tables import per_class_row
from tasks.errors import InvalidInputError
from tasks.params import AuditParams, CanaryParams, ShadowParams
from tasks.train.dp import DpTrainingRecord, predict_logits, train_dp, train_nonprivate
from tasks.train.models import ModelSpec


@dataclass(frozen=True)
class Pool:
    """The audited samples: members (the train split) first, then non-members (the holdout split).

    Attributes:
        x: (N, C, s, s) float32 model inputs; y: (N,) int64 labels; is_member: (N,) bool.
    """

    x: torch.Tensor
    y: torch.Tensor
    is_member: NDArray[np.bool_]
    ids: tuple[str, ...] = ()  # the images' manifest ids, in pool order (empty: not recorded)

    @classmethod
    def from_splits(
        cls,
        members: tuple[torch.Tensor, torch.Tensor],
        nonmembers: tuple[torch.Tensor, torch.Tensor],
        ids: tuple[str, ...] = (),
    ) -> Pool:
        """Concatenate (x, y) of the members and of the non-members (`ids`: theirs, in the same order)."""
        is_member = np.r_[np.ones(len(members[0]), bool), np.zeros(len(nonmembers[0]), bool)]
        if ids and len(ids) != len(is_member):
            raise InvalidInputError(f"Pool: {len(ids)} ids for {len(is_member)} images")
        return cls(
            torch.cat([members[0], nonmembers[0]]), torch.cat([members[1], nonmembers[1]]), is_member, ids
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, s, s) of one input."""
        return int(self.x.shape[1]), int(self.x.shape[2]), int(self.x.shape[3])

    def members(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the members."""
        sel = torch.from_numpy(self.is_member)
        return self.x[sel], self.y[sel]

    def nonmembers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the non-members."""
        sel = torch.from_numpy(~self.is_member)
        return self.x[sel], self.y[sel]


def subsample(n: int, k: int, *, seed: int) -> NDArray[np.intp]:
    """Sorted indices of min(n, k) distinct rows of range(n), drawn from `seed` (only these are read)."""
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(n, k)])


def shadow_trainers(
    record: DpTrainingRecord,
    *,
    spec: ModelSpec,
    lr: float,
    nonprivate_lr: float,
    momentum: float,
    physical_batch_size: int,
    device: str,
) -> dict[str, Trainer]:
    """Shadow trainers, keyed like the targets ("dp", "nonprivate"): the target's architecture and schedule;
    DP-SGD to the same (ε, δ), clipping, accountant and per-sample-gradient mode for the DP model.

    Args:
        record: the DP target's record (its epochs, batch size and DP parameters).
        spec: the targets' model; lr, nonprivate_lr, momentum, physical_batch_size: the train section's.
    """

    def common(n: int, seed: int) -> dict[str, Any]:
        return {
            "model_name": spec.model,
            "num_classes": spec.num_classes,
            "epochs": record.epochs,
            "batch_size": min(record.batch_size, n),
            "momentum": momentum,
            "seed": seed,
            "device": device,
        }

    def dp(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        return train_dp(
            x,
            y,
            lr=lr,
            target_epsilon=record.target_epsilon,
            target_delta=record.target_delta,
            max_grad_norm=record.max_grad_norm,
            accountant=record.accountant,
            physical_batch_size=physical_batch_size,
            grad_sample_mode=record.grad_sample_mode,
            # a per-unit run calibrated σ for the per-person ε: its shadows run at that σ, not the per-image search
            noise_multiplier=record.noise_multiplier if record.privacy_unit else None,
            **common(len(x), seed),
        ).model

    def nonprivate(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        return train_nonprivate(x, y, lr=nonprivate_lr, **common(len(x), seed)).model

    return {"dp": dp, "nonprivate": nonprivate}


@dataclass(frozen=True)
class MembershipOutcome:
    """Every membership attack on one target.

    Attributes:
        metrics: "audit/<which>/..." scalars (attacks, per-class AUCs, shadow sizes).
        results: "<which>/<attack>" → AttackResult (for the ROC figure).
        scores: attack → (N,) membership scores over the pool.
        class_rows: one row per (attack, class) for per_class.jsonl.
    """

    metrics: dict[str, float]
    results: dict[str, AttackResult] = field(repr=False)
    scores: dict[str, NDArray[np.float64]] = field(repr=False)
    class_rows: list[dict[str, Any]] = field(repr=False)


def _shadow_outputs(
    which: str,
    pool: Pool,
    trainer: Trainer,
    *,
    k: int,
    seed: int,
    device: str,
    on_shadow: Callable[[int], None] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], dict[str, float]]:
    """Shadow logits (K, N, C), their membership (K, N) and the shadows' training-set sizes as metrics."""
    n_target = int(pool.is_member.sum())
    # shadows trained exactly like the target: its training-set size (so its q, steps and σ), not half the pool
    shadow_in = membership_matrix(len(pool.x), k, seed=seed, size=min(n_target, len(pool.x) - 1))
    shadow_logits = train_shadows(
        pool.x, pool.y, shadow_in, trainer=trainer, seed=seed + 1000, device=device, on_model=on_shadow
    )
    sizes = shadow_in.sum(1)
    return shadow_logits, shadow_in, {f"audit/{which}/shadow_n_train_min": float(sizes.min()),
                                      f"audit/{which}/shadow_n_train_max": float(sizes.max()),
                                      f"audit/{which}/target_n_train": float(n_target)}  # fmt: skip


def membership_audit(
    which: str,
    model: nn.Module,
    trainer: Trainer,
    pool: Pool,
    *,
    attacks: tuple[str, ...],
    shadow: ShadowParams,
    seed: int,
    device: str,
    on_shadow: Callable[[int], None] | None = None,
) -> MembershipOutcome:
    """Run every attack in `attacks` on target `which` (shadows trained by `trainer` when an attack needs them).

    Args:
        which: the target's name in metric keys ("dp" | "nonprivate").
        model: the target; pool: the audited samples.
        shadow: K (shadows are trained only when K >= 2 and a shadow attack is run) and LiRA's variance.
        on_shadow: called with k as each shadow model is done (a progress bar).
    """
    shadow_logits = shadow_in = None
    extra: dict[str, float] = {}
    if shadow.k >= 2 and SHADOW_ATTACKS & set(attacks):
        shadow_logits, shadow_in, extra = _shadow_outputs(which, pool, trainer, k=shadow.k, seed=seed,
                                                          device=device, on_shadow=on_shadow)  # fmt: skip
    data = mia_data(
        predict_logits(model, pool.x, device=device, batch_size=EVAL_BATCH).numpy().astype(np.float64),
        pool.y.numpy(),
        pool.is_member,
        shadow_logits=shadow_logits,
        shadow_in=shadow_in,
        fixed_variance=shadow.fixed_variance,
        seed=seed,
    )
    metrics = {f"audit/{which}/shadow_models": float(shadow.k)} | extra
    results: dict[str, AttackResult] = {}
    scores: dict[str, NDArray[np.float64]] = {}
    rows: list[dict[str, Any]] = []
    for name in attacks:
        res, scores[name] = run_attack(name, data)
        results[f"{which}/{name}"] = res
        metrics |= res.as_metrics(f"audit/{which}")
        for c, r in per_class_results(name, scores[name], data).items():
            metrics[f"audit/{which}/{name}/class_{c}/auc"] = r.auc
            rows.append(per_class_row(which, name, c, r))
    return MembershipOutcome(metrics, results, scores, rows)


PERSON_ATTACKS = ("lira_online", "lira_offline")  # the per-image scores a person's images' scores sum
PERSON_BOOTSTRAP = 1000  # resamples of persons for the person-level intervals


def pool_units(ids: Sequence[str], found: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """The persons (units) of each pool image, in pool order (`found`: image id → its units; absent: nobody).

    Raises:
        InvalidInputError: no ids (the pool did not record them).
    """
    if not ids:
        raise InvalidInputError("pool_units: the audited pool has no image ids")
    return [tuple(sorted(set(found.get(i, ())))) for i in ids]


def person_membership_audit(
    which: str, trainer: Trainer, pool: Pool, units: Sequence[Sequence[str]], *, attacks: tuple[str, ...],
    shadow: ShadowParams, seed: int, device: str, on_shadow: Callable[[int], None] | None = None,
    n_boot: int | None = None, cap: int | None = None,
) -> dict[str, float]:  # fmt: skip
    """Person-level LiRA on models trained like target `which`: "was this person in the training data?"

    K shadows are trained on person-disjoint splits of the pool (`person_membership_matrix`, the target's
    training-set size); each in turn is the attacked model and the others its references
    (`leave_one_out_trials`); a person's score sums their images' LiRA scores. The released model is not the
    one attacked: its train / holdout split is by image, so on data that repeats people hardly anyone is OUT of
    it; models trained exactly like it on person-disjoint splits are.

    Args:
        which: "dp" | "nonprivate" (metric keys "audit/<which>/person/<attack>/<field>").
        units: the persons of each pool image (empty: nobody known; such images train shadows, are not scored).
        attacks: the audit's attacks; the person level runs those of `PERSON_ATTACKS` among them.
        n_boot: resamples of persons for the intervals (None: `PERSON_BOOTSTRAP`).
        cap: the target's images per person (train.dp.unit's recorded cap): each shadow keeps at most as many.
    Raises:
        InvalidInputError: K < `MIN_SHADOWS` (4), units not one per pool image, or no member / non-member person trial.
    """
    names = [a for a in PERSON_ATTACKS if a in attacks]
    if not names:
        return {}
    if len(units) != len(pool.x):
        raise InvalidInputError(
            f"person_membership_audit: {len(units)} unit lists for {len(pool.x)} pool images"
        )
    size = min(int(pool.is_member.sum()), len(pool.x) - 1)
    keep = person_membership_matrix(units, shadow.k, seed=seed + 2000, size=size, margin=2)
    keep = keep if cap is None else cap_shadows(keep, units, cap=cap, seed=seed + 2500)
    logits = train_shadows(
        pool.x, pool.y, keep, trainer=trainer, seed=seed + 3000, device=device, on_model=on_shadow
    )
    phi = logit_confidence(logits, pool.y.numpy())
    prefix = f"audit/{which}/person"
    out = {
        f"{prefix}/shadow_n_train_min": float(keep.sum(1).min()),
        f"{prefix}/shadow_n_train_max": float(keep.sum(1).max()),
        f"{prefix}/n_persons": float(len({p for us in units for p in us})),
    }
    for name in names:
        fn = lira_online if name == "lira_online" else lira_offline

        def scorer(
            t: NDArray[np.float64],
            s: NDArray[np.float64],
            m: NDArray[np.bool_],
            fn: Callable[..., NDArray[np.float64]] = fn,
        ) -> NDArray[np.float64]:
            return fn(t, s, m, fixed_variance=shadow.fixed_variance)

        trials = leave_one_out_trials(phi, keep, units, scorer=scorer, online=name == "lira_online")
        out |= person_metrics(trials, prefix=prefix, name=name, n_boot=n_boot or PERSON_BOOTSTRAP, seed=seed)
    return out


def preregistered(audit: AuditParams) -> tuple[str, ...]:
    """The tests whose bounds make the reported empirical ε, fixed before any score is seen: the strongest
    membership attack run (LiRA online, else the first) and the canary audit. Their confidence is joint
    (Bonferroni: α / number of tests each); the other attacks' bounds are exploratory, each at α."""
    strongest = next((a for a in ("lira_online", "lira_offline", "shadow") if a in audit.attacks),
                     audit.attacks[0])  # fmt: skip
    return (strongest, *(("canary",) if audit.epsilon.canary.enabled else ()))


def joint_alpha(audit: AuditParams) -> float:
    """Each pre-registered test's level, so that all of them hold at once with confidence 1 − α."""
    return audit.epsilon.alpha / len(preregistered(audit))


def epsilon_bounds(
    which: str,
    scores: Mapping[str, NDArray[np.float64]],
    is_member: NDArray[np.bool_],
    *,
    delta: float,
    audit: AuditParams,
    seed: int,
) -> dict[str, float]:
    """Clopper–Pearson ε lower bound of every attack's scores, the reported (pre-registered) one and the
    exploratory maximum, keyed "audit/<which>/..."."""
    out: dict[str, float] = {}
    joint = preregistered(audit)
    for name, s in scores.items():
        alpha = joint_alpha(audit) if name in joint else audit.epsilon.alpha
        b = empirical_epsilon(s[is_member], s[~is_member], delta=delta, alpha=alpha, seed=seed)
        out |= b.as_metrics(f"audit/{which}/{name}")
    pre = [out[f"audit/{which}/{n}/empirical_epsilon_lower_bound"] for n in joint if n in scores]
    out[f"audit/{which}/empirical_epsilon_lower_bound"] = max(pre, default=0.0)
    out[f"audit/{which}/exploratory_epsilon_lower_bound"] = max(
        (v for k, v in out.items() if k.endswith("/empirical_epsilon_lower_bound")), default=0.0
    )
    return out


def canary_experiment(
    trainer: Trainer,
    pool: Pool,
    *,
    record: DpTrainingRecord,
    canary: CanaryParams,
    spec: ModelSpec,
    beta: float,
    seed: int,
    device: str,
) -> dict[str, float]:
    """One extra DP run on the members plus the canaries that won the coin flip (Steinke et al. 2023).

    Args:
        trainer: trains like the DP target (`shadow_trainers(...)["dp"]`).
        record: the DP target's record (δ of the bound, ε the ceiling is compared with).
        beta: the audit's level (`joint_alpha`).
    Returns:
        "audit/dp/canary/..." metrics, with the ceiling's ratio to the target ε (the ε the audit knows; the
        report gates the ratio to the checked ε it claims: `tasks.report.compliance.against_claim`).
    """
    cx, cy, inc = make_canaries(
        canary.n, shape=pool.input_shape, num_classes=spec.num_classes, seed=seed + 77
    )
    low, high = spec.input_range  # canaries are drawn in [0, 1]: map them into the model's input range
    cx = cx * (high - low) + low if (low, high) != (0.0, 1.0) else cx
    xm, ym = pool.members()
    sel = torch.from_numpy(inc)
    model = trainer(torch.cat([xm, cx[sel]]), torch.cat([ym, cy[sel]]), seed + 78)
    logits = predict_logits(model, cx, device=device, batch_size=EVAL_BATCH).numpy().astype(np.float64)
    audit = canary_audit(
        logit_confidence(logits, cy.numpy()),
        inc,
        k_pos=canary.guesses // 2,
        k_neg=canary.guesses - canary.guesses // 2,
        beta=beta,
        delta=record.target_delta,
    )
    return audit.as_metrics("audit/dp") | {
        "audit/dp/canary/ceiling_ratio": audit.ceiling / record.target_epsilon
    }


def canary_person_experiment(
    trainer: Trainer, pool: Pool, *, k: int, unit_epsilon: float, record: DpTrainingRecord, canary: CanaryParams,
    spec: ModelSpec, beta: float, seed: int, device: str,
) -> dict[str, float]:  # fmt: skip
    """The one-run canary audit per person: canary persons of `k` images each (the run's cap), each inserted or
    left out whole, scored by the sum of their images' confidences; as many canary images as the image-level
    audit (canary.n // k persons, canary.guesses // k guesses).

    Args:
        trainer: trains like the DP target; k: images per canary person (>= 2); unit_epsilon: the claimed
            per-person ε the ceiling is compared with; beta: the bound's level (exploratory: not pre-registered).
    Returns:
        "audit/dp/person/canary/..." metrics, with `images_per_person` and the ceiling's ratio to `unit_epsilon`.
    """
    persons = max(canary.n // k, 2)
    cx, cy, owner, inc = make_canary_persons(persons, k, shape=pool.input_shape, num_classes=spec.num_classes,
                                             seed=seed + 79)  # fmt: skip
    low, high = spec.input_range
    cx = cx * (high - low) + low if (low, high) != (0.0, 1.0) else cx
    xm, ym = pool.members()
    sel = torch.from_numpy(inc[owner])
    model = trainer(torch.cat([xm, cx[sel]]), torch.cat([ym, cy[sel]]), seed + 80)
    logits = predict_logits(model, cx, device=device, batch_size=EVAL_BATCH).numpy().astype(np.float64)
    scores = person_canary_scores(logit_confidence(logits, cy.numpy()), owner)
    n_guesses = min(max(canary.guesses // k, 2), persons)
    audit = canary_audit(scores, inc, k_pos=n_guesses // 2, k_neg=n_guesses - n_guesses // 2, beta=beta,
                         delta=record.target_delta)  # fmt: skip
    return audit.as_metrics("audit/dp/person") | {
        "audit/dp/person/canary/images_per_person": float(k),
        "audit/dp/person/canary/ceiling_ratio": audit.ceiling / unit_epsilon,
    }


def dp_epsilon_summary(
    metrics: Mapping[str, float], *, epsilon: float, audit: AuditParams
) -> dict[str, float]:
    """The DP model's reported empirical ε (the larger of the membership and canary bounds when the canary
    ran), its margin below the accountant's `epsilon`, the confidence and the number of joint tests.

    The margin is the audit stage's own check, against the ε training reported (the flow stops on a negative
    one); the report's margin gate and conclusion use the checked ε, max(Opacus, PLD) ≥ it
    (`tasks.report.compliance.against_claim`).

    Args:
        metrics: holds "audit/dp/empirical_epsilon_lower_bound" (and the canary's bound when it ran).
    """
    bound = metrics["audit/dp/empirical_epsilon_lower_bound"]
    if audit.epsilon.canary.enabled:
        bound = max(bound, metrics["audit/dp/canary/epsilon_lower_bound"])
    return {"audit/dp/empirical_epsilon_lower_bound": bound,
            "audit/dp/empirical_epsilon_margin": epsilon - bound,
            "audit/dp/empirical_epsilon_confidence": 1 - audit.epsilon.alpha,
            "audit/dp/empirical_epsilon_tests": float(len(preregistered(audit)))}  # fmt: skip

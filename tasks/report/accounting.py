"""An accountant that shares no code with Opacus (Google's dp-accounting, PLD) to cross-check the reported ε.

The report re-prices the recorded mechanism history twice: with a fresh Opacus accountant of the recorded
type (`tasks.train.dp.recompute_epsilon`) and with the privacy-loss-distribution accountant of dp-accounting
(Meiser & Mohammadi 2018; Doroshenko et al. 2022), which is tight for the subsampled Gaussian. An ε that
the PLD accountant prices higher than training reported (e.g. the CLT-based `gdp` accountant on few steps)
fails the agreement gate: the check can disagree because it does not reuse Opacus. Both prices, and the
larger one (`checked_epsilon`, the one ε of headline, registry tag and ledger), come from `tasks.train.checked`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tasks.errors import InvalidInputError
from tasks.train.checked import (
    PLD_DISCRETIZATION,
    CheckedEpsilon,
    DpPlan,
    checked_epsilon,
    pld_epsilon,
    train_batch_size,
)
from tasks.train.dp import loop_schedule
from tasks.train.person import (
    IMAGE_PREFIX,
    UnitAccounting,
    UnitsOf,
    bound_contributions,
    calibrate_noise,
    max_contribution,
    unit_check,
)

__all__ = [
    "PLD_DISCRETIZATION",
    "CheckedEpsilon",
    "checked_epsilon",
    "group_privacy",
    "pld_epsilon",
    "understatement",
    "unit_dp_plan",
    "unit_guarantee",
]


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


def unit_guarantee(record: Mapping[str, Any], *, units: UnitsOf, trained: Sequence[str]) -> dict[str, Any]:
    """The per-unit (e.g. per-person) guarantee of a DP record, recomputed from the data and the mechanism.

    Nothing is taken from the record's own prices: the images training used (`trained`, the train stage's
    kept ids) are counted per unit from the identities (`units`, from the ingest ground truth or a manifest
    column), the selection is redone from the recorded cap and selection seed, and the recorded history is
    priced at the larger of the recorded cap and the data's count by both accountants (dp-accounting's
    mixture PLD and the independent PRV of `tasks.train.person`). `agreement` is the gate: False on any
    problem (a unit above the recorded cap, trained images that are not the bounded selection or not the
    record's n_train, accountants that disagree, a recorded ε below the recomputed one).
    Args:
        record: `DpTrainingRecord.as_dict()` with `privacy_unit`.
        units: image id → its units, for every image of the train split.
        trained: the ids training used.
    Raises:
        InvalidInputError: a record without `privacy_unit`, or a trained id absent from `units`.
    """
    if not record.get("privacy_unit"):
        raise InvalidInputError("unit_guarantee: the DP record has no privacy_unit (its unit is one image)")
    acc = UnitAccounting.from_dict(record["privacy_unit"])
    unknown = [i for i in trained if i not in units]
    if unknown:
        raise InvalidInputError(
            f"unit_guarantee: {len(unknown)} trained images are not in the train split, e.g. {unknown[0]!r}"
        )
    history = tuple((float(n), float(q), int(k)) for n, q, k in record["history"])
    data_max = max_contribution(units, trained)
    problems, pld, prv = unit_check(history, acc, data_max=data_max)
    if set(bound_contributions(units, cap=acc.cap, seed=acc.selection_seed)) != set(trained):
        problems.append(
            f"the {len(trained)} trained images are not the selection the recorded cap {acc.cap} and "
            f"selection seed {acc.selection_seed} make from the data"
        )
    if int(record["n_train"]) != len(trained):
        problems.append(f"the record says n_train {record['n_train']}, training used {len(trained)} images")
    return {
        "unit": acc.unit,
        "cap": acc.cap,
        "rule": acc.rule,
        "max_images_per_unit": data_max,
        "n_kept": len(trained),
        "n_before": len(units),
        "n_units": len({u for i in trained for u in units[i]}),
        # kept images with no known unit (nobody identified in them): each is its own unit, so a person
        # in them who was not identified is protected per image only
        "images_without_unit": sum(1 for i in trained if units[i][0].startswith(IMAGE_PREFIX)),
        "epsilon_pld": pld,
        "epsilon_prv": prv,
        "epsilon": max(pld, prv),
        "delta": acc.delta,
        "agreement": not problems,
        "problems": problems,
    }


def unit_dp_plan(
    n_kept: int,
    *,
    cap: int,
    batch_size: int,
    epochs: int,
    max_grad_norm: float,
    target_epsilon: float,
    target_delta: float,
    accountant: str,
) -> DpPlan:
    """The DP-SGD mechanism a per-unit run had to run, computed without the record: the kept images (the data's
    bounded selection), q and steps of `loop_schedule` on them, σ calibrated for the per-unit target at `cap`
    (`tasks.train.person.calibrate_noise`, deterministic: the σ the train stage computed).

    Raises:
        InvalidInputError: no kept images, or a schedule `loop_schedule` refuses.
    """
    if n_kept < 1:
        raise InvalidInputError("unit_dp_plan: no kept training images")
    batch = train_batch_size(batch_size, n_kept)
    q, steps = loop_schedule(n_kept, batch_size=batch, epochs=epochs)
    sigma = calibrate_noise(
        target_epsilon=target_epsilon, delta=target_delta, sample_rate=q, steps=steps, cap=cap
    )
    return DpPlan(
        n_train=n_kept,
        batch_size=batch,
        epochs=epochs,
        max_grad_norm=max_grad_norm,
        target_epsilon=target_epsilon,
        target_delta=target_delta,
        accountant=accountant,
        noise_multiplier=sigma,
        sample_rate=q,
        steps=steps,
    )

"""The checked ε of a DP record: its history checked against the plan, then priced by two accountants.

The plan (`dp_plan`) is what the params and the data say training had to run, computed without the record:
n_train = the train rows of the anonymized manifest, batch size and epochs from `train`, q and steps from
`loop_schedule`, σ from Opacus' own calibration (`planned_history`, the call `make_private_with_epsilon`
makes). A record is priced only when it and its history are that mechanism (`check_plan`), whatever it
says of itself: a self-consistent record with a smaller σ or another n_train would understate ε.

A fresh Opacus accountant of the recorded type (`tasks.train.dp.recompute_epsilon`) and the
privacy-loss-distribution accountant of Google's dp-accounting (Meiser & Mohammadi 2018; Doroshenko et
al. 2022), which shares no code with Opacus and is tight for the subsampled Gaussian. The larger of the two
is the one ε privtrail states (`dp/epsilon_checked`): the report's headline, the registry tag, the ledger.
It lives with training because the ledger, written by the train stage, records it; the report re-exports it
from `tasks.report.accounting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.train.dp import DpTrainingRecord, check_history, planned_history, recompute_epsilon

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


@dataclass(frozen=True)
class CheckedEpsilon:
    """A DP record priced twice at its δ: the one ε privtrail states is the larger (`checked`)."""

    opacus: float  # a fresh Opacus accountant of the recorded type (`recompute_epsilon`)
    pld: float  # dp-accounting's PLD accountant, which shares no code with Opacus
    delta: float

    @property
    def checked(self) -> float:
        """max(Opacus, PLD): `dp/epsilon_checked`, the ε of the headline, the registry tag and the ledger."""
        return max(self.opacus, self.pld)


def checked_epsilon(record: DpTrainingRecord) -> CheckedEpsilon:
    """Check the record's mechanism history against its schedule, then price it with both accountants.

    Raises:
        PrivacyBudgetError: the history is not the mechanism the schedule ran (`check_history`): fewer
            steps, another sample rate or noise multiplier than n_train, batch_size, epochs and σ give.
        InvalidInputError: an unknown accountant or a malformed history.
    """
    check_history(record)
    return CheckedEpsilon(
        opacus=recompute_epsilon(record),
        pld=pld_epsilon(record.history, delta=record.target_delta),
        delta=record.target_delta,
    )


_PLAN_RTOL = 1e-9  # σ, q and the DP params round-trip JSON exactly, and the σ search is deterministic


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > _PLAN_RTOL * abs(b)


@dataclass(frozen=True)
class DpPlan:
    """The DP-SGD mechanism the params and the data plan, computed without reading any record."""

    n_train: int  # train rows of the anonymized manifest (the DP unit count)
    batch_size: int  # train.batch_size, capped at n_train as the train stage caps it
    epochs: int
    max_grad_norm: float
    target_epsilon: float
    target_delta: float
    accountant: str
    noise_multiplier: float  # Opacus' calibration for target_epsilon at this q and these epochs
    sample_rate: float  # q the accountant prices (`loop_schedule`)
    steps: int

    def describe(self) -> str:
        """The plan's numbers, for error messages."""
        return (
            f"n_train={self.n_train}, batch_size={self.batch_size}, epochs={self.epochs}, q={self.sample_rate:.6g}, "
            f"steps={self.steps}, sigma={self.noise_multiplier:.6g} ({self.accountant} calibration for "
            f"epsilon={self.target_epsilon:g}, delta={self.target_delta:g}), max_grad_norm={self.max_grad_norm:g}"
        )


def train_batch_size(batch_size: int, n_train: int) -> int:
    """The logical batch the train stage runs: `train.batch_size`, capped at the train split's size."""
    return min(batch_size, n_train)


def dp_plan(
    n_train: int,
    *,
    batch_size: int,
    epochs: int,
    max_grad_norm: float,
    target_epsilon: float,
    target_delta: float,
    accountant: str,
) -> DpPlan:
    """The mechanism `train_dp` (one process, or `train_dp_ddp`: the same q and σ on the global batch) runs.

    Args:
        n_train: train rows of the anonymized manifest.
        batch_size, epochs: `train`'s (batch_size uncapped: capped here as the train stage caps it).
        max_grad_norm, target_epsilon, target_delta, accountant: `train.dp`'s.
    Raises:
        InvalidInputError: no train rows, or a schedule `loop_schedule` refuses.
    """
    if n_train < 1:
        raise InvalidInputError(f"DP plan: the anonymized manifest has {n_train} train rows")
    batch = train_batch_size(batch_size, n_train)
    ((sigma, rate, steps),) = planned_history(
        n_train,
        batch_size=batch,
        epochs=epochs,
        target_epsilon=target_epsilon,
        target_delta=target_delta,
        accountant=accountant,
    )
    return DpPlan(
        n_train=n_train,
        batch_size=batch,
        epochs=epochs,
        max_grad_norm=max_grad_norm,
        target_epsilon=target_epsilon,
        target_delta=target_delta,
        accountant=accountant,
        noise_multiplier=sigma,
        sample_rate=rate,
        steps=steps,
    )


def plan_mismatches(record: DpTrainingRecord, plan: DpPlan) -> list[str]:
    """Every way the record, or the history it would be priced from, differs from the plan; empty when none."""
    out = [
        f"{k} recorded {getattr(record, k)}, planned {getattr(plan, k)}"
        for k in ("n_train", "batch_size", "epochs", "steps")
        if int(getattr(record, k)) != getattr(plan, k)
    ]
    out += [
        f"{k} recorded {getattr(record, k):.6g}, planned {getattr(plan, k):.6g}"
        for k in ("sample_rate", "max_grad_norm", "target_epsilon", "target_delta")
        if _differs(float(getattr(record, k)), float(getattr(plan, k)))
    ]
    # σ one-sided: less noise than the plan understates ε; more (e.g. a newer Opacus calibrating a little
    # higher) is priced from the recorded history as it is and never understates it
    if _below(float(record.noise_multiplier), plan.noise_multiplier):
        out.append(
            f"noise_multiplier recorded {record.noise_multiplier:.6g}, below the planned "
            f"{plan.noise_multiplier:.6g}"
        )
    if record.accountant != plan.accountant:
        out.append(f"accountant recorded {record.accountant!r}, planned {plan.accountant!r}")
    if not record.poisson_sampling:
        out.append("poisson_sampling is false (the plan, and both accountants, assume it)")
    if (n := sum(int(s) for _, _, s in record.history)) != plan.steps:
        out.append(f"history has {n} steps, planned {plan.steps}")
    out += [
        f"history step {i}: sigma {s:.6g}, q {q:.6g}; planned sigma {plan.noise_multiplier:.6g}, q "
        f"{plan.sample_rate:.6g}"
        for i, (s, q, _) in enumerate(record.history)
        if _below(s, plan.noise_multiplier) or _differs(q, plan.sample_rate)
    ]
    return out


def _below(value: float, planned: float) -> bool:
    """`value` is below `planned` beyond floating-point noise (the relative tolerance of `_differs`)."""
    return value < planned and _differs(value, planned)


def check_plan(record: DpTrainingRecord, plan: DpPlan) -> None:
    """Refuse to price a record that is not the planned mechanism (then check its history against itself).

    Raises:
        PrivacyBudgetError: one line naming every mismatch and the plan's numbers.
    """
    problems = plan_mismatches(record, plan)
    if problems:
        raise PrivacyBudgetError(
            f"DP record: not the mechanism the params and the data plan ({plan.describe()}): "
            + "; ".join(problems)
            + "; refusing to price it"
        )
    check_history(record)


def check_skipped(reason: str, *, n_classes: int) -> None:
    """A record that says training was skipped is true only when the data has no labels (nothing to train).

    Raises:
        PrivacyBudgetError: the data names `n_classes` > 0 classes, so training had to run.
    """
    if n_classes > 0:
        raise PrivacyBudgetError(
            f"DP record says training was skipped ({reason}), but the anonymized data names "
            f"{n_classes} classes: the train stage had to run DP-SGD; refusing the record"
        )

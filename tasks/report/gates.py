"""Gates: every threshold of `params.yaml: gates`, the measured value it applies to, and its state.

Each gate ends `passed`, `failed`, `waived` (in `gates_waived`, with a written reason) or `not_assessed`
(the data cannot measure it: no face ground truth, no identities, no labels, ...; or its sample is too small
to tell the value from the threshold; with the reason). A gate whose data exists but whose value is missing
fails (fail closed): a missing number is never a pass, and the verdict is "pass" only when every gate passed
or was waived.

Statistical power: a gate measured on a sample (a share of boxes, probes or strings, an AUC, a TPR) carries a
two-sided `CONFIDENCE` interval (`Sample`, `INTERVALS`). It passes or fails only when the whole interval lies
on one side of its threshold; an interval that straddles the threshold, or a sample that cannot resolve the
measure at all (a TPR at 0.1 % FPR on fewer than 1,000 non-members), is `not_assessed` with the sample size
that would resolve it at the measured value. Gates on a whole population or a computed bound (ε, δ, the
quarantined share of every ingested image, a switch) carry no interval, and their spec says why.

Policy: `tasks.params.Gates`' defaults are the packaged policy; a threshold looser than its default is a
policy change (`policy_changes`), which params accept only with a written reason (`gates_policy_changes`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from scipy.stats import beta, norm

from tasks.errors import InvalidInputError
from tasks.params import (
    BUDGET_POLICY,
    BudgetParams,
    Gates,
    budget_loosened,
    gate_loosened,
    gate_op,
    packaged_gates,
)

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}
GateStatus = Literal["passed", "failed", "waived", "not_assessed"]
MET: tuple[GateStatus, ...] = ("passed", "waived")

# What the data must hold for a gate to be measurable (`GateSpec.needs`); the report flow says, for each,
# None (it does) or the reason it does not (`data_capabilities`).
NEEDS = ("face_gt", "plate_gt", "text_pii_gt", "text_nonpii_gt", "identities", "faces", "labels")

CONFIDENCE = 0.95  # two-sided: the same 95 % as the audit's Clopper–Pearson intervals (tasks/audit/mia.py)
_Z = float(norm.ppf(0.5 + CONFIDENCE / 2))
MAX_SAMPLES = 10_000_000  # the sample-size search stops here: beyond it, "no sample size resolves it"


@dataclass(frozen=True)
class Sample:
    """Where a gate's sample size lives in the flat values, and which interval its value gets (`INTERVALS`).

    Attributes:
        method: "clopper_pearson" (a share k / n), "hanley_mcneil" (an AUC over members and non-members),
            "tpr_at_fpr" (a TPR at a fixed FPR: Clopper–Pearson over the members, resolvable only when the
            non-members allow one false positive at `fpr`) or "paired_ratio" (a ratio of two shares measured
            on the same n items: `parts` holds the numerator, the denominator and the share of items on which
            the two outcomes differ).
        n_keys: keys holding n; the first one present is used (LiRA: either variant, both score the same samples).
        unit: what n counts, plural ("faces", "probes", "members").
        other_keys: keys holding the second sample's size (non-members): hanley_mcneil and tpr_at_fpr.
        other_unit: what that second size counts.
        share_key: n is n_keys' value times this share (non-personal strings that were read on raw images).
        offset_key: the value is a share minus this key's value (linkage advantage: top-1 minus chance 1/N).
        fpr: the false-positive rate a TPR is read at (tpr_at_fpr).
        parts: the (numerator, denominator, discordant) share keys of a paired ratio (paired_ratio).
    """

    method: str
    n_keys: tuple[str, ...]
    unit: str
    other_keys: tuple[str, ...] = ()
    other_unit: str = ""
    share_key: str | None = None
    offset_key: str | None = None
    fpr: float | None = None
    parts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GateSpec:
    """Which measured value a gate checks, how, what the data must hold to measure it, and its sample.

    Exactly one of `sample` (a measured value: it gets a confidence interval) and `no_interval` (why the
    value has none: a whole population, a computed bound, a switch) is set.
    """

    value_key: str  # key into the flat values mapping built by the report flow
    op: str  # "<=" (a maximum) or ">=" (a minimum)
    description: str
    needs: str | None = None  # one of NEEDS, or None: always measurable
    sample: Sample | None = None
    no_interval: str | None = None


def _share(n_key: str, unit: str) -> Sample:
    return Sample("clopper_pearson", (n_key,), unit)


def _auc(attacks: tuple[str, ...]) -> Sample:
    return Sample(
        "hanley_mcneil",
        tuple(f"attacks/dp/{a}/n_members" for a in attacks),
        "members",
        tuple(f"attacks/dp/{a}/n_nonmembers" for a in attacks),
        "non-members",
    )


def _tpr(attacks: tuple[str, ...], fpr: float) -> Sample:
    return replace(_auc(attacks), method="tpr_at_fpr", fpr=fpr)


LIRA = ("lira_online", "lira_offline")  # the LiRA gates read the worse variant; both score the same samples
_PROBES = _share("check_quality/reid_n_probes", "probes")  # the re-id attacks name the same probes
_LINKED = _share("check_quality/linkage_n_faces", "faces")
POPULATION = "a count over every ingested image, not a sample: nothing to estimate"

# gate name (= field of tasks.params.Gates) → spec; adding a gate is one entry here plus one param.
GATE_SPECS: dict[str, GateSpec] = {
    "max_quarantine_fraction": GateSpec(
        "anonymize/quarantine_fraction",
        "<=",
        "share of ingested images quarantined by anonymization",
        no_interval=POPULATION,
    ),
    "min_face_redaction_recall": GateSpec(
        "check_quality/face_redaction_recall",
        ">=",
        "ground-truth faces covered by a redaction",
        needs="face_gt",
        sample=_share("check_quality/face_redaction_total", "faces"),
    ),
    "min_plate_redaction_recall": GateSpec(
        "check_quality/plate_redaction_recall",
        ">=",
        "ground-truth licence plates covered by a redaction",
        needs="plate_gt",
        sample=_share("check_quality/plate_redaction_total", "plates"),
    ),
    "min_text_pii_redaction_recall": GateSpec(
        "check_quality/text_pii_redaction_recall",
        ">=",
        "ground-truth personal text (names, phones, e-mails) covered by a redaction",
        needs="text_pii_gt",
        sample=_share("check_quality/text_pii_redaction_total", "text boxes"),
    ),
    "max_residual_face_rate": GateSpec(
        "check_quality/residual_face_matched_rate",
        "<=",
        "share of ground-truth faces an independent detector (dlib HOG) still finds on the anonymized images",
        needs="face_gt",
        sample=_share("check_quality/n_gt_faces", "faces"),
    ),
    "min_residual_auditor_calibration": GateSpec(
        "check_quality/auditor_raw_face_recall",
        ">=",
        "ground-truth faces the same independent detector finds on the raw "
        "images (an auditor blind to clear faces proves nothing by not "
        "finding them after)",
        needs="face_gt",
        sample=_share("check_quality/auditor_calibration_faces", "faces"),
    ),
    "max_adaptive_reid_rate": GateSpec(
        "check_quality/reid_adaptive_top1",
        "<=",
        "anonymized faces re-identified (top-1) by an attacker who applies the same "
        "method to a gallery of the identities (parrot attack, dlib embeddings)",
        needs="identities",
        sample=_PROBES,
    ),
    "max_trained_reid_rate": GateSpec(
        "check_quality/reid_trained_accuracy",
        "<=",
        "anonymized faces re-identified by a classifier trained on obfuscated faces "
        "of the identities (McPherson et al. 2016)",
        needs="identities",
        sample=_PROBES,
    ),
    "min_reid_attack_calibration": GateSpec(
        "check_quality/reid_clear_naive_top1",
        ">=",
        "clear faces the same attack re-identifies (a weak attacker's low rate proves nothing)",
        needs="identities",
        sample=_PROBES,
    ),
    "min_utility_ratio": GateSpec(
        "check_quality/utility_ratio",
        ">=",
        "task accuracy on anonymized / raw test images (model trained on raw images)",
        needs="labels",
        sample=Sample(
            "paired_ratio",
            ("check_quality/utility_n_images",),
            "test images",
            parts=(
                "check_quality/utility_anon_accuracy",
                "check_quality/utility_raw_accuracy",
                "check_quality/utility_discordant_share",
            ),
        ),
    ),
    "max_text_pii_readable": GateSpec(
        "check_quality/text_pii_readable_anon",
        "<=",
        "ground-truth personal strings an independent OCR still reads on anonymized images",
        needs="text_pii_gt",
        sample=_share("check_quality/text_pii_text_total", "strings"),
    ),
    "max_plate_readable": GateSpec(
        "check_quality/plate_readable_anon",
        "<=",
        "ground-truth licence plates an independent OCR still reads on anonymized images",
        needs="plate_gt",
        sample=_share("check_quality/plate_text_total", "plates"),
    ),
    "min_ocr_auditor_calibration": GateSpec(
        "check_quality/ocr_auditor_raw_recall",
        ">=",
        "ground-truth strings of its weakest category (personal text or plates) "
        "the same independent OCR reads on the raw images (an OCR that cannot "
        "read clear text proves nothing by not reading it after)",
        needs="text_pii_gt",
        sample=_share("check_quality/ocr_auditor_raw_n", "strings"),
    ),
    "min_nonpii_text_preserved": GateSpec(
        "check_quality/text_nonpii_preserved",
        ">=",
        "non-personal text readable on raw images still readable after",
        needs="text_nonpii_gt",
        sample=Sample(
            "clopper_pearson",
            ("check_quality/text_nonpii_text_total",),
            "strings read on raw images",
            share_key="check_quality/text_nonpii_readable_raw",
        ),
    ),
    "min_gx_anonymized_manifest": GateSpec(
        "check_quality/gx_success",
        ">=",
        "Great Expectations suite: the anonymized manifest against the files "
        "re-read from disk (hash, size, metadata, no extra or missing file, "
        "counts, the check's own residual-face auditor)",
        no_interval="checks of every row of the manifest: a pass or a fail, not an estimate",
    ),
    "anonymize_verification_on": GateSpec(
        "anonymize/verify_enabled",
        ">=",
        "anonymize is set to check its output with the detectors (anonymize.verify "
        "regions or whole) and to quarantine every image where something survives",
        no_interval="a setting of the run (1 = on, 0 = off), not a measurement",
    ),
    "max_epsilon": GateSpec(
        "dp/epsilon_checked",
        "<=",
        "DP-SGD ε per image, recomputed from the mechanism history "
        "(the larger of a fresh Opacus accountant and the independent dp-accounting PLD one)",
        needs="labels",
        no_interval="computed by the accountants from the mechanism, not sampled",
    ),
    "max_delta": GateSpec(
        "dp/delta", "<=", "DP-SGD δ", needs="labels", no_interval="a parameter of the mechanism, not sampled"
    ),
    "min_dp_accuracy": GateSpec(
        "utility/dp_test_accuracy",
        ">=",
        "test accuracy of the DP model",
        needs="labels",
        sample=_share("train/n_test", "test images"),
    ),
    "max_mia_auc_dp": GateSpec(
        "attacks/dp/loss_threshold/auc",
        "<=",
        "loss-threshold membership-inference AUC against the DP model",
        needs="labels",
        sample=_auc(("loss_threshold",)),
    ),
    "max_lira_auc_dp": GateSpec(
        "attacks/dp/lira/auc",
        "<=",
        "LiRA membership-inference AUC against the DP model (worse of online / offline, K shadow models)",
        needs="labels",
        sample=_auc(LIRA),
    ),
    "max_lira_tpr_at_0_1pct_fpr_dp": GateSpec(
        "attacks/dp/lira/tpr_at_0_1pct_fpr",
        "<=",
        "LiRA TPR at 0.1% FPR against the DP model (worse of online / offline)",
        needs="labels",
        sample=_tpr(LIRA, 0.001),
    ),
    "min_empirical_epsilon_margin": GateSpec(
        "dp/empirical_epsilon_margin",
        ">=",
        "the claimed ε (checked: max of Opacus and PLD) minus the empirical ε "
        "lower bound of the pre-registered "
        "tests (LiRA online, Clopper–Pearson; the canary audit, Steinke et al. "
        "with δ), 95 % jointly (Bonferroni); negative means DP-SGD is broken",
        needs="labels",
        no_interval="the lower bound is itself a one-sided 95 % confidence bound; "
        "the audit's power is min_audit_ceiling_ratio",
    ),
    "max_gradient_inversion_psnr_dp": GateSpec(
        "attacks/dp/gradient_inversion/psnr",
        "<=",
        "best PSNR (dB) of gradient inversion (DLG / iDLG / Inverting "
        "Gradients) of one image under DP noise at the training σ",
        needs="labels",
        no_interval="the best of every attack on the same images: a worst case "
        "observed, not a rate estimated from a sample",
    ),
    "max_mia_tpr_at_1pct_fpr_dp": GateSpec(
        "attacks/dp/loss_threshold/tpr_at_1pct_fpr",
        "<=",
        "membership-inference TPR at 1% FPR against the DP model",
        needs="labels",
        sample=_tpr(("loss_threshold",), 0.01),
    ),
    "min_audit_ceiling_ratio": GateSpec(
        "dp/canary_ceiling_ratio",
        ">=",
        "the largest ε the canary audit can certify (every guess right, at its "
        "joint confidence and δ) over the claimed ε: an audit that cannot "
        "reach the claim cannot catch a broken DP-SGD",
        needs="labels",
        no_interval="a property of the audit's design (canaries, guesses, confidence), not sampled",
    ),
    "max_linkage_advantage": GateSpec(
        "check_quality/linkage_advantage",
        "<=",
        "anonymized faces linked back to their own raw face among the N raw faces of "
        "the sample (top-1, worse of the naive and the adaptive attacker) minus chance "
        "1/N; needs no identities",
        needs="faces",
        sample=replace(_LINKED, offset_key="check_quality/linkage_chance"),
    ),
    "min_linkage_calibration": GateSpec(
        "check_quality/linkage_clear_top1",
        ">=",
        "lightly perturbed clear faces the same linkage attack links back (a weak "
        "attacker's low rate proves nothing)",
        needs="faces",
        sample=_LINKED,
    ),
}

# Checks that are not policy choices but consistency of the evidence itself.
EPSILON_AGREEMENT = (
    0.03  # (ε_PLD − ε_reported) / ε_PLD: PRV agrees with PLD within 3 % (tests/tasks/test_train_pld.py)
)

AGREEMENT_SPEC = GateSpec(
    "dp/epsilon_understatement",
    "<=",
    "how much lower the ε training reported is than the independent PLD accountant's "
    "(relative); also fails when a fresh Opacus accountant disagrees with training by > 1 %",
    needs="labels",
    no_interval="two accountants' prices of the same history, not sampled",
)

UNIT_AGREEMENT_SPEC = GateSpec(
    "dp/unit_problems",
    "<=",
    "problems re-pricing the per-unit ε from the data (a unit above the recorded cap, "
    "trained images not the bounded selection, dp-accounting's mixture PLD and the "
    "independent PRV disagreeing, a recorded ε below the recomputed one)",
    needs="labels",
    no_interval="two accountants' prices of the same mechanism, not sampled",
)

# gates.max_person_lira_auc_dp: only a per-unit run (train.dp.unit not image) promises anything per person
PERSON_LIRA = tuple(f"person/{a}" for a in LIRA)
PERSON_LIRA_SPEC = GateSpec(
    "attacks/dp/person/lira/auc",
    "<=",
    "LiRA membership inference per person against models trained like the DP model "
    "(a person's images' scores summed; person-disjoint shadows, each held out in turn; "
    "worse of online / offline): was this person in the training data?",
    needs="labels",
    sample=_auc(PERSON_LIRA),
)
PERSON_GATE = "max_person_lira_auc_dp"
PERSON_NOT_ASSESSED = (
    "the privacy unit is one image (train.dp.unit: image): the DP guarantee says nothing per "
    "person, so the person-level attack is not gated"
)


# ------------------------------------------------------------------------------------------ intervals


@dataclass(frozen=True)
class Measure:
    """A measured value and the sample it came from, as an interval method needs them.

    Attributes:
        value: the gate's value.
        n: the sample size (members for the membership attacks).
        n_other: the second sample's size (non-members), or None.
        offset: `value + offset` is the share that was sampled (linkage: chance 1/N).
        parts: a ratio's (numerator, denominator) shares, each measured on n (paired: and the discordant share).
    """

    value: float
    n: int
    n_other: int | None = None
    offset: float = 0.0
    parts: tuple[float, ...] | None = None

    def scaled(self, factor: float) -> Measure:
        """The same measured value on a sample `factor` times as large (each side)."""
        other = None if self.n_other is None else math.ceil(self.n_other * factor)
        return replace(self, n=math.ceil(self.n * factor), n_other=other)


def _clopper_pearson(m: Measure) -> tuple[float, float]:
    """Exact binomial interval of the share `value + offset` = k / n (Clopper & Pearson 1934), shifted back
    (the closed form of tasks.audit.epsilon.clopper_pearson, which the report stage does not import)."""
    k, n, alpha = min(max(round((m.value + m.offset) * m.n), 0), m.n), m.n, 1 - CONFIDENCE
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo - m.offset, hi - m.offset


def _hanley_mcneil(m: Measure) -> tuple[float, float]:
    """Normal interval of an AUC with the Hanley & McNeil (1982) standard error over n members, n_other
    non-members."""
    a, n1, n2 = m.value, m.n, m.n_other or 1
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    half = _Z * math.sqrt(max(var, 0.0))
    return max(a - half, 0.0), min(a + half, 1.0)


def _paired_ratio(m: Measure) -> tuple[float, float]:
    """Wald interval of the log of a ratio of two shares measured on the same n items (Nam & Blackwelder
    2002): var ln(p2 / p1) = (b + c) / (n p1 p2), with b + c the share of items whose two outcomes differ
    (here: test images classified right raw and wrong anonymized, or the other way). The discordant count is
    smoothed by one item, so identical outcomes still have a spread."""
    num, den, disc = m.parts if m.parts is not None and len(m.parts) == 3 else (m.value, 1.0, 1.0)
    if num <= 0 or den <= 0:
        return 0.0, math.inf
    half = _Z * math.sqrt((disc * m.n + 1) / (m.n * m.n * num * den))
    return m.value * math.exp(-half), m.value * math.exp(half)


# method → the values its measure can take (a threshold met by all of them is met whatever the sample)
DOMAINS: dict[str, tuple[float, float]] = {
    "clopper_pearson": (0.0, 1.0),
    "tpr_at_fpr": (0.0, 1.0),
    "hanley_mcneil": (0.0, 1.0),
    "paired_ratio": (0.0, math.inf),
}
# method → (the interval of a measure, how the report names it)
INTERVALS: dict[str, tuple[Callable[[Measure], tuple[float, float]], str]] = {
    "clopper_pearson": (_clopper_pearson, "Clopper–Pearson exact binomial"),
    "tpr_at_fpr": (_clopper_pearson, "Clopper–Pearson exact binomial over the members"),
    "hanley_mcneil": (_hanley_mcneil, "Hanley–McNeil normal approximation"),
    "paired_ratio": (_paired_ratio, "Nam–Blackwelder log interval of a paired ratio (the same test images)"),
}


@dataclass(frozen=True)
class Interval:
    """A gate value's two-sided `CONFIDENCE` interval, its sample and what would resolve it.

    `n_needed` / `n_other_needed`: the sample sizes at which the interval at the measured value no longer
    straddles the threshold (None: it already does not, or no sample size up to `MAX_SAMPLES` does).
    """

    lower: float
    upper: float
    n: int
    method: str
    unit: str
    n_other: int | None = None
    other_unit: str | None = None
    n_needed: int | None = None
    n_other_needed: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "n_other": self.n_other,
            "method": self.method,
            "confidence": CONFIDENCE,
            "unit": self.unit,
            "other_unit": self.other_unit,
            "n_needed": self.n_needed,
            "n_other_needed": self.n_other_needed,
        }


def _decide(lo: float, hi: float, threshold: float, op: str) -> GateStatus | None:
    """passed / failed when the whole interval lies on one side of the threshold, else None (straddles)."""
    if op == "<=":
        return "passed" if hi <= threshold else "failed" if lo > threshold else None
    return "passed" if lo >= threshold else "failed" if hi < threshold else None


def _resolving_factor(m: Measure, threshold: float, op: str, method: str) -> float | None:
    """The smallest factor (>= 1) the sample must grow by for the interval at the measured value to leave the
    threshold; None when no sample up to `MAX_SAMPLES` does. Bisection: the interval narrows as n grows."""
    bounds = INTERVALS[method][0]

    def resolved(f: float) -> bool:
        return _decide(*bounds(m.scaled(f)), threshold, op) is not None

    hi = MAX_SAMPLES / max(m.n, m.n_other or 0, 1)
    if hi <= 1 or not resolved(hi):
        return None
    lo = 1.0
    while hi - lo > 1e-3 * lo:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if resolved(mid) else (mid, hi)
    return hi


def _measure(value: float, sample: Sample, values: Mapping[str, float | None]) -> Measure | str:
    """The value with its sample sizes from `values`, or the reason it has none (a size was not recorded)."""

    def first(*keys: str) -> float | None:
        found = [float(v) for k in keys if (v := values.get(k)) is not None and math.isfinite(v)]
        return found[0] if found else None

    n, other = first(*sample.n_keys), first(*sample.other_keys)
    share = first(sample.share_key) if sample.share_key else 1.0
    offset = first(sample.offset_key) if sample.offset_key else 0.0
    parts = [first(k) for k in sample.parts] if sample.parts else []
    if (
        n is None
        or share is None
        or offset is None
        or any(p is None for p in parts)
        or (sample.other_keys and other is None)
    ):
        keys = [
            *sample.n_keys[:1],
            *sample.other_keys[:1],
            sample.share_key,
            sample.offset_key,
            *(sample.parts or ()),
        ]
        return f"sample size or its parts not recorded ({', '.join(k for k in keys if k)}): no interval, no decision"
    return Measure(
        value,
        round(n * share),
        None if other is None else round(other),
        offset,
        tuple(float(p) for p in parts if p is not None) if sample.parts else None,
    )


def _floor(sample: Sample, m: Measure) -> int | None:
    """The fewest second-sample items the measure needs at all (a TPR at FPR f: 1 / f non-members), when
    the sample has fewer; else None."""
    if sample.fpr is None:
        return None
    need = math.ceil(1 / sample.fpr - 1e-9)
    return need if (m.n_other or 0) < need else None


def _sizes(n: int, unit: str, other: int | None, other_unit: str | None) -> str:
    return f"{n} {unit}" + (f", {other} {other_unit}" if other is not None else "")


def assess(
    value: float, threshold: float, spec: GateSpec, values: Mapping[str, float | None]
) -> tuple[GateStatus, str | None, Interval | None]:
    """The state of a measured value against its threshold, given the sample it came from.

    Args:
        value: the finite measured value.
        threshold: the gate's threshold.
        spec: the gate; without a `sample` the value is compared as it is.
        values: the flat values, where the sample sizes are read (`Sample.n_keys`, ...).
    Returns:
        (status, reason, interval): passed / failed only when the interval lies on one side of the
        threshold; not_assessed with "too few samples (n = …; needs ≥ …)" when it straddles it or the sample
        cannot resolve the measure; failed when the sample size was not recorded (fail closed).
    """
    sample = spec.sample
    if sample is None:
        ok = _OPS[spec.op](value, threshold)
        return (
            ("passed", None, None)
            if ok
            else ("failed", f"measured {value:.4g}, needs {spec.op} {threshold:g}", None)
        )
    m = _measure(value, sample, values)
    if isinstance(m, str) or m.n < 1 or (sample.other_keys and (m.n_other or 0) < 1):
        return "failed", m if isinstance(m, str) else "measured on an empty sample (n = 0)", None
    bounds, words = INTERVALS[sample.method]
    lo, hi = bounds(m)
    state, floor = _decide(lo, hi, threshold, spec.op), _floor(sample, m)
    low, high = DOMAINS[sample.method]
    if _decide(low - m.offset, high - m.offset, threshold, spec.op) == "passed":
        floor = None  # every value the measure can take meets the threshold: nothing left to resolve
    iv = Interval(lo, hi, m.n, words, sample.unit, m.n_other, sample.other_unit or None)
    if state is not None and floor is None:
        reason = (
            None
            if state == "passed"
            else f"measured {value:.4g} [{lo:.4g}, {hi:.4g}], needs {spec.op} {threshold:g}"
        )
        return state, reason, iv
    have = _sizes(m.n, sample.unit, m.n_other, sample.other_unit)
    f = _resolving_factor(m, threshold, spec.op, sample.method) if state is None else 1.0
    if f is None:
        return (
            "not_assessed",
            (
                f"too few samples (n = {have}; no sample size resolves {value:.4g} against "
                f"{threshold:g}: the measured value sits on the threshold)"
            ),
            iv,
        )
    need_n = math.ceil(m.n * f)
    need_other = None if m.n_other is None else max(math.ceil(m.n_other * f), floor or 0)
    iv = replace(iv, n_needed=need_n, n_other_needed=need_other)
    needs = _sizes(need_n, sample.unit, need_other, sample.other_unit)
    if floor is not None:  # the non-members cannot carry the FPR, whatever the members show
        needs = f"{needs}: a TPR at {sample.fpr:.1%} FPR needs one false positive allowed, ≥ {floor} {sample.other_unit}"
    return "not_assessed", f"too few samples (n = {have}; needs ≥ {needs})", iv


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome. `reason`: why it failed, was waived or was not assessed (None when it passed).

    `interval`: the value's confidence interval (None: no value, or `no_interval` says why it has none);
    `default`: the packaged policy's threshold; `loosened`: the threshold is looser than it;
    `policy_change`: the written reason (params' gates_policy_changes) when it is.
    """

    name: str
    threshold: float
    value: float | None
    status: GateStatus
    op: str
    description: str
    reason: str | None = None
    interval: Interval | None = None
    no_interval: str | None = None
    default: float | None = None
    loosened: bool = False
    policy_change: str | None = None

    @property
    def passed(self) -> bool:
        """The measured value met the threshold (a waived or unassessed gate did not pass)."""
        return self.status == "passed"

    @property
    def met(self) -> bool:
        """Counts towards a "pass" verdict: passed, or waived with a written reason."""
        return self.status in MET

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the gate's fields, plus its interval's (lower, upper, n, n_other, method, confidence,
        unit, other_unit, n_needed, n_other_needed; each None without an interval)."""
        empty = dict.fromkeys(
            (
                "lower",
                "upper",
                "n",
                "n_other",
                "method",
                "confidence",
                "unit",
                "other_unit",
                "n_needed",
                "n_other_needed",
            )
        )
        return {
            "name": self.name,
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
            "status": self.status,
            "reason": self.reason,
            "op": self.op,
            "description": self.description,
            "default": self.default,
            "loosened": self.loosened,
            "policy_change": self.policy_change,
            "no_interval": self.no_interval,
        } | (self.interval.as_dict() if self.interval else empty)


def _check(
    name: str,
    threshold: float,
    value: float | None,
    spec: GateSpec,
    values: Mapping[str, float | None],
    *,
    missing: str | None,
    waiver: str | None,
) -> GateResult:
    """The state of one gate: waived beats everything, then not assessable, then the measurement."""
    value = None if value is None or not math.isfinite(value) else float(value)
    status: GateStatus
    reason: str | None
    interval = None
    if missing is not None:
        status, reason = "not_assessed", missing
    elif value is None:
        status, reason = "failed", "not measured"
    else:
        status, reason, interval = assess(value, threshold, spec, values)
    if waiver is not None:
        status, reason = "waived", waiver
    return GateResult(
        name, float(threshold), value, status, spec.op, spec.description, reason, interval, spec.no_interval
    )


def evaluate_gates(
    gates: Gates,
    values: Mapping[str, float | None],
    *,
    missing: Mapping[str, str | None] | None = None,
    waived: Mapping[str, str] | None = None,
    policy_reasons: Mapping[str, str] | None = None,
) -> list[GateResult]:
    """Every gate's state against `values` (flat "<section>/<metric>" keys, the sample sizes among them).

    Args:
        gates: the thresholds.
        values: measured values; a missing or non-finite one fails unless the gate is not assessable.
        missing: `NEEDS` key → None when the data holds it, else the reason it does not (a gate needing
            it is then "not_assessed" with that reason). Keys not given count as held.
        waived: gate name → the written reason it is waived.
        policy_reasons: params' gates_policy_changes (gate → why its threshold is looser than the policy).
    Also checks the reported ε against the independent PLD accountant (`dp/epsilon_pld`): it must not be
    understated by more than `EPSILON_AGREEMENT`, and a fresh Opacus accountant must agree within 1 %.
    A per-unit run (`dp/unit_problems` present) adds its accounting agreement and `max_person_lira_auc_dp`
    (person-level LiRA); a per-image run lists neither (`PERSON_NOT_ASSESSED` says why in compliance.json).
    """
    missing, waived, policy_reasons = missing or {}, waived or {}, policy_reasons or {}
    policy = packaged_gates()

    def one(name: str, threshold: float, value: float | None, spec: GateSpec) -> GateResult:
        why = missing.get(spec.needs) if spec.needs else None
        return _check(name, threshold, value, spec, values, missing=why, waiver=waived.get(name))

    def with_policy(r: GateResult) -> GateResult:
        default = float(getattr(policy, r.name))
        loose = gate_loosened(r.name, r.threshold, default)
        return replace(
            r, default=default, loosened=loose, policy_change=policy_reasons.get(r.name) if loose else None
        )

    results = [
        with_policy(one(name, float(getattr(gates, name)), values.get(spec.value_key), spec))
        for name, spec in GATE_SPECS.items()
    ]
    eps, eps_re, eps_pld = (
        values.get("dp/epsilon"),
        values.get("dp/epsilon_recomputed"),
        values.get("dp/epsilon_pld"),
    )
    gap = None
    if eps and eps_re is not None and eps_pld:
        opacus_gap = abs(eps_re - eps) / eps  # the same accountant, fresh: a mismatch means a wrong record
        gap = (eps_pld - eps) / eps_pld if opacus_gap <= 0.01 else float("inf")
    results.append(one("epsilon_recomputation_agreement", EPSILON_AGREEMENT, gap, AGREEMENT_SPEC))
    if "dp/unit_problems" in values:  # a per-unit run (train.dp.unit): its accounting re-priced from the data
        results.append(one("unit_accounting_agreement", 0.0, values["dp/unit_problems"], UNIT_AGREEMENT_SPEC))
        results.append(
            with_policy(
                one(
                    PERSON_GATE,
                    float(getattr(gates, PERSON_GATE)),
                    values.get(PERSON_LIRA_SPEC.value_key),
                    PERSON_LIRA_SPEC,
                )
            )
        )
    return results


def verdict(results: list[GateResult]) -> str:
    """ "pass" when every gate passed or was waived, else "fail" (a gate not assessed is not met)."""
    return "pass" if results and all(g.met for g in results) else "fail"


# ------------------------------------------------------------------------------------------ policy


@dataclass(frozen=True)
class PolicyChange:
    """A threshold looser than the packaged policy, and the written reason params give for it."""

    name: str
    default: float
    value: float
    reason: str
    op: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "default": self.default,
            "value": self.value,
            "reason": self.reason,
            "op": self.op,
        }


def policy_changes(
    gates: Gates,
    reasons: Mapping[str, str],
    defaults: Gates | None = None,
    *,
    budget: BudgetParams | None = None,
) -> list[PolicyChange]:
    """Every threshold of `gates` looser than `defaults` (a larger maximum, a smaller minimum), in gate order,
    then the privacy budget per dataset when it is above the packaged one (`BUDGET_POLICY`).

    Args:
        gates: the run's thresholds (params' `gates`).
        reasons: params' `gates_policy_changes` (gate or `BUDGET_POLICY` → written reason).
        defaults: the policy; None: the packaged one (`tasks.params.Gates`' defaults).
        budget: params' `train.budget`; None: not compared.
    Raises:
        InvalidInputError: a loosened threshold without a written reason (params refuse it at load; this
            refuses it again for any other caller).
    """
    policy = defaults or packaged_gates()
    out = [
        PolicyChange(
            n, float(getattr(policy, n)), float(getattr(gates, n)), reasons.get(n, "").strip(), gate_op(n)
        )
        for n in Gates.model_fields
        if gate_loosened(n, getattr(gates, n), getattr(policy, n))
    ]
    if budget is not None and budget_loosened(budget):
        out.append(
            PolicyChange(
                BUDGET_POLICY,
                BudgetParams().max_total_epsilon,
                budget.max_total_epsilon,
                reasons.get(BUDGET_POLICY, "").strip(),
                "<=",
            )
        )
    bare = [c.name for c in out if not c.reason]
    if bare:
        raise InvalidInputError(
            f"thresholds {bare}: looser than the packaged policy without a written reason in "
            "gates_policy_changes"
        )
    return out

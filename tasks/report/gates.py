"""Gates: every threshold of `params.yaml: gates`, the measured value it applies to, and its state.

Each gate ends `passed`, `failed`, `waived` (in `gates_waived`, with a written reason) or `not_assessed`
(the data cannot measure it: no face ground truth, no identities, no labels, ...; with the reason). A gate
whose data exists but whose value is missing fails (fail closed): a missing number is never a pass, and
the verdict is "pass" only when every gate passed or was waived.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from tasks.params import Gates

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}
GateStatus = Literal["passed", "failed", "waived", "not_assessed"]
MET: tuple[GateStatus, ...] = ("passed", "waived")

# What the data must hold for a gate to be measurable (`GateSpec.needs`); the report flow says, for each,
# None (it does) or the reason it does not (`data_capabilities`).
NEEDS = ("face_gt", "plate_gt", "text_pii_gt", "text_nonpii_gt", "identities", "faces", "labels")


@dataclass(frozen=True)
class GateSpec:
    """Which measured value a gate checks, how, and what the data must hold to measure it."""

    value_key: str  # key into the flat values mapping built by the report flow
    op: str  # "<=" (a maximum) or ">=" (a minimum)
    description: str
    needs: str | None = None  # one of NEEDS, or None: always measurable


# gate name (= field of tasks.params.Gates) → spec; adding a gate is one entry here plus one param.
GATE_SPECS: dict[str, GateSpec] = {
    "max_quarantine_fraction": GateSpec("anonymize/quarantine_fraction", "<=",
                                        "share of ingested images quarantined by anonymization"),
    "min_face_redaction_recall": GateSpec("check_quality/face_redaction_recall", ">=",
                                          "ground-truth faces covered by a redaction", needs="face_gt"),
    "min_plate_redaction_recall": GateSpec("check_quality/plate_redaction_recall", ">=",
                                           "ground-truth licence plates covered by a redaction", needs="plate_gt"),
    "min_text_pii_redaction_recall": GateSpec("check_quality/text_pii_redaction_recall", ">=",
                                              "ground-truth personal text (names, phones, e-mails) covered by a "
                                              "redaction", needs="text_pii_gt"),
    "max_residual_face_rate": GateSpec("check_quality/residual_face_matched_rate", "<=",
                                       "share of ground-truth faces an independent detector (dlib HOG) still finds "
                                       "on the anonymized images", needs="face_gt"),
    "max_adaptive_reid_rate": GateSpec("check_quality/reid_adaptive_top1", "<=",
                                       "anonymized faces re-identified (top-1) by an attacker who applies the same "
                                       "method to a gallery of the identities (parrot attack, dlib embeddings)", needs="identities"),
    "max_trained_reid_rate": GateSpec("check_quality/reid_trained_accuracy", "<=",
                                      "anonymized faces re-identified by a classifier trained on obfuscated faces "
                                      "of the identities (McPherson et al. 2016)", needs="identities"),
    "min_reid_attack_calibration": GateSpec("check_quality/reid_clear_naive_top1", ">=",
                                            "clear faces the same attack re-identifies (a weak attacker's low rate "
                                            "proves nothing)", needs="identities"),
    "min_utility_ratio": GateSpec("check_quality/utility_ratio", ">=",
                                  "task accuracy on anonymized / raw test images (model trained on raw images)", needs="labels"),
    "max_text_pii_readable": GateSpec("check_quality/text_pii_readable_anon", "<=",
                                      "ground-truth personal strings OCR still reads on anonymized images", needs="text_pii_gt"),
    "max_plate_readable": GateSpec("check_quality/plate_readable_anon", "<=",
                                   "ground-truth licence plates OCR still reads on anonymized images", needs="plate_gt"),
    "min_nonpii_text_preserved": GateSpec("check_quality/text_nonpii_preserved", ">=",
                                          "non-personal text readable on raw images still readable after", needs="text_nonpii_gt"),
    "min_gx_anonymized_manifest": GateSpec("check_quality/gx_success", ">=",
                                           "Great Expectations suite on the anonymized manifest (counts, metadata, "
                                           "sizes, ids, residuals)"),
    "max_epsilon": GateSpec("dp/epsilon_checked", "<=", "DP-SGD ε per image, recomputed from the mechanism history "
                            "(the larger of a fresh Opacus accountant and the independent dp-accounting PLD one)", needs="labels"),
    "max_delta": GateSpec("dp/delta", "<=", "DP-SGD δ", needs="labels"),
    "min_dp_accuracy": GateSpec("utility/dp_test_accuracy", ">=", "test accuracy of the DP model", needs="labels"),
    "max_mia_auc_dp": GateSpec("attacks/dp/loss_threshold/auc", "<=",
                               "loss-threshold membership-inference AUC against the DP model", needs="labels"),
    "max_lira_auc_dp": GateSpec("attacks/dp/lira/auc", "<=",
                                "LiRA membership-inference AUC against the DP model (worse of online / offline, "
                                "K shadow models)", needs="labels"),
    "max_lira_tpr_at_0_1pct_fpr_dp": GateSpec("attacks/dp/lira/tpr_at_0_1pct_fpr", "<=",
                                              "LiRA TPR at 0.1% FPR against the DP model (worse of online / offline)", needs="labels"),
    "min_empirical_epsilon_margin": GateSpec("attacks/dp/empirical_epsilon_margin", ">=",
                                             "theoretical ε minus the empirical ε lower bound of the pre-registered "
                                             "tests (LiRA online, Clopper–Pearson; the canary audit, Steinke et al. "
                                             "with δ), 95 % jointly (Bonferroni); negative means DP-SGD is broken", needs="labels"),
    "max_gradient_inversion_psnr_dp": GateSpec("attacks/dp/gradient_inversion/psnr", "<=",
                                               "best PSNR (dB) of gradient inversion (DLG / iDLG / Inverting "
                                               "Gradients) of one image under DP noise at the training σ", needs="labels"),
    "max_mia_tpr_at_1pct_fpr_dp": GateSpec("attacks/dp/loss_threshold/tpr_at_1pct_fpr", "<=",
                                           "membership-inference TPR at 1% FPR against the DP model", needs="labels"),
    "min_audit_ceiling_ratio": GateSpec("attacks/dp/canary/ceiling_ratio", ">=",
                                        "the largest ε the canary audit can certify (every guess right, at its "
                                        "joint confidence and δ) over the claimed ε: an audit that cannot "
                                        "reach the claim cannot catch a broken DP-SGD", needs="labels"),
    "max_linkage_advantage": GateSpec("check_quality/linkage_advantage", "<=",
                                      "anonymized faces linked back to their own raw face among the N raw faces of "
                                      "the sample (top-1, worse of the naive and the adaptive attacker) minus chance "
                                      "1/N; needs no identities", needs="faces"),
    "min_linkage_calibration": GateSpec("check_quality/linkage_clear_top1", ">=",
                                        "lightly perturbed clear faces the same linkage attack links back (a weak "
                                        "attacker's low rate proves nothing)", needs="faces"),
}

# Checks that are not policy choices but consistency of the evidence itself.
EPSILON_AGREEMENT = 0.03  # (ε_PLD − ε_reported) / ε_PLD: PRV agrees with PLD within 3 % (tests/tasks/test_train_pld.py)


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome. `reason`: why it failed, was waived or was not assessed (None when it passed)."""

    name: str
    threshold: float
    value: float | None
    status: GateStatus
    op: str
    description: str
    reason: str | None = None

    @property
    def passed(self) -> bool:
        """The measured value met the threshold (a waived or unassessed gate did not pass)."""
        return self.status == "passed"

    @property
    def met(self) -> bool:
        """Counts towards a "pass" verdict: passed, or waived with a written reason."""
        return self.status in MET

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "value": self.value, "passed": self.passed,
                "status": self.status, "reason": self.reason, "op": self.op, "description": self.description}


def _check(name: str, threshold: float, value: float | None, spec: GateSpec, *, missing: str | None,
           waiver: str | None) -> GateResult:
    """The state of one gate: waived beats everything, then not assessable, then the measurement."""
    value = None if value is None or not math.isfinite(value) else float(value)
    ok = value is not None and _OPS[spec.op](value, threshold)
    if waiver is not None:
        status, reason = "waived", waiver
    elif missing is not None:
        status, reason = "not_assessed", missing
    elif ok:
        status, reason = "passed", None
    else:
        status = "failed"
        reason = "not measured" if value is None else f"measured {value:.4g}, needs {spec.op} {threshold:g}"
    return GateResult(name, float(threshold), value, status, spec.op, spec.description, reason)  # type: ignore[arg-type]


AGREEMENT_SPEC = GateSpec("dp/epsilon_understatement", "<=",
                          "how much lower the ε training reported is than the independent PLD accountant's "
                          "(relative); also fails when a fresh Opacus accountant disagrees with training by > 1 %",
                          needs="labels")


def evaluate_gates(gates: Gates, values: Mapping[str, float | None], *,
                   missing: Mapping[str, str | None] | None = None,
                   waived: Mapping[str, str] | None = None) -> list[GateResult]:
    """Every gate's state against `values` (flat "<section>/<metric>" keys).

    Args:
        gates: the thresholds.
        values: measured values; a missing or non-finite one fails unless the gate is not assessable.
        missing: `NEEDS` key → None when the data holds it, else the reason it does not (a gate needing
            it is then "not_assessed" with that reason). Keys not given count as held.
        waived: gate name → the written reason it is waived.
    Also checks the reported ε against the independent PLD accountant (`dp/epsilon_pld`): it must not be
    understated by more than `EPSILON_AGREEMENT`, and a fresh Opacus accountant must agree within 1 %.
    """
    missing, waived = missing or {}, waived or {}

    def one(name: str, threshold: float, value: float | None, spec: GateSpec) -> GateResult:
        why = missing.get(spec.needs) if spec.needs else None
        return _check(name, threshold, value, spec, missing=why, waiver=waived.get(name))

    results = [one(name, float(getattr(gates, name)), values.get(spec.value_key), spec)
               for name, spec in GATE_SPECS.items()]
    eps, eps_re, eps_pld = values.get("dp/epsilon"), values.get("dp/epsilon_recomputed"), values.get("dp/epsilon_pld")
    gap = None
    if eps and eps_re is not None and eps_pld:
        opacus_gap = abs(eps_re - eps) / eps  # the same accountant, fresh: a mismatch means a wrong record
        gap = (eps_pld - eps) / eps_pld if opacus_gap <= 0.01 else float("inf")
    results.append(one("epsilon_recomputation_agreement", EPSILON_AGREEMENT, gap, AGREEMENT_SPEC))
    return results


def verdict(results: list[GateResult]) -> str:
    """"pass" when every gate passed or was waived, else "fail" (a gate not assessed is not met)."""
    return "pass" if results and all(g.met for g in results) else "fail"

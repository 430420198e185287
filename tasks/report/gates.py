"""Gates: every threshold of `params.yaml: gates`, the measured value it applies to, and a verdict.

A gate whose value was not measured fails (fail closed): a missing number is never a pass.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tasks.params import Gates

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class GateSpec:
    """Which measured value a gate checks, and how."""

    value_key: str  # key into the flat values mapping built by the report flow
    op: str  # "<=" (a maximum) or ">=" (a minimum)
    description: str


# gate name (= field of tasks.params.Gates) → spec; adding a gate is one entry here plus one param.
GATE_SPECS: dict[str, GateSpec] = {
    "max_quarantine_fraction": GateSpec("anonymize/quarantine_fraction", "<=",
                                        "share of ingested images quarantined by anonymization"),
    "min_face_redaction_recall": GateSpec("check_quality/face_redaction_recall", ">=",
                                          "ground-truth faces covered by a redaction"),
    "min_plate_redaction_recall": GateSpec("check_quality/plate_redaction_recall", ">=",
                                           "ground-truth licence plates covered by a redaction"),
    "min_text_pii_redaction_recall": GateSpec("check_quality/text_pii_redaction_recall", ">=",
                                              "ground-truth personal text (names, phones, e-mails) covered by a "
                                              "redaction"),
    "max_residual_face_rate": GateSpec("check_quality/residual_face_matched_rate", "<=",
                                       "share of ground-truth faces an independent detector (dlib HOG) still finds "
                                       "on the anonymized images"),
    "max_adaptive_reid_rate": GateSpec("check_quality/reid_adaptive_top1", "<=",
                                       "anonymized faces re-identified (top-1) by an attacker who applies the same "
                                       "method to a gallery of the identities (parrot attack, dlib embeddings)"),
    "max_trained_reid_rate": GateSpec("check_quality/reid_trained_accuracy", "<=",
                                      "anonymized faces re-identified by a classifier trained on obfuscated faces "
                                      "of the identities (McPherson et al. 2016)"),
    "min_reid_attack_calibration": GateSpec("check_quality/reid_clear_naive_top1", ">=",
                                            "clear faces the same attack re-identifies (a weak attacker's low rate "
                                            "proves nothing)"),
    "min_utility_ratio": GateSpec("check_quality/utility_ratio", ">=",
                                  "task accuracy on anonymized / raw test images (model trained on raw images)"),
    "max_text_pii_readable": GateSpec("check_quality/text_pii_readable_anon", "<=",
                                      "ground-truth personal strings OCR still reads on anonymized images"),
    "max_plate_readable": GateSpec("check_quality/plate_readable_anon", "<=",
                                   "ground-truth licence plates OCR still reads on anonymized images"),
    "min_nonpii_text_preserved": GateSpec("check_quality/text_nonpii_preserved", ">=",
                                          "non-personal text readable on raw images still readable after"),
    "min_gx_anonymized_manifest": GateSpec("check_quality/gx_success", ">=",
                                           "Great Expectations suite on the anonymized manifest (counts, metadata, "
                                           "sizes, ids, residuals)"),
    "max_epsilon": GateSpec("dp/epsilon_recomputed", "<=", "DP-SGD ε, recomputed from the mechanism history"),
    "max_delta": GateSpec("dp/delta", "<=", "DP-SGD δ"),
    "min_dp_accuracy": GateSpec("utility/dp_test_accuracy", ">=", "test accuracy of the DP model"),
    "max_mia_auc_dp": GateSpec("attacks/dp/loss_threshold/auc", "<=",
                               "loss-threshold membership-inference AUC against the DP model"),
    "max_lira_auc_dp": GateSpec("attacks/dp/lira/auc", "<=",
                                "LiRA membership-inference AUC against the DP model (worse of online / offline, "
                                "K shadow models)"),
    "max_lira_tpr_at_0_1pct_fpr_dp": GateSpec("attacks/dp/lira/tpr_at_0_1pct_fpr", "<=",
                                              "LiRA TPR at 0.1% FPR against the DP model (worse of online / offline)"),
    "min_empirical_epsilon_margin": GateSpec("attacks/dp/empirical_epsilon_margin", ">=",
                                             "theoretical ε minus the empirical ε lower bound of the attacks and the "
                                             "canary audit (Clopper–Pearson 95 %); negative means DP-SGD is broken"),
    "max_gradient_inversion_psnr_dp": GateSpec("attacks/dp/gradient_inversion/psnr", "<=",
                                               "best PSNR (dB) of gradient inversion (DLG / iDLG / Inverting "
                                               "Gradients) of one image under DP noise at the training σ"),
    "max_mia_tpr_at_1pct_fpr_dp": GateSpec("attacks/dp/loss_threshold/tpr_at_1pct_fpr", "<=",
                                           "membership-inference TPR at 1% FPR against the DP model"),
}

# Checks that are not policy choices but consistency of the evidence itself.
EPSILON_AGREEMENT = 0.01  # |ε_recomputed − ε_reported| / ε_reported


@dataclass(frozen=True)
class GateResult:
    name: str
    threshold: float
    value: float | None
    passed: bool
    op: str
    description: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "value": self.value, "passed": self.passed,
                "op": self.op, "description": self.description}


def _check(name: str, threshold: float, value: float | None, op: str, description: str) -> GateResult:
    ok = value is not None and math.isfinite(value) and _OPS[op](value, threshold)
    return GateResult(name, float(threshold), None if value is None else float(value), bool(ok), op, description)


def evaluate_gates(gates: Gates, values: Mapping[str, float | None]) -> list[GateResult]:
    """Check every gate against `values` (flat "<section>/<metric>" keys); missing values fail.

    Also checks that the recomputed ε agrees with the one training reported (within 1 %).
    """
    results = [_check(name, float(getattr(gates, name)), values.get(spec.value_key), spec.op, spec.description)
               for name, spec in GATE_SPECS.items()]
    eps, eps_re = values.get("dp/epsilon"), values.get("dp/epsilon_recomputed")
    rel = abs(eps_re - eps) / eps if eps and eps_re is not None else None
    results.append(_check("epsilon_recomputation_agreement", EPSILON_AGREEMENT, rel, "<=",
                          "relative gap between the ε training reported and the ε recomputed here"))
    return results

"""The report's metric definitions: every key the stages, the gates and compliance.json use has a label, a unit
and a one-line meaning; families never shadow exact keys."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.params import Params
from tasks.report.definitions import (
    ALIASES,
    DEFINITIONS,
    FAMILIES,
    RENAMES,
    Definition,
    define,
    label,
    undefined,
)
from tasks.report.gates import AGREEMENT_SPEC, GATE_SPECS
from tests.tasks.test_report import build_report, report_metrics

# Keys of every family, as the stages write them (a default builtin run, plus the variants other params give).
FAMILY_KEYS = (
    "ingest/gt_face", "ingest/gt_body", "ingest/gt_plate", "ingest/gt_text_pii", "ingest/gt_text_nonpii",
    "anonymize/detections_face", "anonymize/detections_plate", "anonymize/detections_text",
    "anonymize/detections_body", "anonymize/gt_face_recall", "anonymize/gt_text_pii_recall",
    "anonymize/gt_text_nonpii_boxes", "check_quality/face_redaction_recall", "check_quality/plate_redaction_total",
    "check_quality/text_pii_redaction_covered", "check_quality/placard_overredaction_rate",
    "check_quality/text_nonpii_overredaction_total", "check_quality/psnr_whole", "check_quality/psnr_outside_median",
    "check_quality/ssim_outside", "check_quality/msssim_whole_median", "check_quality/text_pii_readable_anon",
    "check_quality/plate_readable_raw", "check_quality/text_nonpii_preserved", "check_quality/plate_text_total",
    "check_quality/reid_naive_top1", "check_quality/reid_adaptive_auc", "check_quality/reid_clear_naive_top5",
    "check_quality/linkage_naive_top1", "check_quality/linkage_clear_top1", "check_quality/linkage_adaptive_auc",
    "check_quality/compare_none_psnr_whole", "check_quality/compare_dp_pixelate_reid_adaptive_top1",
    "check_quality/compare_replace_text_pii_readable", "check_quality/compare_mask_n_probes",
    "method_comparison/utility_ratio",
    "audit/dp/loss_threshold/auc", "audit/nonprivate/lira_online/tpr_at_0_1pct_fpr_ci_low",
    "audit/dp/lira_offline/tpr_at_1pct_fpr_supported", "audit/dp/shadow/advantage",
    "audit/dp/lira_online/empirical_epsilon_lower_bound", "audit/nonprivate/loss_threshold/class_7/auc",
    "audit/dp/shadow_models", "audit/nonprivate/target_n_train", "audit/dp/empirical_epsilon_lower_bound",
    "audit/nonprivate/exploratory_epsilon_lower_bound", "audit/dp/model_inversion/ssim_max_other",
    "audit/nonprivate/gradient_inversion/psnr", "audit/gradient_inversion/pixel_linear/dp_sigma_0.01/psnr_max",
    "audit/gradient_inversion/digit_hog/prune_95/accuracy", "audit/gradient_inversion/pixel_linear/int8/ssim_max",
    "attacks/lira/dp/tpr_at_0.1pct_fpr", "attacks/loss_threshold/nonprivate/auc",
    "attacks/model_inversion/dp/confidence", "attacks/gradient_inversion/nonprivate/ssim",
)


def _is_one_line(d: Definition) -> bool:
    return all(s and s == s.strip() and "\n" not in s for s in (d.label, d.unit, d.meaning)) and len(d.meaning) <= 200


def test_every_gate_metric_is_defined() -> None:
    keys = [spec.value_key for spec in GATE_SPECS.values()] + [AGREEMENT_SPEC.value_key]
    assert undefined(keys) == []
    assert label("attacks/dp/lira/auc") == "LiRA (worse of online and offline) AUC, DP model"
    assert label("dp/epsilon_checked") == "ε checked"


def test_every_key_of_the_report_fixture_is_defined() -> None:
    keys = [k for stage in report_metrics().values() for k in stage]
    assert undefined(keys) == []


def test_compliance_json_paths_are_defined() -> None:
    """The JSON keeps its machine keys; joined by "/" they find the same definitions."""
    c = build_report(report_metrics())
    paths = [f"quality/{k}" for k in c["quality"]] + [f"anonymization/{k}" for k in c["anonymization"]]
    paths += [f"counts/{k}" for k in c["counts"]] + [f"utility/{k}" for k in c["utility"]]
    paths += [f"gate_states/{k}" for k in c["gate_states"]]
    paths += [f"attacks/{a}/{m}/{f}" for a, ms in c["attacks"].items() for m, fs in ms.items() for f in fs
              if f != "variant"]
    paths += [f"dp/{k}" for k, v in c["dp"].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    paths += [f"audit_design/{k}" for k, v in c["audit_design"].items() if isinstance(v, int | float)]
    assert undefined(paths) == []
    assert define("quality/face_redaction_recall") == define("check_quality/face_redaction_recall")
    assert define("attacks/loss_threshold/dp/tpr_at_0.1pct_fpr") == define("audit/dp/loss_threshold/tpr_at_0_1pct_fpr")


@pytest.mark.parametrize("key", [*DEFINITIONS, *FAMILY_KEYS])
def test_each_definition_has_a_label_a_unit_and_a_one_line_meaning(key: str) -> None:
    d = define(key)
    assert d is not None, key
    assert _is_one_line(d), (key, d)
    assert d.meaning.endswith("."), (key, d.meaning)


def test_family_regexes_do_not_shadow_exact_keys() -> None:
    shadowed = [(key, p.pattern) for key in DEFINITIONS for p, _ in FAMILIES if p.fullmatch(key)]
    assert shadowed == []
    renamed = [key for key in DEFINITIONS for old, _ in RENAMES if key.startswith(old)]
    assert renamed == []  # a renamed prefix is never also an exact key: one way to each definition


def test_each_family_key_matches_exactly_one_family() -> None:
    for key in FAMILY_KEYS:
        assert sum(bool(p.fullmatch(key)) for p, _ in FAMILIES) == 1, key


def test_undefined_lists_unknown_keys_once_sorted() -> None:
    assert undefined(["check_quality/psnr_whole", "zz/unknown", "audit/dp/made_up", "zz/unknown"]) == [
        "audit/dp/made_up", "zz/unknown"]
    assert define("audit/dp/lira_online/made_up") is None
    assert label("zz/unknown") == "zz/unknown"


def test_labels_carry_the_captured_part() -> None:
    assert label("audit/dp/lira_online/auc") == "LiRA (online) AUC, DP model"
    assert label("audit/nonprivate/lira_offline/tpr_at_0_1pct_fpr") == "LiRA (offline) TPR at 0.1 % FPR, non-private baseline"
    assert label("check_quality/compare_dp_pixelate_psnr_whole") == "DP pixelization: PSNR, whole image"
    assert label("audit/dp/shadow/class_3/auc") == "Shadow-model attack AUC on class 3, DP model"
    assert label("audit/gradient_inversion/pixel_linear/dp_sigma_0.5/psnr_max") == (
        "Gradient inversion PSNR, pixel-linear model, DP noise σ = 0.5")
    assert define("attacks/dp/canary/ceiling_ratio") is define("audit/dp/canary/ceiling_ratio")


def test_labels_are_unique_except_aliases() -> None:
    """Two keys share a label only when one is an alias of the other (the same quantity under two keys: e.g.
    train/epsilon is compliance.json's dp.epsilon); then they share the very same Definition."""
    canonical = {k: d for k, d in DEFINITIONS.items() if k not in ALIASES}
    labels = [d.label for d in canonical.values()]
    assert len(labels) == len(set(labels)), sorted(x for x in labels if labels.count(x) > 1)
    for alias, target in ALIASES.items():
        assert DEFINITIONS[alias] == define(target), alias
    # family labels are unique too, and none repeats an exact one
    family = [label(k) for k in FAMILY_KEYS if not k.startswith("attacks/")]
    assert len(family) == len(set(family)) and not set(family) & set(labels)


def test_shares_and_units_are_words() -> None:
    assert define("check_quality/face_redaction_recall") == Definition(
        "Face redaction recall", "share of faces",
        "Share of ground-truth faces at least 70 % covered by a redaction, over all anonymized images.")
    units = {define(k).unit for k in [*DEFINITIONS, *FAMILY_KEYS]}  # type: ignore[union-attr]
    assert "" not in units and all(u == u.strip() for u in units)


def _stage_code_keys(params: Params) -> list[str]:
    """The keys the stages' result objects emit, from the real dataclasses (tiny made-up values)."""
    from tasks.anonymize.engine import AnonymizeSummary
    from tasks.anonymize.gt_eval import GtTally, ImageEval
    from tasks.audit.canary import CanaryAudit
    from tasks.audit.epsilon import EpsilonBound
    from tasks.audit.experiments import dp_epsilon_summary, epsilon_bounds
    from tasks.audit.mia import score_attack
    from tasks.audit.model_inversion import ModelInversionResult
    from tasks.audit.tables import defence_row, gi_metrics
    from tasks.check_quality.compare import MethodRow
    from tasks.check_quality.linkage import LinkageResult
    from tasks.check_quality.lpips import LpipsStatus
    from tasks.check_quality.reid import MatchResult, ReidReport, TrainedAttack
    from tasks.check_quality.summary import QualitySummary
    from tasks.check_quality.text import readability
    from tasks.check_quality.utility import UtilityResult
    from tasks.ingest.collection import CocoCollection
    from tasks.report.retention import RetentionStatus
    from tasks.train.dp import DpTrainingRecord
    from tasks.train.ledger import BudgetStatus

    pair, mean_median = (1, 2), (0.5, 0.5)
    match = MatchResult(0.1, 0.2, 0.6, 10, 0.01)
    keys = list(QualitySummary(10, {"whole": mean_median, "outside": mean_median}, {"whole": mean_median,
                               "outside": mean_median}, 0, {"face": pair, "plate": pair, "text_pii": pair},
                               {"text_nonpii": pair, "placard": pair}, 5, 4, 4, 0, 1, 3, 3, 2,
                               {"whole": mean_median, "outside": mean_median}).as_metrics())
    keys += ReidReport("inpaint", match, match, TrainedAttack(0.1, 0.01, 20, 10)).as_metrics("reid")
    keys += match.as_metrics("reid_clear_naive")
    keys += LinkageResult(match, match, match, 10).as_metrics("linkage")
    keys += UtilityResult(0.9, 0.8, 10).as_metrics("utility")
    keys += readability([{"text_pii": (1, 0, 2), "plate": (1, 0, 1), "text_nonpii": (2, 2, 2)}]).as_metrics()
    keys += LpipsStatus(True, "weights", 0.2, 3).as_metrics()
    for method in ("none", *params.check_quality.compare_methods):
        keys += MethodRow(method, *[1.0] * (len(MethodRow.__dataclass_fields__) - 1)).as_metrics()
    keys += AnonymizeSummary(10, 9, 1, {"face": 3, "plate": 1, "text": 2, "body": 1}, 1, {"x": 1}, 2, 1.0).as_metrics()
    tally = GtTally()
    tally.add(ImageEval(True, {"face": pair, "plate": pair, "text_pii": pair, "text_nonpii": pair}, pair, pair, pair))
    keys += [f"anonymize/{k}" for k in tally.metrics()]
    keys += CocoCollection((), (), {"person": 1}, 1, 0).as_metrics()
    record = DpTrainingRecord(1.1, 0.2, 50, 10, "prv", 3.0, 1e-5, 2.9, 1.0, 1200, 256, True, ((1.1, 0.2, 50),))
    keys += record.as_metrics()
    keys += BudgetStatus("d", 1, 2.9, 2.9, "prv", 1e-5, 10.0).as_metrics()
    keys += RetentionStatus(7, None, "none", "now", None, True, True, None).as_metrics()
    rng = np.random.default_rng(0)
    is_member = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    scores = {a: rng.normal(size=80) for a in params.audit.attacks}
    audit: dict[str, float] = {}
    for which in ("dp", "nonprivate"):
        for a, s in scores.items():
            audit |= score_attack(s[is_member], s[~is_member], name=a).as_metrics(f"audit/{which}")
        audit |= epsilon_bounds(which, scores, is_member, delta=1e-5, audit=params.audit, seed=0)
        audit |= ModelInversionResult(0.3, 0.2, 0.25, 0.9, (0.3,)).as_metrics(f"audit/{which}")
    audit |= EpsilonBound(0.1, 0.0, 0.05, 20, 20).as_metrics("audit/dp/loss_threshold")
    audit |= CanaryAudit(5000, 2500, 1300, 0.025, 0.1, 1e-5, 6.0).as_metrics("audit/dp")
    audit |= dp_epsilon_summary(audit, epsilon=2.9, audit=params.audit)
    rows = [defence_row(m, d, 0.0, psnr_max=10.0, ssim_max=0.1, accuracy=0.5)
            for m in ("pixel_linear", params.train.model) for d in ("none", "dp_train_sigma", "dp_sigma_0.01",
                                                                    "prune_95", "fp16", "int8")]
    return keys + list(audit) + list(gi_metrics(rows))


def test_every_key_the_stage_code_emits_is_defined(params: Params) -> None:
    keys = _stage_code_keys(params)
    assert len(keys) > 300
    assert undefined(keys) == []
    assert all(_is_one_line(define(k)) for k in keys)  # type: ignore[arg-type]

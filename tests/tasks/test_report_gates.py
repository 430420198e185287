"""Gates as policy and as statistics (issue 34, items 3 and 10).

Policy: the packaged thresholds (`tasks.params.Gates`' defaults) are the policy; every threshold is bounded;
a looser one needs a written reason (`gates_policy_changes`), is listed, and reads worse in the diff.
Power: a measured gate value has a confidence interval; one that straddles its threshold, or a sample that
cannot resolve the measure, is `not_assessed` with the sample size that would resolve it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tasks.errors import InvalidInputError
from tasks.params import Gates, parse_params
from tasks.report.diff import diff_compliance
from tasks.report.gates import AGREEMENT_SPEC, GATE_SPECS, evaluate_gates
from tests.tasks.test_report import build_report, report_metrics

WHY = "the camera's faces are all frontal and large: agreed with the DPO on 2026-12-01"


def _gates(results: list[Any]) -> dict[str, Any]:
    return {g.name: g for g in results}


def _lira(auc: float | None = None, tpr: float | None = None, *, members: int, nonmembers: int) -> dict[str, float]:
    """Flat values of a LiRA measurement (both variants score the same audited samples)."""
    out = {f"attacks/dp/lira_online/{k}": float(v) for k, v in (("n_members", members), ("n_nonmembers", nonmembers))}
    if auc is not None:
        out["attacks/dp/lira/auc"] = auc
    if tpr is not None:
        out["attacks/dp/lira/tpr_at_0_1pct_fpr"] = tpr
    return out


# ------------------------------------------------------------------------------------------ policy (item 3)

def test_a_loosened_threshold_without_a_reason_is_refused_naming_the_key() -> None:
    for gates in ({"max_lira_auc_dp": 0.6}, {"min_face_redaction_recall": 0.5}, {"min_empirical_epsilon_margin": -0.5}):
        name = next(iter(gates))
        with pytest.raises(InvalidInputError, match=rf"gates_policy_changes: .*gates\.{name} .* looser than the packaged"):
            parse_params({"gates": gates})
    # a stricter threshold is not a policy change
    assert parse_params({"gates": {"max_lira_auc_dp": 0.55, "min_face_redaction_recall": 0.95}}).gates_policy_changes == {}


def test_policy_change_reasons_are_validated_like_waivers() -> None:
    with pytest.raises(InvalidInputError, match="unknown gate"):
        parse_params({"gates": {"max_epsilon": 4.0}, "gates_policy_changes": {"max_eps": WHY}})
    with pytest.raises(InvalidInputError, match="written reason"):
        parse_params({"gates": {"max_epsilon": 4.0}, "gates_policy_changes": {"max_epsilon": "  "}})


def test_a_loosened_threshold_with_a_reason_is_listed_and_marked_on_its_gate() -> None:
    from tasks.report.gates import policy_changes

    p = parse_params({"gates": {"max_lira_auc_dp": 0.6, "max_epsilon": 2.0}, "gates_policy_changes": {"max_lira_auc_dp": WHY}})
    changes = policy_changes(p.gates, p.gates_policy_changes)
    assert [c.as_dict() for c in changes] == [{"name": "max_lira_auc_dp", "default": 0.56, "value": 0.6, "reason": WHY,
                                              "op": "<="}]  # max_epsilon 2.0 is stricter: not listed
    gates = _gates(evaluate_gates(p.gates, {}, policy_reasons=p.gates_policy_changes))
    lira = gates["max_lira_auc_dp"].as_dict()
    assert lira["loosened"] is True and lira["policy_change"] == WHY and lira["default"] == 0.56
    assert gates["max_epsilon"].as_dict()["loosened"] is False and gates["max_epsilon"].policy_change is None
    with pytest.raises(InvalidInputError, match="max_lira_auc_dp"):  # any other caller: still no reason, no list
        policy_changes(p.gates, {})


def test_the_diff_marks_a_loosened_threshold_worse_even_when_the_gate_now_passes() -> None:
    metrics = report_metrics(**{"audit/dp/lira_offline/auc": 0.58})  # 2,000 a side: resolved, above 0.56
    before = build_report(metrics)
    assert _gates_of(before)["max_lira_auc_dp"]["status"] == "failed"
    listed = [{"name": "max_lira_auc_dp", "default": 0.56, "value": 0.7, "reason": WHY, "op": "<="}]
    after = build_report(metrics, gates=Gates(max_lira_auc_dp=0.7), policy_changes=listed)
    assert _gates_of(after)["max_lira_auc_dp"]["status"] == "passed"
    assert _gates_of(after)["max_lira_auc_dp"]["policy_change"] == WHY and after["policy_changes"] == listed
    rows = {r["key"]: r for r in diff_compliance(after, before, previous_ref="v3")["rows"]}
    assert rows["gates.max_lira_auc_dp"]["before"] == "failed" and rows["gates.max_lira_auc_dp"]["after"] == "passed"
    assert rows["gates.max_lira_auc_dp"]["worse"] is True
    assert rows["gates.max_lira_auc_dp.threshold"] | {"what": None} == {
        "section": "gates", "what": None, "key": "gates.max_lira_auc_dp.threshold", "before": 0.56, "after": 0.7,
        "change": pytest.approx(0.14), "worse": True}
    # the way back (a stricter threshold) is not worse; an unchanged threshold has no row
    back = {r["key"]: r for r in diff_compliance(before, after, previous_ref="v3")["rows"]}
    assert back["gates.max_lira_auc_dp.threshold"]["worse"] is False
    assert not [k for k in {r["key"] for r in diff_compliance(after, copy.deepcopy(after), previous_ref="v3")["rows"]}
                if k.endswith(".threshold")]


def test_the_diff_compares_a_gate_new_since_promotion_with_the_policy() -> None:
    after = build_report(report_metrics(), gates=Gates(min_linkage_calibration=0.5))
    before = copy.deepcopy(after)
    before["gates"] = [g for g in before["gates"] if g["name"] != "min_linkage_calibration"]
    row = {r["key"]: r for r in diff_compliance(after, before, previous_ref="v3")["rows"]}["gates.min_linkage_calibration.threshold"]
    assert (row["before"], row["after"], row["worse"]) == (0.8, 0.5, True)


def _gates_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in c["gates"]}


@pytest.mark.parametrize("gates", [{"max_epsilon": 1e6}, {"min_empirical_epsilon_margin": -1e9}, {"max_delta": 0.5},
                                   {"max_lira_auc_dp": 0.5}, {"min_face_redaction_recall": 1.0},
                                   {"max_residual_face_rate": 0.0}, {"max_gradient_inversion_psnr_dp": 1e3},
                                   {"min_audit_ceiling_ratio": 1e6}, {"anonymize_verification_on": 0.0}])
def test_out_of_bound_thresholds_are_refused(gates: dict[str, float]) -> None:
    name = next(iter(gates))
    reasons = {name: WHY}  # a reason does not make an unbounded threshold acceptable
    with pytest.raises(InvalidInputError, match=rf"gates\.{name}: Input should be"):
        parse_params({"gates": gates, "gates_policy_changes": reasons})


def test_the_packaged_policy_is_in_one_place(raw_params: dict) -> None:
    """params.yaml repeats the schema's defaults: the values a user sees are the policy's."""
    from tasks.params import gate_op

    assert raw_params["gates"] == Gates().model_dump()
    assert raw_params["gates_policy_changes"] == {}
    assert all(spec.op == gate_op(name) for name, spec in GATE_SPECS.items())


# ------------------------------------------------------------------------------------------ power (item 10)

def test_an_auc_on_27_members_and_9_nonmembers_straddling_its_threshold_is_not_assessed() -> None:
    """An own-data run on 45 real photos: LiRA AUC 0.73 on 27 members / 9 non-members cannot carry a 0.56 gate."""
    gate = _gates(evaluate_gates(Gates(), _lira(auc=0.73, members=27, nonmembers=9)))["max_lira_auc_dp"]
    assert gate.status == "not_assessed"
    match = re.fullmatch(r"too few samples \(n = 27 members, 9 non-members; needs ≥ (\d+) members, (\d+) non-members\)",
                         gate.reason or "")
    assert match, gate.reason
    d = gate.as_dict()
    assert d["lower"] < 0.56 < d["upper"] and d["n"] == 27 and d["n_other"] == 9
    assert d["method"] == "Hanley–McNeil normal approximation" and d["confidence"] == 0.95
    need = int(match[1]), int(match[2])
    assert need[0] > 27 and need[1] > 9 and (d["n_needed"], d["n_other_needed"]) == need
    # the sample it names resolves the same value (here: fails it), one much smaller does not
    assert _gates(evaluate_gates(Gates(), _lira(auc=0.73, members=need[0], nonmembers=need[1])))["max_lira_auc_dp"].status == "failed"


def test_a_tpr_at_0_1pct_fpr_on_9_nonmembers_is_not_assessed() -> None:
    """0.1 % FPR on 9 non-members is "no false positive at all": the TPR is that of another measure."""
    gate = _gates(evaluate_gates(Gates(), _lira(tpr=0.26, members=27, nonmembers=9)))["max_lira_tpr_at_0_1pct_fpr_dp"]
    assert gate.status == "not_assessed" and gate.value == 0.26
    assert gate.reason is not None and gate.reason.startswith("too few samples (n = 27 members, 9 non-members; needs ≥ ")
    assert "1000 non-members" in gate.reason and gate.as_dict()["n_other_needed"] == 1000
    # the default run's 400 holdout images cannot carry it either, however low the TPR
    low = _gates(evaluate_gates(Gates(), _lira(tpr=0.0, members=1200, nonmembers=400)))["max_lira_tpr_at_0_1pct_fpr_dp"]
    assert low.status == "not_assessed" and "1000 non-members" in (low.reason or "")
    # unless the threshold is met by any TPR at all (a maximum of 1: a loosened test workspace)
    trivial = _gates(evaluate_gates(Gates(max_lira_tpr_at_0_1pct_fpr_dp=1.0), _lira(tpr=0.26, members=27, nonmembers=9)))
    assert trivial["max_lira_tpr_at_0_1pct_fpr_dp"].status == "passed"


def test_clearly_resolved_values_still_pass_and_fail() -> None:
    ok = _gates(evaluate_gates(Gates(), _lira(auc=0.51, tpr=0.002, members=2000, nonmembers=2000)))
    assert ok["max_lira_auc_dp"].status == "passed" and ok["max_lira_auc_dp"].reason is None
    assert ok["max_lira_tpr_at_0_1pct_fpr_dp"].status == "passed"
    bad = _gates(evaluate_gates(Gates(), _lira(auc=0.75, tpr=0.3, members=2000, nonmembers=2000)))
    assert bad["max_lira_auc_dp"].status == "failed" and bad["max_lira_tpr_at_0_1pct_fpr_dp"].status == "failed"
    assert re.fullmatch(r"measured 0\.75 \[0\.7\d+, 0\.7\d+\], needs <= 0\.56", bad["max_lira_auc_dp"].reason or "")
    # a share: 3 of 3,000 faces still found passes a 2 % maximum; 300 of 3,000 fails it
    for rate, state in ((0.001, "passed"), (0.1, "failed")):
        g = _gates(evaluate_gates(Gates(), {"check_quality/residual_face_matched_rate": rate, "check_quality/n_gt_faces": 3000}))
        assert g["max_residual_face_rate"].status == state


def test_a_share_straddling_its_threshold_names_the_sample_that_would_resolve_it() -> None:
    """No personal string read of 30 cannot show "at most 2 %" (Clopper–Pearson upper bound 0.116); 183 can."""
    def state(n: int) -> Any:
        return _gates(evaluate_gates(Gates(), {"check_quality/text_pii_readable_anon": 0.0,
                                               "check_quality/text_pii_text_total": n}))["max_text_pii_readable"]

    g = state(30)
    assert (g.status, g.reason) == ("not_assessed", "too few samples (n = 30 strings; needs ≥ 183 strings)")
    assert g.interval is not None and g.interval.upper == pytest.approx(0.1157, abs=1e-4)
    assert state(183).status == "passed" and state(170).status == "not_assessed"
    on = _gates(evaluate_gates(Gates(), {"check_quality/reid_adaptive_top1": 0.05, "check_quality/reid_n_probes": 100}))
    assert on["max_adaptive_reid_rate"].status == "not_assessed"  # exactly on the threshold: no n resolves it
    assert "no sample size resolves" in (on["max_adaptive_reid_rate"].reason or "")


def test_a_value_without_its_sample_size_fails_closed() -> None:
    g = _gates(evaluate_gates(Gates(), {"check_quality/face_redaction_recall": 0.99}))["min_face_redaction_recall"]
    assert g.status == "failed" and "check_quality/face_redaction_total" in (g.reason or "")


def test_every_gate_has_an_interval_or_says_why_not() -> None:
    for name, spec in [*GATE_SPECS.items(), ("agreement", AGREEMENT_SPEC)]:
        assert (spec.sample is None) != (spec.no_interval is None), name
    unsampled = {n for n, s in GATE_SPECS.items() if s.sample is None}
    assert {"max_epsilon", "max_delta", "max_quarantine_fraction", "anonymize_verification_on"} <= unsampled
    c = build_report(report_metrics())
    for g in c["gates"]:
        assert {"lower", "upper", "n", "method", "no_interval"} <= set(g)
        assert (g["lower"] is None) == (g["name"] in unsampled | {"epsilon_recomputation_agreement"}), g["name"]
    assert _gates_of(c)["max_epsilon"]["no_interval"].startswith("computed by the accountants")


def test_new_gates_read_their_contract_keys() -> None:
    """Items 2 and 4: verification off fails (unless waived); the auditors' calibrations are gated."""
    values = {"anonymize/verify_enabled": 0.0, "check_quality/auditor_raw_face_recall": 0.3,
              "check_quality/auditor_calibration_faces": 600, "check_quality/ocr_auditor_raw_recall": 0.9,
              "check_quality/ocr_auditor_raw_n": 400}
    g = _gates(evaluate_gates(Gates(), values))
    assert g["anonymize_verification_on"].status == "failed"
    assert g["min_residual_auditor_calibration"].status == "failed"
    assert g["min_ocr_auditor_calibration"].status == "passed"
    waived = _gates(evaluate_gates(Gates(), values, waived={"anonymize_verification_on": WHY}))
    assert waived["anonymize_verification_on"].status == "waived"


def test_the_auditor_calibration_sample_is_recorded() -> None:
    """check_quality records n of the auditor's raw recall (its gate's interval reads it)."""
    import numpy as np

    from tasks.check_quality.summary import image_record, summarize
    from tests.conftest import FakeDetector

    img = np.zeros((64, 64, 3), np.uint8)
    gt = {"face": np.array([[10, 10, 40, 40], [44, 44, 60, 60]])}
    rec = image_record(img, img, image_id="a", gt_boxes_by_category=gt, redacted_boxes=np.zeros((0, 4)),
                       detector=FakeDetector([[10, 10, 40, 40]]), match_iou=0.3, calibrate=True)
    m = summarize([rec]).as_metrics()
    assert m["check_quality/auditor_calibration_faces"] == 2 and m["check_quality/auditor_raw_face_recall"] == 0.5


def test_the_utility_ratio_is_paired_over_the_same_test_images() -> None:
    """Raw and anonymized accuracy are measured on the same images: the interval follows the images whose
    outcome changed, not two independent samples. 0.97 / 0.99 on 400 images with 8 changed outcomes resolves
    (>= 0.95); the same accuracies with 80 changed outcomes (the two versions disagree a lot) do not."""
    def gate(discordant: float, n: int = 400) -> Any:
        values = {"check_quality/utility_ratio": 0.97 / 0.99, "check_quality/utility_n_images": n,
                  "check_quality/utility_anon_accuracy": 0.97, "check_quality/utility_raw_accuracy": 0.99,
                  "check_quality/utility_discordant_share": discordant / n}
        return _gates(evaluate_gates(Gates(), values))["min_utility_ratio"]

    assert gate(8).status == "passed" and gate(8).interval.method.startswith("Nam–Blackwelder")
    assert gate(80).status == "not_assessed" and "test images" in (gate(80).reason or "")
    lo, hi = gate(8).interval.lower, gate(8).interval.upper
    assert lo < 0.97 / 0.99 < hi and gate(8, 4000).interval.lower > lo  # narrows as the sample grows


def test_paired_utility_counts_the_changed_outcomes() -> None:
    import numpy as np
    import torch

    from tasks.check_quality.utility import paired_utility

    class Pick(torch.nn.Module):  # predicts the class held in the input's first value
        def __init__(self) -> None:
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 3).float()

    y = np.array([0, 1, 2, 1], np.int64)
    raw = torch.tensor([0, 1, 2, 0], dtype=torch.float32).reshape(4, 1, 1, 1)  # 3 right
    anon = torch.tensor([0, 2, 2, 1], dtype=torch.float32).reshape(4, 1, 1, 1)  # 3 right, 2 outcomes changed
    r = paired_utility(Pick(), raw, anon, y)
    assert (r.raw_accuracy, r.anon_accuracy, r.n_images, r.discordant) == (0.75, 0.75, 4, 2)
    assert r.as_metrics()["check_quality/utility_discordant_share"] == 0.5


def test_an_auc_without_non_members_fails_closed() -> None:
    g = _gates(evaluate_gates(Gates(), _lira(auc=0.5, members=2000, nonmembers=0)))["max_lira_auc_dp"]
    assert g.status == "failed" and "empty sample" in (g.reason or "")

from __future__ import annotations

import re

import pytest

from tasks.errors import InvalidInputError
from tasks.params import Gates, Params
from tasks.report.compliance import build_compliance
from tasks.report.gates import GATE_SPECS, evaluate_gates
from tasks.report.html import render_html, render_markdown

RECORD = {  # a consistent record: σ 2.2559 at q 0.2 for 50 steps is ε 2.97 at δ 1e-5 (PRV and PLD)
    "noise_multiplier": 2.255859375,
    "sample_rate": 0.2,
    "steps": 50,
    "epochs": 10,
    "accountant": "prv",
    "target_epsilon": 3.0,
    "target_delta": 1e-5,
    "epsilon": 2.98,
    "max_grad_norm": 1.0,
    "n_train": 1200,
    "batch_size": 256,
    "poisson_sampling": True,
    "history": [[2.255859375, 0.2, 50]],
}


def report_metrics(**over: float) -> dict[str, dict[str, float]]:
    m = {
        "ingest": {"ingest/n_ingested": 100, "ingest/n_quarantined": 0},
        "anonymize": {"anonymize/processed": 97, "anonymize/quarantined": 3, "anonymize/verify_enabled": 1.0},
        "check_quality": {
            "check_quality/face_redaction_recall": 0.97,
            "check_quality/plate_redaction_recall": 0.95,
                          "check_quality/text_pii_redaction_recall": 0.85,
            "check_quality/residual_face_matched_rate": 0.01,
            "check_quality/reid_adaptive_top1": 0.02,
            "check_quality/reid_trained_accuracy": 0.01,
            "check_quality/reid_clear_naive_top1": 1.0,
            "check_quality/utility_ratio": 0.99,
            "check_quality/text_pii_readable_anon": 0.0,
            "check_quality/plate_readable_anon": 0.0,
            "check_quality/text_nonpii_preserved": 0.87,
            "check_quality/gx_success": 1.0,
            "check_quality/linkage_advantage": 0.01,
            "check_quality/linkage_clear_top1": 0.97,
            "check_quality/linkage_n_faces": 400,
            "check_quality/linkage_chance": 1 / 400,
            "check_quality/auditor_raw_face_recall": 0.92,
            "check_quality/ocr_auditor_raw_recall": 0.9,
            # each measured gate's sample size (tasks/report/gates.py `Sample`), large enough that every
            # value above is resolved against its threshold at 95 % (a passing run)
            "check_quality/face_redaction_total": 3000, "check_quality/plate_redaction_total": 1000,
            "check_quality/text_pii_redaction_total": 1000, "check_quality/n_gt_faces": 3000,
            "check_quality/auditor_calibration_faces": 600, "check_quality/reid_n_probes": 400,
            "check_quality/utility_n_images": 400, "check_quality/utility_raw_accuracy": 0.98,
            "check_quality/utility_anon_accuracy": 0.9702, "check_quality/utility_discordant_share": 0.01,
            "check_quality/text_pii_text_total": 400,
            "check_quality/plate_text_total": 400, "check_quality/ocr_auditor_raw_n": 400,
            "check_quality/text_nonpii_text_total": 400, "check_quality/text_nonpii_readable_raw": 0.9,
        },
        "train": {"train/dp_test_accuracy": 0.9, "train/nonprivate_test_accuracy": 0.95, "train/n_test": 400},
        "audit": {
            "audit/dp/loss_threshold/auc": 0.51,
            "audit/dp/loss_threshold/tpr_at_1pct_fpr": 0.012,
            "audit/dp/loss_threshold/tpr_at_0_1pct_fpr": 0.001,
            "audit/nonprivate/loss_threshold/auc": 0.7,
            "audit/nonprivate/loss_threshold/tpr_at_1pct_fpr": 0.05,
            "audit/nonprivate/loss_threshold/tpr_at_0_1pct_fpr": 0.01,
            "audit/dp/lira_online/auc": 0.494,
            "audit/dp/lira_online/tpr_at_0_1pct_fpr": 0.0017,
            "audit/dp/lira_offline/auc": 0.521,
            "audit/dp/lira_offline/tpr_at_0_1pct_fpr": 0.0,
            "audit/nonprivate/lira_offline/auc": 0.549,
            "audit/dp/empirical_epsilon_lower_bound": 0.0,
            "audit/dp/empirical_epsilon_margin": 2.98,
            "audit/dp/canary/ceiling_ratio": 2.1,
            "audit/dp/canary/ceiling": 6.3,  # 2.1× the target ε 3.0; the report re-prices it: 2.11× ε 2.985
            "audit/dp/gradient_inversion/psnr": 8.0,
            "audit/nonprivate/gradient_inversion/psnr": 100.0,
            # audit.max_samples a side (2,000): enough non-members for a TPR at 0.1 % FPR
            **{f"audit/dp/{a}/{k}": 2000 for a in ("loss_threshold", "lira_online", "lira_offline")
               for k in ("n_members", "n_nonmembers")},
        },
    }
    for key, value in over.items():
        m[key.split("/")[0]][key] = value
    return m


def build_report(metrics: dict, eps: float = 2.985, **extra: object) -> dict:
    lineage = {
        "git_sha": "abc",
        "dvc_lock_sha256": "f" * 64,
        "mlflow_runs": {"train": "r1"},
        "model_uri": "models:/m-1",
        "tracking_uri": "sqlite:///x.db",
    }
    return build_compliance(
        metrics=metrics,
        dp_record=RECORD,
        epsilon_recomputed=eps,
        lineage=lineage,
        quarantine_reasons=[{"id": "img_1", "reason": "sensitive content survived: 1 face"}],
        **({"gates": Gates()} | extra),  # a test may pass its own thresholds
    )


def test_contract_keys_and_passing_verdict() -> None:
    c = build_report(report_metrics())
    assert c["verdict"] == "pass"
    assert {"verdict", "gates", "counts", "dp", "utility", "attacks", "lineage"} <= set(c)
    assert c["counts"] == {"ingested": 100, "anonymized": 97, "quarantined": 3, "ingest_quarantined": 0,
                           "masked": -1}  # metrics from before masks were counted: unknown, not 0
    masked = report_metrics()
    masked["anonymize"]["anonymize/masked_images"] = 2
    c2 = build_report(masked)
    assert c2["counts"]["masked"] == 2
    kw = {"title": "T", "figures": {}, "reproduce": "x"}
    html, md = render_html(c2, **kw), render_markdown(c2, **kw)
    assert "2 of the anonymized images carry a solid black mask" in html and "2 of the anonymized" in md
    assert "carry a solid black mask" not in render_markdown(c, **kw)
    assert set(c["dp"]) >= {
        "epsilon",
        "delta",
        "accountant",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "epsilon_recomputed",
    }
    assert c["attacks"]["loss_threshold"]["dp"]["tpr_at_0.1pct_fpr"] == pytest.approx(0.001)
    assert c["attacks"]["loss_threshold"]["nonprivate"]["auc"] == pytest.approx(0.7)
    assert {g["name"] for g in c["gates"]} == set(GATE_SPECS) | {"epsilon_recomputation_agreement"}
    for g in c["gates"]:
        assert set(g) >= {"name", "threshold", "value", "passed"}


def test_one_broken_gate_fails_the_verdict() -> None:
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75}))
    failed = [g["name"] for g in c["gates"] if not g["passed"]]
    assert c["verdict"] == "fail" and failed == ["max_mia_auc_dp"]


def test_missing_measurement_fails_closed() -> None:
    m = report_metrics()
    del m["check_quality"]["check_quality/residual_face_matched_rate"]
    c = build_report(m)
    gate = next(g for g in c["gates"] if g["name"] == "max_residual_face_rate")
    assert gate["value"] is None and not gate["passed"] and c["verdict"] == "fail"


def test_epsilon_disagreement_fails() -> None:
    c = build_report(report_metrics(), eps=3.2)  # 7 % above what training reported (and above max_epsilon)
    names = {g["name"] for g in c["gates"] if not g["passed"]}
    assert {"epsilon_recomputation_agreement", "max_epsilon"} <= names


def test_counts_that_do_not_add_up_raise() -> None:
    with pytest.raises(InvalidInputError, match="do not add up"):
        build_report(report_metrics(**{"anonymize/quarantined": 2}))


def test_every_gate_is_a_param() -> None:
    assert set(GATE_SPECS) <= set(Gates.model_fields)


def test_gates_against_thresholds(params: Params) -> None:
    values = {spec.value_key: 0.0 for spec in GATE_SPECS.values()}
    results = {g.name: g for g in evaluate_gates(params.gates, values)}
    assert results["max_epsilon"].passed and not results["min_face_redaction_recall"].passed


def test_html_is_self_contained_and_shows_everything() -> None:
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75}))
    html = render_html(c, title="T", figures={"roc": b"\x89PNG\r\n\x1a\nfake"}, reproduce="make pipeline")
    assert 'id="verdict-value" class="verdict fail"' in html
    for g in c["gates"]:
        assert g["name"] in html
    assert "2.985" in html and "1e-05" in html and "abc" in html and "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external fetches"
    assert "<script" not in html


def test_method_table_and_sweep_are_reported_not_gated() -> None:
    rows = [{"method": "pixelate", "ssim_whole": 0.896, "reid_trained_accuracy": 0.863, "utility_ratio": 1.0,
             "reid_chance": 0.01, "n_probes": 80, "raw_pixels": "must not be carried"},
            {"method": "mask", "ssim_whole": 0.804, "reid_trained_accuracy": 0.013}]
    sweep = {"rows": [{"experiment": "sweep-eps1", "epsilon": 0.99, "dp_test_accuracy": 0.9,
                       "nonprivate_test_accuracy": 0.95, "noise_multiplier": 2.0, "steps": 50}],
             "ledger": "ledger/sweep_ledger.jsonl", "ledger_total_epsilon": {"abc": 4.2}}
    c = build_report(report_metrics(), methods=rows, sweep=sweep)
    assert c["verdict"] == "pass"  # evidence, not gates
    assert [r["method"] for r in c["method_comparison"]] == ["pixelate", "mask"]
    assert "raw_pixels" not in c["method_comparison"][0]
    assert c["dp_sweep"]["ledger_total_epsilon"] == 4.2
    html = render_html(c, title="T", figures={}, reproduce="make pipeline")
    assert 'id="method-comparison"' in html and "0.863" in html
    assert 'id="dp-sweep"' in html and "sweep-eps1" in html and "0.947" in html  # 0.9 / 0.95
    assert 'id="dp-sweep"' not in render_html(build_report(report_metrics()), title="T", figures={}, reproduce="x")


def test_lira_gates_check_the_worse_variant_and_audit_fields_are_reported() -> None:
    c = build_report(report_metrics())
    assert c["attacks"]["lira"]["dp"]["auc"] == 0.521 and c["attacks"]["lira"]["dp"]["variant"] == "lira_offline"
    assert c["attacks"]["gradient_inversion"]["dp"]["psnr"] == 8.0 and c["dp"]["empirical_epsilon_lower_bound"] == 0.0
    gates = {g["name"]: g for g in c["gates"]}
    assert gates["max_lira_auc_dp"]["value"] == 0.521 and gates["max_lira_auc_dp"]["passed"]
    leaky = {g["name"]: g for g in build_report(report_metrics(**{"audit/dp/lira_online/auc": 0.6}))["gates"]}
    assert not leaky["max_lira_auc_dp"]["passed"]
    broken = {g["name"]: g for g in build_report(report_metrics(**{"audit/dp/empirical_epsilon_lower_bound": 3.1}))["gates"]}
    assert not broken["min_empirical_epsilon_margin"]["passed"]
    html = render_html(c, title="T", figures={}, reproduce="x")
    assert 'id="empirical-epsilon"' in html and 'id="inversion"' in html


def _capabilities(**missing: str) -> dict[str, str | None]:
    from tasks.report.gates import NEEDS

    return {n: missing.get(n) for n in NEEDS}


def test_unmeasurable_gates_are_not_assessed_with_the_reason_and_fail_the_verdict() -> None:
    m = report_metrics()
    for key in ("face_redaction_recall", "residual_face_matched_rate"):
        del m["check_quality"][f"check_quality/{key}"]
    c = build_report(m, missing=_capabilities(face_gt="no face ground truth for this camera"))
    gates = {g["name"]: g for g in c["gates"]}
    # every gate needing face boxes: the two recall/residual gates and the auditor's calibration (issue 34)
    face_gates = {n for n, spec in GATE_SPECS.items() if spec.needs == "face_gt"}
    assert face_gates == {"min_face_redaction_recall", "max_residual_face_rate", "min_residual_auditor_calibration"}
    for name in face_gates:
        assert gates[name]["status"] == "not_assessed" and gates[name]["reason"] == "no face ground truth for this camera"
        assert not gates[name]["passed"]
    assert c["verdict"] == "fail" and c["gate_states"]["not_assessed"] == len(face_gates)
    assert gates["min_plate_redaction_recall"]["status"] == "passed"
    html = render_html(c, title="T", figures={}, reproduce="x")
    assert 'id="open-gates"' in html and "no face ground truth for this camera" in html and "not assessed" in html


def test_waived_gates_count_towards_a_pass_and_say_why() -> None:
    m = report_metrics()
    del m["check_quality"]["check_quality/face_redaction_recall"]
    del m["check_quality"]["check_quality/residual_face_matched_rate"]
    why = "no face ground truth for this camera"
    # the auditor's calibration gate (issue 34) needs face boxes too: it is waived with the other two
    waived = {"min_face_redaction_recall": why, "max_residual_face_rate": why, "min_residual_auditor_calibration": why}
    c = build_report(m, missing=_capabilities(face_gt="no face boxes"), waived=waived)
    gates = {g["name"]: g for g in c["gates"]}
    assert c["verdict"] == "pass" and c["gate_states"]["waived"] == 3
    assert gates["min_face_redaction_recall"]["status"] == "waived" and gates["min_face_redaction_recall"]["reason"] == why
    # a waiver does not hide a failure elsewhere, and a gate that fails is not rescued by another's waiver
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75}), waived=waived)
    assert c["verdict"] == "fail"


def test_a_measurable_gate_without_a_value_still_fails_not_skips() -> None:
    m = report_metrics()
    del m["check_quality"]["check_quality/linkage_advantage"]
    gates = {g["name"]: g for g in build_report(m, missing=_capabilities())["gates"]}
    assert gates["max_linkage_advantage"]["status"] == "failed" and gates["max_linkage_advantage"]["reason"] == "not measured"


def test_data_capabilities_from_the_stages_counts() -> None:
    from tasks.report.compliance import data_capabilities

    m = {"ingest": {"ingest/gt_face": 3, "ingest/gt_plate": 0, "ingest/labelled": 1.0},
         "check_quality": {"check_quality/linkage_n_faces": 1}}
    caps = data_capabilities(m, source="coco")
    assert caps["face_gt"] is None and caps["labels"] is None
    assert "licence-plate" in str(caps["plate_gt"]) and "'coco'" in str(caps["plate_gt"])
    assert caps["identities"] and caps["faces"] and caps["text_pii_gt"]
    assert data_capabilities({"ingest": {}}, source="folder")["labels"].startswith("no labels")


def test_no_labels_report_says_nothing_was_trained() -> None:
    m = {k: v for k, v in report_metrics().items() if k not in ("train", "audit")}
    m |= {"train": {"train/skipped": 1.0}, "audit": {"audit/skipped": 1.0}}
    reason = "no labels (ingest.label_from: none): nothing to train on"
    c = build_compliance(metrics=m, dp_record={"skipped": reason}, epsilon_recomputed=None, gates=Gates(),
                         lineage={"git_sha": "abc", "mlflow_runs": {}, "dvc_lock_sha256": "f" * 64, "model_uri": None,
                                  "tracking_uri": "sqlite:///x.db"}, missing=_capabilities(labels="no labels"))
    gates = {g["name"]: g for g in c["gates"]}
    assert gates["max_epsilon"]["status"] == "not_assessed" and gates["epsilon_recomputation_agreement"]["status"] == "not_assessed"
    assert c["dp"]["skipped"] == reason and c["verdict"] == "fail"
    html = render_html(c, title="T", figures={}, reproduce="x")
    assert 'id="dp-skipped"' in html and reason in html


def test_waivers_are_validated_in_params() -> None:
    from tasks.params import parse_params

    with pytest.raises(InvalidInputError, match="unknown gate"):
        parse_params({"gates_waived": {"min_face_recall": "no face ground truth here"}})
    with pytest.raises(InvalidInputError, match="written reason"):
        parse_params({"gates_waived": {"min_face_redaction_recall": ""}})
    assert parse_params({"gates_waived": {"min_face_redaction_recall": "no face ground truth here"}}).gates_waived


def test_epsilon_gate_uses_the_independent_pld_accountant() -> None:
    """A record whose reported ε understates the mechanism (here: σ 1.1 claimed as ε 2.98, PLD prices it at
    8.6) fails both the ε gate and the agreement check, although Opacus' own re-pricing of the claim agrees."""
    understated = {**RECORD, "noise_multiplier": 1.1, "history": [[1.1, 0.2, 50]]}
    c = build_compliance(metrics=report_metrics(), dp_record=understated, epsilon_recomputed=2.985, gates=Gates(),
                         lineage={"git_sha": "abc", "mlflow_runs": {}, "dvc_lock_sha256": None, "model_uri": None})
    gates = {g["name"]: g for g in c["gates"]}
    assert c["dp"]["epsilon_pld"] == pytest.approx(8.6, rel=0.01) and c["dp"]["independent_accountant"] == "dp-accounting PLD"
    assert gates["max_epsilon"]["status"] == "failed" and gates["max_epsilon"]["value"] == pytest.approx(8.6, rel=0.01)
    assert gates["epsilon_recomputation_agreement"]["status"] == "failed" and c["verdict"] == "fail"
    ok = {g["name"]: g for g in build_report(report_metrics())["gates"]}
    assert ok["epsilon_recomputation_agreement"]["passed"] and ok["max_epsilon"]["value"] == pytest.approx(2.985)


def test_the_method_samples_figure_carries_the_runs_own_note() -> None:
    """The sentence check_quality wrote about its method samples (which methods are left out, and why) is
    printed under the figure in the report, not only inside the picture."""
    import io as _io

    import matplotlib.pyplot as plt

    buf = _io.BytesIO()
    plt.figure(figsize=(1, 1)).savefig(buf, format="png")
    plt.close("all")
    c = build_report(report_metrics())
    note = "blur, pixelate: left out on your own data (the re-identification attacks break them)."
    html = render_html(c | {"figure_notes": {"method_samples": note}}, title="t",
                       figures={"method_samples": buf.getvalue()}, reproduce="make pipeline")
    assert note in html.replace("&#39;", "'")
    assert note not in render_html(c, title="t", figures={"method_samples": buf.getvalue()}, reproduce="make pipeline")


@pytest.mark.parametrize("unmeasured", ["audit/dp/lira_online/auc", "audit/dp/lira_offline/auc"])
def test_an_unmeasured_lira_variant_fails_the_gate_whichever_it_is(unmeasured: str) -> None:
    """The LiRA gate takes the worse variant; an unmeasured one is the worst (fail closed), not skipped."""
    c = build_report(report_metrics(**{unmeasured: float("nan")}))
    gate = next(g for g in c["gates"] if g["name"] == "max_lira_auc_dp")
    assert gate["status"] == "failed" and gate["reason"] == "not measured"

"""The report's first page: plain-word answers built from compliance.json, with evidence anchors."""

from __future__ import annotations

import math

from tasks.report.first_page import first_page, pct, strongest_attack
from tests.tasks.test_report import build_report, report_metrics


def _answers(c: dict) -> dict[str, dict]:
    return {q["id"]: q for q in first_page(c)["questions"]}


def test_five_questions_each_with_evidence() -> None:
    fp = first_page(build_report(report_metrics()))
    assert [q["id"] for q in fp["questions"]] == ["data", "removed", "model", "open", "verdict"]
    assert all(q["evidence"].startswith("#") and q["lines"] for q in fp["questions"])
    assert fp["verdict"] == "pass"


def test_data_answer_counts_add_up_and_name_the_source() -> None:
    data = " ".join(_answers(build_report(report_metrics()))["data"]["lines"])
    assert "100 images ingested" in data and "97 anonymized and 3 quarantined" in data and "97 + 3 = 100" in data
    assert "built-in synthetic data set" in data


def test_removed_answer_says_found_and_still_identifiable() -> None:
    removed = " ".join(_answers(build_report(report_metrics()))["removed"]["lines"])
    assert "Faces: 97.0 % of the faces" in removed
    assert "still finds 1.0 %" in removed  # residual detector
    assert "names the right person for 2.0 %" in removed  # the stronger of adaptive (0.02) and trained (0.01)
    assert "Licence plates: 95.0 %" in removed and "OCR still reads 0.0 % of plate strings" in removed
    assert "87.0 % of ordinary, non-personal text stays readable" in removed


def test_model_answer_gives_epsilon_in_words_and_the_strongest_attack_vs_chance() -> None:
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75, "audit/dp/loss_threshold/tpr_at_1pct_fpr": 0.3}))
    model = " ".join(_answers(c)["model"]["lines"])
    assert f"ε = {c['dp']['epsilon_checked']:.3g} and δ = 1e-05; the privacy unit is one image" in model
    assert f"{math.exp(c['dp']['epsilon_checked']):.3g} (e^ε)" in model
    assert "loss-threshold membership inference" in model and "AUC 0.75 (0.5 is guessing" in model
    assert "finds 30.0 % of training images (guessing: 1.0 %)" in model
    assert strongest_attack(c["attacks"])[0] == "loss_threshold"


def test_open_gates_list_every_non_passed_gate_with_its_reason() -> None:
    c = build_report(report_metrics(**{"check_quality/face_redaction_recall": 0.5}),
               waived={"max_delta": "this data set is a public benchmark, reviewed"})
    items = _answers(c)["open"]["items"]
    states = {i["gate"]: (i["state"], i["reason"]) for i in items}
    assert states["min_face_redaction_recall"][0] == "FAILED" and states["min_face_redaction_recall"][1]
    assert states["max_delta"] == ("waived", "this data set is a public benchmark, reviewed")
    assert {g["name"] for g in c["gates"] if g["status"] != "passed"} == set(states)
    verdict = " ".join(_answers(c)["verdict"]["lines"])
    assert "Verdict FAIL" in verdict and "refuses" in verdict and "privtrail-dp@audited" in verdict


def test_no_model_says_so() -> None:
    c = build_report(report_metrics())
    c["dp"] = {"skipped": "no labels", "epsilon": None}
    assert _answers(c)["model"]["lines"] == ["No model was trained or released: no labels."]


def test_pct_words() -> None:
    assert pct(0.973) == "97.3 %" and pct(None) == "not measured" and pct(float("nan")) == "not measured"
    assert pct(0.0003378) == "0.034 %" and pct(0.0) == "0.0 %"


def test_the_json_carries_the_same_definitions_as_the_pages() -> None:
    from tasks.report.definitions import define

    c = build_report(report_metrics())
    keys = {k for m in c["metrics"].values() for k in m}
    assert set(c["definitions"]) == keys
    d = define("check_quality/face_redaction_recall")
    assert d is not None and c["definitions"]["check_quality/face_redaction_recall"] == {
        "label": d.label, "unit": d.unit, "meaning": d.meaning}


def test_markdown_shows_no_raw_metric_key_before_the_appendix() -> None:
    import re

    from tasks.report.html import render_markdown

    c = build_report(report_metrics())
    md = render_markdown(c, title="T", figures={"roc": "plots/audit/roc.png"}, reproduce="make pipeline")
    body, appendix = md.split("## Appendix A: every measured value")
    keys = {k for m in c["metrics"].values() for k in m}
    keys |= {k.split("/", 1)[1] for k in keys}
    keys = {k for k in keys if "_" in k or "/" in k}
    assert sorted(k for k in keys if re.search(rf"(?<![\w/]){re.escape(k)}(?![\w/])", body)) == []
    assert "`check_quality/face_redaction_recall`" in appendix


def test_unmeasured_categories_read_as_sentences_not_as_not_measured_of() -> None:
    """On data without ground truth the quality values are NaN: the page says what could not be measured,
    never "Faces: not measured of the faces in the ground truth were covered"."""
    nan = float("nan")
    c = build_report(report_metrics(**{f"check_quality/{k}": nan for k in (
        "face_redaction_recall", "residual_face_matched_rate", "face_redaction_recall_detector_proxy",
        "plate_redaction_recall", "plate_readable_anon", "text_pii_redaction_recall", "text_pii_readable_anon")}))
    removed = " ".join(next(q for q in first_page(c)["questions"] if q["id"] == "removed")["lines"])
    assert "not measured of" not in removed and "of plate strings" not in removed
    assert "Faces: how many were covered could not be measured on this data (no ground truth)" in removed


def test_an_unmeasured_attack_is_never_the_strongest_nor_printed_as_not_measured() -> None:
    from tasks.report.first_page import strongest_attack

    attacks = {"lira_online": {"dp": {"auc": float("nan"), "tpr_at_1pct_fpr": float("nan")}},
               "loss_threshold": {"dp": {"auc": 0.51, "tpr_at_1pct_fpr": float("nan")}}}
    assert strongest_attack(attacks)[0] == "loss_threshold"
    c = build_report(report_metrics())
    c["attacks"] = attacks
    model = " ".join(next(q for q in first_page(c)["questions"] if q["id"] == "model")["lines"])
    assert "not measured of training images" not in model and "AUC 0.51" in model

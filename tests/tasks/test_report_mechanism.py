"""Every sentence of the report that describes a mechanism follows the params and records of that run."""

from __future__ import annotations

import re

from tasks.anonymize.setup import anonymization_setup
from tasks.params import AnonymizeParams
from tasks.report.first_page import first_page, measured
from tasks.report.html import render_html, render_markdown
from tasks.report.mechanism import audit_conclusion
from tests.tasks.test_report import build_report, report_metrics

RAN_AGAIN = re.compile(r"ran again|run again|re-ran the|re-detect|still shows a sensitive detection|left a sensitive detection",
                       re.IGNORECASE)


def _texts(c: dict) -> dict[str, str]:
    c["first_page"] = first_page(c)
    return {"html": render_html(c, title="T", figures={}, reproduce="make pipeline"),
            "md": render_markdown(c, title="T", figures={}, reproduce="make pipeline"),
            "first_page": " ".join(line for q in c["first_page"]["questions"] for line in q["lines"])}


def _report(p: AnonymizeParams, **metrics: float) -> dict:
    return build_report(report_metrics(**metrics), anonymizer=anonymization_setup(p, device="cpu").as_dict())


def test_verify_off_never_says_the_detectors_ran_again_and_its_gate_fails() -> None:
    c = _report(AnonymizeParams(verify="off"), **{"anonymize/verify_enabled": 0.0})
    for name, text in _texts(c).items():
        assert not RAN_AGAIN.search(text), (name, RAN_AGAIN.search(text))
    assert "Verification is off (anonymize.verify: off)" in _texts(c)["html"]
    gate = {g["name"]: g for g in c["gates"]}["anonymize_verification_on"]
    assert gate["status"] == "failed" and c["verdict"] == "fail"


def test_verify_regions_says_what_ran_again() -> None:
    c = _report(AnonymizeParams(verify="regions"), **{"anonymize/verify_enabled": 1.0})
    texts = _texts(c)
    assert "the detectors ran again on each written image, around every changed region" in texts["html"]
    assert {g["name"]: g for g in c["gates"]}["anonymize_verification_on"]["status"] == "passed"


def test_targets_face_only_never_claims_plates_or_text_were_searched() -> None:
    c = _report(AnonymizeParams(targets=("face",)), **{"anonymize/verify_enabled": 1.0})
    texts = _texts(c)
    for name, text in texts.items():
        assert not re.search(r"searched for[^.;]*(plate|text)", text), name
        assert not re.search(r"(plates|personal text)[^.;]* (are|were) removed", text, re.IGNORECASE), name
    assert "Every image was searched for faces (anonymize.targets); licence plates, personal text and " \
           "people's bodies were not searched for" in texts["first_page"]
    assert "Faces removed before training" in texts["html"]  # the regulation row, from the recorded targets
    assert "PP-OCR" not in texts["html"] and "CenterFace" in texts["html"]  # only the enabled detectors


def test_detectors_and_device_come_from_the_params() -> None:
    p = AnonymizeParams(targets=("face", "plate", "body"), plate={"cascade": True}, body={"pose": True},
                        face={"centerface": False, "yunet": 2.0, "cascades": {}, "verify": 0.0})
    setup = anonymization_setup(p, device="cuda (CUDAExecutionProvider)")
    assert setup.detectors["face"][0] == "YuNet (on a 2x copy)" and "turned" in setup.detectors["face"][1]
    assert "licence-plate Haar cascade" in setup.detectors["plate"] and "BlazePose" in setup.detectors["body"]
    assert "keeping ordinary words in en, cs, da" in setup.detectors["plate"][0]  # anonymize.text.languages
    assert "OpenVINO" not in setup.detectors["plate"][0]  # not resolved to the CPU: the runtime is not claimed
    on_cpu = anonymization_setup(p.model_copy(update={"device": "cpu"}))
    assert "rapidocr, OpenVINO on the CPU" in on_cpu.detectors["plate"][0]
    upright = anonymization_setup(p.model_copy(update={"orientation": "off"}))
    assert upright.detectors["face"] == ("YuNet (on a 2x copy)",)  # anonymize.orientation: off says nothing turned
    assert not any("turned" in d for d in upright.detectors["plate"])
    html = _texts(build_report(report_metrics(), anonymizer=setup.as_dict()))["html"]
    assert "The detectors ran on cuda (CUDAExecutionProvider), detector preset &#39;default&#39;." in html \
        or "The detectors ran on cuda (CUDAExecutionProvider), detector preset 'default'." in html


def test_no_recorded_setup_claims_nothing() -> None:
    texts = _texts(build_report(report_metrics()))
    assert "were not recorded" in texts["html"]
    for text in texts.values():
        assert not RAN_AGAIN.search(text) and "searched for faces" not in text


def test_audit_with_a_low_ceiling_states_its_power_and_never_behaves_as_claimed() -> None:
    c = build_report(report_metrics(**{"audit/dp/canary/ceiling": 1.5, "audit/dp/canary/ceiling_ratio": 0.5}))
    model = " ".join(_texts(c)["first_page"].split("What may the model reveal?")[-1:])
    for text in (model, _texts(c)["html"], _texts(c)["md"]):
        assert "behaves as claimed" not in text
        assert "can certify at most ε = 1.5" in text and "could not have detected a violation" in text


def test_audit_with_a_high_ceiling_states_what_it_could_have_detected() -> None:
    c = build_report(report_metrics(**{"audit/dp/canary/ceiling": 6.4, "audit/dp/canary/ceiling_ratio": 2.1}))
    fp = _texts(c)["first_page"]
    assert "could have detected ε above the claim only as far as ε = 6.4 (its ceiling, 2.14× the claim" in fp  # 6.4 / 2.985 and "behaves as claimed" not in fp


def test_audit_conclusion_cases() -> None:
    assert audit_conclusion(lower_bound=None, claimed=3.0, ceiling=6.0) is None
    assert "does not keep its guarantee" in str(audit_conclusion(lower_bound=4.0, claimed=3.0, ceiling=6.0))
    assert "was not recorded" in str(audit_conclusion(lower_bound=0.1, claimed=3.0, ceiling=None))


def test_headline_epsilon_is_the_checked_one() -> None:
    c = build_report(report_metrics())
    c["dp"]["epsilon_checked"] = 3.4567  # larger than Opacus' recomputed 2.985 (the PLD check was larger)
    texts = _texts(c)
    assert re.search(r'id="dp-epsilon">3\.457<', texts["html"])
    assert "ε = 3.46 and δ" in texts["first_page"]


def test_gate_confidence_interval_and_policy_changes_are_shown() -> None:
    c = build_report(report_metrics(**{"check_quality/face_redaction_recall": 0.5}))
    gate = next(g for g in c["gates"] if g["name"] == "min_face_redaction_recall")
    gate |= {"lower": 0.42, "upper": 0.58, "n": 150, "unit": None, "n_other": None, "method": "Clopper-Pearson",
             "confidence": None}
    assert measured(gate) == "0.5 [0.42, 0.58], n = 150 (Clopper-Pearson)"
    c["policy_changes"] = [{"name": "max_epsilon", "default": 3.0, "value": 8.0,
                            "reason": "pilot on public data, approved by the DPO"}]
    texts = _texts(c)
    assert "0.5 [0.42, 0.58], n = 150 (Clopper-Pearson)" in texts["html"]
    assert "0.5 [0.42, 0.58], n = 150 (Clopper-Pearson)" in texts["md"]
    assert ("Policy change: max_epsilon is 8 where the packaged policy is 3 — reason given: pilot on public data, "
            "approved by the DPO.") in texts["first_page"]


def test_the_training_choice_and_what_followed_the_source_are_said() -> None:
    c = build_report(report_metrics(), training={"source": "folder", "features": "full", "model": "photo_hog",
                                                 "auto_resolved": {"train.features": "full", "train.model": "photo_hog"}})
    assert ("The model is photo_hog, trained on whole images; train.features and train.model followed the 'folder' "
            "source (auto).") in _texts(c)["first_page"]


def test_a_two_sample_interval_names_both_samples() -> None:
    gate = {"value": 0.26, "lower": 0.14, "upper": 0.42, "n": 27, "unit": "members", "n_other": 9,
            "other_unit": "non-members", "method": "Clopper-Pearson", "confidence": 0.95}
    assert measured(gate) == "0.26 [0.14, 0.42], n = 27 members, 9 non-members (Clopper-Pearson, 95 %)"
    assert measured({"value": 0.5, "lower": None, "upper": None, "n": None}) == "0.5"


def test_text_policy_all_says_all_text() -> None:
    c = _report(AnonymizeParams(text={"policy": "all"}), **{"anonymize/verify_enabled": 1.0})
    assert "searched for faces, licence plates and all text (anonymize.targets)" in _texts(c)["first_page"]


def test_the_dp_mechanism_sentence_follows_the_record() -> None:
    from tasks.params import Gates
    from tasks.report.compliance import build_compliance
    from tests.tasks.test_report import RECORD

    assert build_report(report_metrics())["dp"]["mechanism"] == (
        "DP-SGD (Poisson-subsampled Gaussian), per-sample clipping at norm 1")
    c = build_compliance(metrics=report_metrics(), dp_record=RECORD | {"poisson_sampling": False, "max_grad_norm": 0.5},
                         epsilon_recomputed=2.985, gates=Gates(), lineage={"git_sha": "abc", "mlflow_runs": {}})
    assert c["dp"]["mechanism"] == ("DP-SGD (Gaussian noise on shuffled fixed-size batches, priced as if "
                                    "Poisson-subsampled), per-sample clipping at norm 0.5")

from __future__ import annotations

import re

import pytest

from tasks.errors import InvalidInputError
from tasks.params import Gates, Params
from tasks.report.compliance import build_compliance
from tasks.report.gates import GATE_SPECS, evaluate_gates
from tasks.report.html import render_html

RECORD = {
    "noise_multiplier": 1.1,
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
    "history": [[1.1, 0.2, 50]],
}


def _metrics(**over: float) -> dict[str, dict[str, float]]:
    m = {
        "ingest": {"ingest/n_ingested": 100, "ingest/n_quarantined": 0},
        "anonymize": {"anonymize/processed": 97, "anonymize/quarantined": 3},
        "check_quality": {
            "check_quality/face_redaction_recall": 0.97,
            "check_quality/plate_redaction_recall": 0.95,
                          "check_quality/text_pii_redaction_recall": 0.85,
            "check_quality/residual_face_matched_rate": 0.01,
        },
        "train": {"train/dp_test_accuracy": 0.9, "train/nonprivate_test_accuracy": 0.95},
        "audit": {
            "audit/dp/loss_threshold/auc": 0.51,
            "audit/dp/loss_threshold/tpr_at_1pct_fpr": 0.012,
            "audit/dp/loss_threshold/tpr_at_0_1pct_fpr": 0.001,
            "audit/nonprivate/loss_threshold/auc": 0.7,
            "audit/nonprivate/loss_threshold/tpr_at_1pct_fpr": 0.05,
            "audit/nonprivate/loss_threshold/tpr_at_0_1pct_fpr": 0.01,
        },
    }
    for key, value in over.items():
        m[key.split("/")[0]][key] = value
    return m


def _build(metrics: dict, eps: float = 2.985) -> dict:
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
        gates=Gates(),
        lineage=lineage,
        quarantine_reasons=[{"id": "img_1", "reason": "sensitive content survived: 1 face"}],
    )


def test_contract_keys_and_passing_verdict() -> None:
    c = _build(_metrics())
    assert c["verdict"] == "pass"
    assert {"verdict", "gates", "counts", "dp", "utility", "attacks", "lineage"} <= set(c)
    assert c["counts"] == {"ingested": 100, "anonymized": 97, "quarantined": 3, "ingest_quarantined": 0}
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
    c = _build(_metrics(**{"audit/dp/loss_threshold/auc": 0.75}))
    failed = [g["name"] for g in c["gates"] if not g["passed"]]
    assert c["verdict"] == "fail" and failed == ["max_mia_auc_dp"]


def test_missing_measurement_fails_closed() -> None:
    m = _metrics()
    del m["check_quality"]["check_quality/residual_face_matched_rate"]
    c = _build(m)
    gate = next(g for g in c["gates"] if g["name"] == "max_residual_face_rate")
    assert gate["value"] is None and not gate["passed"] and c["verdict"] == "fail"


def test_epsilon_disagreement_fails() -> None:
    c = _build(_metrics(), eps=3.2)  # 7 % above what training reported (and above max_epsilon)
    names = {g["name"] for g in c["gates"] if not g["passed"]}
    assert {"epsilon_recomputation_agreement", "max_epsilon"} <= names


def test_counts_that_do_not_add_up_raise() -> None:
    with pytest.raises(InvalidInputError, match="do not add up"):
        _build(_metrics(**{"anonymize/quarantined": 2}))


def test_every_gate_is_a_param() -> None:
    assert set(GATE_SPECS) <= set(Gates.model_fields)


def test_gates_against_thresholds(params: Params) -> None:
    values = {spec.value_key: 0.0 for spec in GATE_SPECS.values()}
    results = {g.name: g for g in evaluate_gates(params.gates, values)}
    assert results["max_epsilon"].passed and not results["min_face_redaction_recall"].passed


def test_html_is_self_contained_and_shows_everything() -> None:
    c = _build(_metrics(**{"audit/dp/loss_threshold/auc": 0.75}))
    html = render_html(c, title="T", figures={"roc": b"\x89PNG\r\n\x1a\nfake"}, reproduce="make pipeline")
    assert 'id="verdict-value" class="verdict fail"' in html
    for g in c["gates"]:
        assert g["name"] in html
    assert "2.985" in html and "1e-05" in html and "abc" in html and "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external fetches"
    assert "<script" not in html

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from tasks.report.diff import diff_compliance

REF = "privtrail-dp@audited (version 3, git abc123)"


def _compliance(**over: Any) -> dict[str, Any]:
    """A compliance.json with the fields the diff reads (tasks/report/compliance.py's contract)."""
    c: dict[str, Any] = {
        "verdict": "pass",
        "dp": {"epsilon_recomputed": 2.985, "delta": 1e-5, "empirical_epsilon_lower_bound": 0.0,
               "ledger_total_epsilon": 2.985},
        "attacks": {
            "loss_threshold": {"dp": {"auc": 0.51, "tpr_at_0.1pct_fpr": 0.001, "tpr_at_1pct_fpr": 0.012},
                               "nonprivate": {"auc": 0.7, "tpr_at_1pct_fpr": 0.05}},
            "lira_online": {"dp": {"auc": 0.494, "tpr_at_1pct_fpr": 0.011}},
            "lira": {"dp": {"auc": 0.494, "tpr_at_1pct_fpr": 0.011, "variant": "lira_online"}},
            "gradient_inversion": {"dp": {"psnr": 8.0}},
        },
        "quality": {"face_redaction_recall": 0.97, "plate_redaction_recall": 0.95,
                    "text_pii_redaction_recall": 0.85, "residual_face_matched_rate": 0.01,
                    "residual_face_rate": 0.02, "text_pii_readable_anon": 0.0, "reid_adaptive_top1": 0.02,
                    "face_redaction_recall_detector_proxy": 0.9},
        "anonymization": {"gt_face_recall": 0.99, "gt_plate_recall": 0.98, "processed": 97.0},
        "gates": [{"name": "max_epsilon", "status": "passed", "passed": True, "value": 2.985},
                  {"name": "min_face_redaction_recall", "status": "passed", "passed": True, "value": 0.97},
                  {"name": "min_plate_redaction_recall", "status": "waived", "passed": True, "value": None}],
        "lineage": {"git_sha": "abc123"},
    }
    for key, value in over.items():
        *parents, last = key.split(".")
        node = c
        for p in parents:
            node = node[p]
        node[last] = value
    return c


def _rows(diff: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in diff["rows"]}


def test_identical_reports_change_nothing() -> None:
    c = _compliance()
    d = diff_compliance(c, copy.deepcopy(c), previous_ref=REF)
    assert d["available"] is True and d["reason"] is None and d["against"] == REF
    assert d["gates_changed"] == []
    numbers = [r for r in d["rows"] if r["section"] != "gates"]
    assert numbers and all(r["change"] == 0.0 and r["worse"] is False for r in numbers)
    assert _rows(d)["verdict"] == {"section": "gates", "what": "verdict", "key": "verdict", "before": "pass",
                                   "after": "pass", "change": None, "worse": False}
    json.dumps(d, allow_nan=False)  # JSON-ready, strictly


def test_covers_epsilon_delta_attacks_empirical_bound_and_redaction() -> None:
    rows = _rows(diff_compliance(_compliance(), _compliance(), previous_ref=REF))
    sections = {k: r["section"] for k, r in rows.items()}
    assert sections == {
        "dp.epsilon_recomputed": "privacy guarantee", "dp.delta": "privacy guarantee",
        "dp.ledger_total_epsilon": "privacy guarantee",
        "dp.empirical_epsilon_lower_bound": "attacks",
        "attacks.loss_threshold.dp.auc": "attacks", "attacks.loss_threshold.dp.tpr_at_1pct_fpr": "attacks",
        "attacks.lira_online.dp.auc": "attacks", "attacks.lira_online.dp.tpr_at_1pct_fpr": "attacks",
        "quality.face_redaction_recall": "redaction", "quality.plate_redaction_recall": "redaction",
        "quality.text_pii_redaction_recall": "redaction", "quality.residual_face_matched_rate": "redaction",
        "quality.residual_face_rate": "redaction", "quality.text_pii_readable_anon": "redaction",
        "anonymization.gt_face_recall": "redaction", "anonymization.gt_plate_recall": "redaction",
        "verdict": "gates",
    }  # no non-private attack rows, no derived "lira", no re-identification or detector-proxy rows
    # labels come from the report's one definitions table (tasks/report/definitions.py)
    assert rows["dp.epsilon_recomputed"]["what"] == "ε recomputed (fresh accountant)"
    assert rows["quality.face_redaction_recall"]["what"] == "Face redaction recall"
    assert rows["anonymization.gt_face_recall"]["what"] == "Face redaction recall (anonymize stage)"


def test_numbers_and_the_direction_of_worse() -> None:
    before = _compliance()
    after = _compliance(**{"dp.epsilon_recomputed": 3.5, "dp.delta": 1e-6,
                           "attacks.loss_threshold.dp.auc": 0.55, "attacks.lira_online.dp.tpr_at_1pct_fpr": 0.005,
                           "dp.empirical_epsilon_lower_bound": 0.4,
                           "quality.face_redaction_recall": 0.99, "quality.plate_redaction_recall": 0.90,
                           "quality.residual_face_matched_rate": 0.03, "quality.text_pii_readable_anon": 0.0,
                           "anonymization.gt_face_recall": 0.95})
    rows = _rows(diff_compliance(after, before, previous_ref=REF))
    expect = {  # key: (before, after, worse)
        "dp.epsilon_recomputed": (2.985, 3.5, True),
        "dp.delta": (1e-5, 1e-6, False),
        "attacks.loss_threshold.dp.auc": (0.51, 0.55, True),
        "attacks.lira_online.dp.tpr_at_1pct_fpr": (0.011, 0.005, False),
        "dp.empirical_epsilon_lower_bound": (0.0, 0.4, True),
        "quality.face_redaction_recall": (0.97, 0.99, False),   # higher recall is better
        "quality.plate_redaction_recall": (0.95, 0.90, True),
        "quality.residual_face_matched_rate": (0.01, 0.03, True),
        "quality.text_pii_readable_anon": (0.0, 0.0, False),
        "anonymization.gt_face_recall": (0.99, 0.95, True),
    }
    for key, (b, a, worse) in expect.items():
        r = rows[key]
        assert (r["before"], r["after"], r["worse"]) == (b, a, worse), key
        assert r["change"] == pytest.approx(a - b), key


def test_keys_on_one_side_only_have_none_and_no_direction() -> None:
    before = _compliance()
    before["attacks"]["shadow"] = {"dp": {"auc": 0.53, "tpr_at_1pct_fpr": 0.02}}
    after = _compliance(**{"dp.epsilon_recomputed": None})  # e.g. no model trained this time
    del after["quality"]["plate_redaction_recall"]
    after["anonymization"]["gt_text_pii_recall"] = 0.8
    rows = _rows(diff_compliance(after, before, previous_ref=REF))
    for key, b, a in (("attacks.shadow.dp.auc", 0.53, None), ("attacks.shadow.dp.tpr_at_1pct_fpr", 0.02, None),
                      ("quality.plate_redaction_recall", 0.95, None), ("dp.epsilon_recomputed", 2.985, None),
                      ("anonymization.gt_text_pii_recall", None, 0.8)):
        assert (rows[key]["before"], rows[key]["after"], rows[key]["change"], rows[key]["worse"]) == (b, a, None, None)
    assert rows["anonymization.gt_text_pii_recall"]["what"] == "Personal text redaction recall (anonymize stage)"


def test_nan_reads_as_not_measured() -> None:
    before = _compliance(**{"quality.plate_redaction_recall": math.nan})
    after = _compliance(**{"quality.plate_redaction_recall": math.nan, "quality.text_pii_redaction_recall": math.nan})
    d = diff_compliance(after, before, previous_ref=REF)
    rows = _rows(d)
    assert "quality.plate_redaction_recall" not in rows  # not measured on either side: no row
    assert (rows["quality.text_pii_redaction_recall"]["before"],
            rows["quality.text_pii_redaction_recall"]["after"]) == (0.85, None)
    json.dumps(d, allow_nan=False)


def test_gate_changes_with_direction() -> None:
    before = _compliance()
    after = _compliance(verdict="fail")
    after["gates"] = [{"name": "max_epsilon", "status": "failed", "passed": False, "value": 3.5},
                      {"name": "min_face_redaction_recall", "status": "passed", "passed": True, "value": 0.99},
                      {"name": "min_plate_redaction_recall", "status": "passed", "passed": True, "value": 0.95},
                      {"name": "max_text_pii_readable", "status": "not_assessed", "passed": False, "value": None}]
    d = diff_compliance(after, before, previous_ref=REF)
    assert d["gates_changed"] == [
        {"name": "max_epsilon", "before": "passed", "after": "failed"},
        {"name": "max_text_pii_readable", "before": None, "after": "not_assessed"},
        {"name": "min_plate_redaction_recall", "before": "waived", "after": "passed"},
    ]
    rows = _rows(d)
    assert "gates.min_face_redaction_recall" not in rows  # unchanged gates are not listed
    assert rows["gates.max_epsilon"]["worse"] is True
    assert rows["gates.min_plate_redaction_recall"]["worse"] is False  # waived → passed: better
    assert rows["gates.max_text_pii_readable"]["worse"] is None  # a new gate has no direction
    assert (rows["verdict"]["before"], rows["verdict"]["after"], rows["verdict"]["worse"]) == ("pass", "fail", True)


def test_gates_without_status_fall_back_on_passed() -> None:
    before = _compliance()
    before["gates"] = [{"name": "max_epsilon", "passed": True}]
    after = _compliance()
    after["gates"] = [{"name": "max_epsilon", "passed": False}]
    d = diff_compliance(after, before, previous_ref=REF)
    assert d["gates_changed"] == [{"name": "max_epsilon", "before": "passed", "after": "failed"}]


def test_nothing_promoted_gives_the_reason_and_no_rows() -> None:
    why = "privtrail-dp@audited: nothing promoted yet (no registered model 'privtrail-dp')"
    d = diff_compliance(_compliance(), None, previous_ref=why)
    assert d == {"against": why, "available": False, "reason": why, "rows": [], "gates_changed": []}

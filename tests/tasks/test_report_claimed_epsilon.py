"""The audit's gates and the report's conclusion judge the same ε: the checked one (max of Opacus and PLD).

The audit stage prices its margin against the ε training reported (Opacus) and its ceiling ratio against the
target ε; the report claims the checked ε, which can be larger. The margin gate, the ceiling gate and the
sentence on the first page must all say the same thing about that one claim.
"""

from __future__ import annotations

import pytest

from tasks.params import Gates
from tasks.report.first_page import first_page
from tasks.report.html import render_html
from tests.tasks.test_report import RECORD, build_report, report_metrics

CHECKED = 3.3  # a fresh Opacus ε above training's 2.98 and the PLD's 2.97: the checked ε is 3.3


def _audit(bound: float, **over: float) -> dict[str, dict[str, float]]:
    """Audit metrics as the audit stage writes them: its margin against training's ε, its ratio against the target."""
    ceiling = over.pop("ceiling", 6.0)
    return report_metrics(**{"audit/dp/empirical_epsilon_lower_bound": bound,
                             "audit/dp/empirical_epsilon_margin": RECORD["epsilon"] - bound,
                             "audit/dp/canary/ceiling": ceiling,
                             "audit/dp/canary/ceiling_ratio": ceiling / RECORD["target_epsilon"]} | over)


def _gate(c: dict, name: str) -> dict:
    return next(g for g in c["gates"] if g["name"] == name)


def _model_lines(c: dict) -> str:
    page = first_page(c)
    return " ".join(next(q for q in page["questions"] if q["id"] == "model")["lines"])


def test_a_bound_between_opacus_and_the_checked_epsilon_is_no_violation_for_gate_and_sentence() -> None:
    """Bound 3.2: above training's ε 2.98 (the audit's margin is −0.22) but below the claimed 3.3."""
    c = build_report(_audit(3.2), eps=CHECKED)
    assert c["dp"]["epsilon_checked"] == pytest.approx(CHECKED)
    margin = _gate(c, "min_empirical_epsilon_margin")
    assert margin["value"] == pytest.approx(CHECKED - 3.2) and margin["status"] == "passed"
    text = _model_lines(c)
    assert "below the claimed ε = 3.3: no violation was detected" in text and "gate" not in text


def test_a_bound_above_the_checked_epsilon_fails_the_gate_and_the_sentence_says_so() -> None:
    c = build_report(_audit(3.4), eps=CHECKED)
    margin = _gate(c, "min_empirical_epsilon_margin")
    assert margin["value"] == pytest.approx(-0.1) and margin["status"] == "failed"
    assert "does not keep its guarantee" in _model_lines(c)


def test_a_stricter_margin_that_fails_is_said_next_to_no_violation() -> None:
    """A margin of 0.3 is no violation, but a policy asking for 0.5 fails the gate: the sentence says both."""
    c = build_report(_audit(3.0), eps=CHECKED, gates=Gates(min_empirical_epsilon_margin=0.5))
    assert _gate(c, "min_empirical_epsilon_margin")["status"] == "failed"
    text = _model_lines(c)
    assert "no violation was detected" in text
    assert "gates.min_empirical_epsilon_margin fails" in text and "0.3" in text and "0.5" in text


def test_a_tolerance_that_passes_a_violation_is_said_next_to_it() -> None:
    c = build_report(_audit(3.4), eps=CHECKED, gates=Gates(min_empirical_epsilon_margin=-0.5))
    assert _gate(c, "min_empirical_epsilon_margin")["status"] == "passed"
    text = _model_lines(c)
    assert "does not keep its guarantee" in text and "gates.min_empirical_epsilon_margin passes only because" in text


def test_the_ceiling_ratio_is_over_the_checked_epsilon_in_the_gate_and_the_text() -> None:
    """Ceiling 6.3: 2.1× the target ε 3.0 (the audit's ratio) but 1.91× the claimed 3.3 — below the 2× policy."""
    c = build_report(_audit(0.0, ceiling=6.3), eps=CHECKED)
    ratio = _gate(c, "min_audit_ceiling_ratio")
    assert ratio["value"] == pytest.approx(6.3 / CHECKED) and ratio["status"] == "failed"
    assert c["audit_design"]["ceiling_ratio"] == pytest.approx(6.3 / CHECKED)
    assert "1.91× the claim" in _model_lines(c)
    c["first_page"] = first_page(c)
    assert "1.909× the claimed ε" in render_html(c, title="T", figures={}, reproduce="make pipeline")


def test_without_a_ceiling_the_ratio_gate_is_not_measured() -> None:
    """A ratio the audit wrote without its ceiling cannot be re-priced against the claim: fail closed."""
    m = _audit(0.0)
    del m["audit"]["audit/dp/canary/ceiling"]
    c = build_report(m, eps=CHECKED)
    assert _gate(c, "min_audit_ceiling_ratio")["status"] == "failed"
    assert _gate(c, "min_audit_ceiling_ratio")["reason"] == "not measured"

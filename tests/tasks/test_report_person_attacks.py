"""Person-level LiRA in the report: beside the image-level attacks, gated (max_person_lira_auc_dp) in a per-unit run
only, failing closed when a per-unit run's audit did not measure it."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.params import Gates
from tasks.report.gates import PERSON_NOT_ASSESSED
from tasks.report.html import render_html, render_markdown
from tests.tasks.test_report import build_report, report_metrics


def person_audit(auc_online: float = 0.5, auc_offline: float = 0.49, *, trials: tuple[int, int] = (600, 200),
                 nonprivate_auc: float = 0.8) -> dict[str, float]:
    """The person-level audit metrics of both targets ("audit/<which>/person/<attack>/<field>")."""
    out: dict[str, float] = {"audit/dp/person/n_persons": 100.0, "audit/nonprivate/person/n_persons": 100.0}
    for which, aucs in (("dp", {"lira_online": auc_online, "lira_offline": auc_offline}),
                        ("nonprivate", {"lira_online": nonprivate_auc, "lira_offline": nonprivate_auc - 0.05})):
        for attack, auc in aucs.items():
            p = f"audit/{which}/person/{attack}"
            out |= {f"{p}/auc": auc, f"{p}/auc_ci_low": auc - 0.04, f"{p}/auc_ci_high": auc + 0.04,
                    f"{p}/tpr_at_0_1pct_fpr": 0.0, f"{p}/tpr_at_1pct_fpr": 0.01, f"{p}/tpr_at_1pct_fpr_ci_low": 0.0,
                    f"{p}/tpr_at_1pct_fpr_ci_high": 0.03, f"{p}/n_members": float(trials[0]),
                    f"{p}/n_nonmembers": float(trials[1]), f"{p}/n_member_persons": 100.0,
                    f"{p}/n_nonmember_persons": 100.0, f"{p}/n_models": 8.0}
    return out


def _unit() -> dict[str, Any]:
    """An honest per-person guarantee recomputed from the data (`unit_guarantee`): two persons, cap 2."""
    from tasks.report.accounting import unit_guarantee
    from tasks.train.person import UnitAccounting, bound_contributions, image_units, price_unit

    history = ((2.0, 0.25, 20),)
    units = image_units([f"a{i}" for i in range(4)] + ["b0"], {f"a{i}": ["ann"] for i in range(4)} | {"b0": ["ben"]})
    kept = bound_contributions(units, cap=2, seed=0)
    pld, prv = price_unit(history, cap=2, delta=1e-5)
    acc = UnitAccounting(unit="person", cap=2, rule="fixed", selection_seed=0, n_before=len(units), n_kept=len(kept),
                         n_units=2, max_observed=2, epsilon_pld=pld, epsilon_prv=prv, delta=1e-5)
    record = {"history": [list(h) for h in history], "n_train": len(kept), "privacy_unit": acc.as_dict()}
    return unit_guarantee(record, units=units, trained=kept) | {"epsilon": 2.5}


UNIT = _unit()


def _gate(c: dict[str, Any]) -> dict[str, Any] | None:
    return next((g for g in c["gates"] if g["name"] == "max_person_lira_auc_dp"), None)


def test_a_per_person_run_gates_person_level_lira_on_the_dp_model() -> None:
    ok = build_report(report_metrics(**person_audit()), unit=UNIT)
    gate = _gate(ok)
    assert gate is not None and gate["status"] == "passed" and gate["value"] == 0.5  # worse of 0.50 / 0.49
    assert (gate["n"], gate["n_other"], gate["unit"]) == (600, 200, "members") and ok["verdict"] == "pass"
    leaky = _gate(build_report(report_metrics(**person_audit(auc_offline=0.7)), unit=UNIT))
    assert leaky is not None and leaky["status"] == "failed" and leaky["value"] == 0.7  # the worse variant
    few = _gate(build_report(report_metrics(**person_audit(auc_online=0.55, trials=(40, 20))), unit=UNIT))
    assert few is not None and few["status"] == "not_assessed" and "too few samples" in few["reason"]
    strict = _gate(build_report(report_metrics(**person_audit()), unit=UNIT, gates=Gates(max_person_lira_auc_dp=0.51)))
    assert strict is not None and strict["threshold"] == 0.51


def test_a_per_person_run_without_the_person_audit_fails_closed() -> None:
    c = build_report(report_metrics(), unit=UNIT)
    gate = _gate(c)
    assert gate is not None and gate["status"] == "failed" and gate["reason"] == "not measured"
    assert c["verdict"] == "fail" and c["person_attacks"]["rows"] == []


def test_an_image_level_run_does_not_gate_persons_and_says_why() -> None:
    c = build_report(report_metrics(**person_audit(auc_online=0.9)))
    assert _gate(c) is None and c["verdict"] == "pass"
    assert c["person_attacks"]["assessed"] is False and c["person_attacks"]["reason"] == PERSON_NOT_ASSESSED
    kw: dict[str, Any] = {"title": "T", "figures": {}, "reproduce": "make pipeline"}
    bare = build_report(report_metrics())
    assert "Membership per person: not assessed (the privacy unit is one image" in render_markdown(bare, **kw)
    assert 'id="person-attacks-not-assessed"' in render_html(bare, **kw)


def test_person_and_image_results_side_by_side_for_both_models() -> None:
    c = build_report(report_metrics(**person_audit()), unit=UNIT)
    rows = {(r["attack"], r["model"]): r for r in c["person_attacks"]["rows"]}
    assert set(rows) == {(a, m) for a in ("lira_online", "lira_offline") for m in ("dp", "nonprivate")}
    assert rows[("lira_online", "dp")]["image_auc"] == 0.494 and rows[("lira_online", "dp")]["auc"] == 0.5
    assert rows[("lira_online", "nonprivate")]["auc"] == pytest.approx(0.8)  # the baseline's number, beside the DP one
    assert c["person_attacks"]["assessed"] and c["person_attacks"]["persons"] == 100
    kw: dict[str, Any] = {"title": "T", "figures": {}, "reproduce": "make pipeline"}
    html, md = render_html(c, **kw), render_markdown(c, **kw)
    assert 'id="person-attacks"' in html and "0.46, 0.54" in html
    assert "| AUC per image | AUC per person [95 %] |" in md 
    # the baseline's image-level AUC (0.549) beside its person-level one (0.75, the offline variant)
    assert "| non-private baseline (never released) | 0.549 | 0.75 [0.71, 0.79] |" in md

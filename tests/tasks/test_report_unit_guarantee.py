"""The report recomputes the per-person guarantee from the data and the mechanism; the agreement is a gate."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.errors import InvalidInputError
from tasks.report.accounting import unit_guarantee
from tasks.train.person import UnitAccounting, bound_contributions, image_units, price_unit

HISTORY = ((2.0, 0.25, 20),)


def _units() -> dict[str, tuple[str, ...]]:
    persons = {f"a{i}": ["ann"] for i in range(4)} | {"b0": ["ben"], "ab": ["ann", "ben"]}
    return image_units([*persons, "e0", "e1"], persons)


def _record(units: dict[str, tuple[str, ...]], *, cap: int, trained: tuple[str, ...]) -> dict[str, Any]:
    pld, prv = price_unit(HISTORY, cap=cap, delta=1e-5)
    acc = UnitAccounting(unit="person", cap=cap, rule="fixed", selection_seed=0, n_before=len(units),
                         n_kept=len(trained), n_units=3, max_observed=cap, epsilon_pld=pld, epsilon_prv=prv,
                         delta=1e-5)
    return {"history": [list(h) for h in HISTORY], "n_train": len(trained), "privacy_unit": acc.as_dict()}


def test_an_honest_per_person_record_passes_and_is_recomputed() -> None:
    units = _units()
    kept = bound_contributions(units, cap=2, seed=0)
    g = unit_guarantee(_record(units, cap=2, trained=kept), units=units, trained=kept)
    assert g["agreement"] and g["problems"] == [] and g["images_without_unit"] == 2  # e0, e1
    assert g["max_images_per_unit"] == 2 and g["n_kept"] == len(kept) == 5  # ann 2, ben 1 (ab dropped: ann is full), 2 empty
    assert g["epsilon"] == pytest.approx(max(price_unit(HISTORY, cap=2, delta=1e-5)))


def test_gate_fails_when_the_recorded_bound_is_understated() -> None:
    # the record says cap 2, but training used every image: ann is in 5 of them (4 alone + 1 with ben)
    units = _units()
    everything = tuple(units)
    g = unit_guarantee(_record(units, cap=2, trained=everything), units=units, trained=everything)
    assert not g["agreement"]
    assert any("5 training images, above the recorded cap 2" in p for p in g["problems"])
    assert any("not the selection" in p for p in g["problems"])
    assert g["epsilon"] == pytest.approx(max(price_unit(HISTORY, cap=5, delta=1e-5)))  # priced at the data's 5


def test_gate_fails_when_n_train_is_not_what_training_used() -> None:
    units = _units()
    kept = bound_contributions(units, cap=2, seed=0)
    record = _record(units, cap=2, trained=kept) | {"n_train": len(kept) + 1}
    g = unit_guarantee(record, units=units, trained=kept)
    assert not g["agreement"] and any("n_train" in p for p in g["problems"])


def test_an_image_level_record_or_unknown_images_are_refused() -> None:
    units = _units()
    with pytest.raises(InvalidInputError, match="no privacy_unit"):
        unit_guarantee({"history": [], "n_train": 1}, units=units, trained=())
    kept = bound_contributions(units, cap=2, seed=0)
    with pytest.raises(InvalidInputError, match="not in the train split"):
        unit_guarantee(_record(units, cap=2, trained=kept), units=units, trained=(*kept, "ghost"))


def _gate(c: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in c["gates"] if g["name"] == name)


def test_the_report_headline_is_per_person_and_the_agreement_is_a_gate() -> None:
    from tasks.report.first_page import first_page
    from tests.tasks.test_report import build_report, report_metrics

    units = _units()
    kept = bound_contributions(units, cap=2, seed=0)
    unit = unit_guarantee(_record(units, cap=2, trained=kept), units=units, trained=kept)
    unit = unit | {"epsilon": 2.5}  # below the image-level 2.985: the headline never drops below it
    from tests.tasks.test_report_person_attacks import person_audit

    c = build_report(report_metrics(**person_audit()), unit=unit)  # a per-person run gates person-level LiRA too
    assert c["dp"]["epsilon_checked"] == pytest.approx(2.985) and c["dp"]["epsilon_image"] == pytest.approx(2.985)
    assert c["dp"]["privacy_unit"] == "one person (at most 2 training images each, enforced)"
    assert _gate(c, "unit_accounting_agreement")["status"] == "passed" and c["verdict"] == "pass"
    model = next(q for q in first_page(c, model_name="m", alias="a")["questions"] if q["id"] == "model")
    text = " ".join(model["lines"])
    assert "all the training images of any one person" in text and "capped at 2 training images" in text
    assert "2 of the kept images show no known person" in text
    from tasks.params import Gates
    from tasks.report.compliance import build_compliance
    from tests.tasks.test_report import RECORD

    capped = build_compliance(metrics=report_metrics(), dp_record=RECORD | {"privacy_unit": {"unit": "person", "cap": 2}},
                              epsilon_recomputed=2.985, gates=Gates(), lineage={}, unit=unit)
    assert capped["dp"]["mechanism"].endswith("each person's training images capped at 2")
    higher = build_report(report_metrics(), unit=unit | {"epsilon": 2.99})
    assert higher["dp"]["epsilon_checked"] == pytest.approx(2.99)  # per person above per image: the headline


def test_an_understated_bound_fails_the_report() -> None:
    from tests.tasks.test_report import build_report, report_metrics

    units = _units()
    everything = tuple(units)
    unit = unit_guarantee(_record(units, cap=2, trained=everything), units=units, trained=everything)
    c = build_report(report_metrics(), unit=unit)
    gate = _gate(c, "unit_accounting_agreement")
    assert gate["status"] == "failed" and gate["value"] == len(unit["problems"]) >= 2
    assert c["verdict"] == "fail"
    assert build_report(report_metrics())["gates"][-1]["name"] != "unit_accounting_agreement"  # per image: no gate


def test_every_per_unit_key_is_defined() -> None:
    from flows.train import unit_metrics
    from tasks.report.definitions import undefined
    from tasks.train.dp import DpTrainingRecord

    units = _units()
    kept = bound_contributions(units, cap=2, seed=0)
    rec = DpTrainingRecord(noise_multiplier=2.0, sample_rate=0.25, steps=20, epochs=5, accountant="prv",
                           target_epsilon=3.0, target_delta=1e-5, epsilon=1.0, max_grad_norm=1.0, n_train=len(kept),
                           batch_size=2, poisson_sampling=True, history=HISTORY,
                           privacy_unit=_record(units, cap=2, trained=kept)["privacy_unit"])
    keys = list(unit_metrics(rec)) + ["dp/epsilon_image", "dp/unit_problems"]
    assert len(keys) == 10 and undefined(keys) == []


def test_html_and_markdown_name_the_unit_and_both_accountants() -> None:
    from tasks.report.html import render_html, render_markdown
    from tests.tasks.test_report import build_report, report_metrics

    units = _units()
    kept = bound_contributions(units, cap=2, seed=0)
    c = build_report(report_metrics(), unit=unit_guarantee(_record(units, cap=2, trained=kept), units=units,
                                                            trained=kept))
    html = render_html(c, title="T", figures={}, reproduce="x")
    md = render_markdown(c, title="T", figures={}, reproduce="x")
    for text in (html, md):
        assert "The privacy unit is one person (at most 2 training images each, enforced)." in text
        assert "independent PRV accountant" in text and "The privacy unit is one image" not in text
    plain = render_markdown(build_report(report_metrics()), title="T", figures={}, reproduce="x")
    assert "The privacy unit is one image" in plain

"""The ledger spends per unit: per-person runs compose with the mixture accountant, apart from per-image runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from tasks.errors import PrivacyBudgetError
from tasks.train.dp import DpTrainingRecord
from tasks.train.ledger import (
    LedgerEntry,
    budget_status,
    check_budget,
    entry_from_record,
    format_summary,
    parse_ledger,
)
from tasks.train.person import UnitAccounting, composed_unit_epsilon, price_unit

DIGEST = hashlib.sha256(b"a").hexdigest()
HISTORY = ((2.5, 0.25, 20),)


def _entry(*, unit: str = "person", cap: int = 2, eps: float = 4.0, run: str = "r",
           person_cap: int | None = -1) -> LedgerEntry:
    return LedgerEntry(dataset_digest=DIGEST, n_train=400, time="t", mlflow_run_id=run, git_sha="g", accountant="prv",
                       delta=1e-5, epsilon=eps, history=HISTORY, unit=unit, cap=cap,
                       person_cap=cap if person_cap == -1 else person_cap)


def test_a_person_budget_composes_every_run_at_what_it_cost_a_person() -> None:
    # two per-person runs (caps 2 and 3) and a per-image run in which one person had 5 images
    entries = [_entry(cap=2, run="a"), _entry(cap=3, run="b"), _entry(unit="image", cap=1, person_cap=5, run="c")]
    status = budget_status(entries, dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=50.0, unit="person")
    assert status.runs == 3 and status.unit == "person" and status.accountant == "pld_mixture"
    expected = composed_unit_epsilon([(HISTORY, 2), (HISTORY, 3), (HISTORY, 5)], delta=1e-5)
    assert status.epsilon_total == pytest.approx(expected)
    assert status.epsilon_total > composed_unit_epsilon([(HISTORY, 5)], delta=1e-5)  # three runs cost more than one
    image = budget_status(entries, dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=50.0)
    assert image.runs == 3 and image.unit == "image"  # every run is a per-image mechanism too


def test_a_person_budget_refuses_runs_whose_cost_to_a_person_is_unknown() -> None:
    legacy = _entry(unit="image", cap=1, person_cap=None, run="old")
    with pytest.raises(PrivacyBudgetError, match="run old: older than per-person accounting"):
        budget_status([legacy, _entry()], dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=50.0, unit="person")
    assert budget_status([legacy], dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=50.0).runs == 1


def test_a_column_unit_composes_its_own_runs() -> None:
    entries = [_entry(unit="video", cap=4, person_cap=None, run="v"), _entry(unit="image", cap=1, run="i")]
    status = budget_status(entries, dataset_digest=DIGEST, delta=1e-5, max_total_epsilon=50.0, unit="video")
    assert status.runs == 1
    assert status.epsilon_total == pytest.approx(composed_unit_epsilon([(HISTORY, 4)], delta=1e-5))


def test_a_person_budget_refuses_the_run_that_would_exceed_it() -> None:
    one = composed_unit_epsilon([(HISTORY, 3)], delta=1e-5)
    with pytest.raises(PrivacyBudgetError, match="per person"):
        check_budget([_entry(cap=3)], _entry(cap=3, run="planned"), delta=1e-5, max_total_epsilon=one * 1.2)


def test_entries_round_trip_and_old_entries_are_per_image() -> None:
    e = _entry(cap=4)
    (back,) = parse_ledger(json.dumps(e.as_dict()))
    assert back == e
    old = {k: v for k, v in e.as_dict().items() if k not in ("unit", "cap", "person_cap")}
    (legacy,) = parse_ledger(json.dumps(old))
    assert (legacy.unit, legacy.cap, legacy.person_cap) == ("image", 1, None)
    assert "(epsilon per person)" in format_summary([e], delta=1e-5, max_total_epsilon=20.0)


def test_entry_from_a_per_person_record_spends_the_per_person_epsilon() -> None:
    rec = DpTrainingRecord(noise_multiplier=2.5, sample_rate=0.25, steps=20, epochs=5, accountant="prv",
                           target_epsilon=8.0, target_delta=1e-5, epsilon=1.0, max_grad_norm=1.0, n_train=400,
                           batch_size=100, poisson_sampling=True, history=HISTORY)
    pld, prv = price_unit(rec.history, cap=2, delta=rec.target_delta)
    acc = UnitAccounting(unit="person", cap=2, rule="fixed", selection_seed=0, n_before=1200, n_kept=1000,
                         n_units=300, max_observed=2, epsilon_pld=pld, epsilon_prv=prv, delta=rec.target_delta)
    rec = dataclasses.replace(rec, privacy_unit=acc.as_dict())
    e = entry_from_record(rec, dataset_digest=DIGEST, time="t", mlflow_run_id="r", git_sha="g")
    assert (e.unit, e.cap, e.person_cap, e.epsilon) == ("person", 2, 2, acc.checked)
    image = entry_from_record(dataclasses.replace(rec, privacy_unit=None), dataset_digest=DIGEST, time="t",
                              mlflow_run_id="r", git_sha="g", person_cap=30)
    assert (image.unit, image.cap, image.person_cap) == ("image", 1, 30)

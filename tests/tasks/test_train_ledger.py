"""The privacy budget ledger: composition across runs, refusal, the JSONL round trip."""

from __future__ import annotations

import hashlib
import json
from functools import cache

import pytest

from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.train.dp import planned_history, recompute_epsilon
from tasks.train.ledger import (
    LedgerEntry,
    budget_status,
    check_budget,
    composed_epsilon,
    composition_accountant,
    dataset_digest,
    entry_from_record,
    format_entry,
    format_summary,
    parse_ledger,
    summarize,
)
from tests.tasks.test_train import make_record

DIGEST_A = hashlib.sha256(b"a").hexdigest()
DIGEST_B = hashlib.sha256(b"b").hexdigest()


@cache
def _planned(acc: str = "prv") -> tuple[tuple[float, float, int], ...]:
    """What the default pipeline runs: 1,200 train crops, batch 256, 10 epochs, epsilon 3 at delta 1e-5."""
    return planned_history(
        1200, batch_size=256, epochs=10, target_epsilon=3.0, target_delta=1e-5, accountant=acc
    )


def _entry(
    *, digest: str = DIGEST_A, acc: str = "prv", eps: float = 3.0, run: str = "r1", history=None
) -> LedgerEntry:
    return LedgerEntry(dataset_digest=digest, n_train=1200, time="2025-01-01T00:00:00+00:00", mlflow_run_id=run,
                       git_sha="abc", accountant=acc, delta=1e-5, epsilon=eps, history=history or _planned())  # fmt: skip


def test_planned_history_is_opacus_search() -> None:
    (sigma, q, steps),  = _planned()  # fmt: skip
    assert q == pytest.approx(1 / 5) and steps == 50  # ceil(1200 / 256) = 5 batches per epoch, 10 epochs
    assert composed_epsilon([_planned()], accountant="prv", delta=1e-5) == pytest.approx(3.0, abs=0.011)
    assert 1.5 < sigma < 3.5


@pytest.mark.parametrize("acc", ["prv", "rdp"])
def test_composition_is_tighter_than_the_sum(acc: str) -> None:
    history = _planned(acc)
    one = composed_epsilon([history], accountant=acc, delta=1e-5)
    for k in (2, 3, 4):
        total = composed_epsilon([history] * k, accountant=acc, delta=1e-5)
        assert one * 1.2 < total < 0.8 * k * one, (
            k,
            total,
            one,
        )  # more than one run's, far less than the sum
    # different mechanisms (another noise and sample rate) compose too
    other = planned_history(
        1200, batch_size=64, epochs=2, target_epsilon=1.0, target_delta=1e-5, accountant=acc
    )
    two = composed_epsilon([history, other], accountant=acc, delta=1e-5)
    assert one < two < one + composed_epsilon([other], accountant=acc, delta=1e-5)


def test_single_run_total_equals_recomputed_epsilon() -> None:
    rec = make_record(acc="rdp")
    status = budget_status([_entry(acc="rdp", history=rec.history)], dataset_digest=DIGEST_A, delta=1e-5,
                           max_total_epsilon=10)  # fmt: skip
    assert status.epsilon_total == pytest.approx(recompute_epsilon(rec), rel=1e-9)


def test_status_counts_only_its_dataset_and_reports_the_sum() -> None:
    entries = [_entry(run="1"), _entry(run="2", digest=DIGEST_B), _entry(run="3")]
    a = budget_status(entries, dataset_digest=DIGEST_A, delta=1e-5, max_total_epsilon=10)
    b = budget_status(entries, dataset_digest=DIGEST_B, delta=1e-5, max_total_epsilon=10)
    assert (a.runs, b.runs) == (2, 1)
    assert a.epsilon_sum == 6.0 and a.epsilon_total < 5.0  # PRV: two epsilon-3 runs compose to ~4.3
    assert a.remaining == pytest.approx(10 - a.epsilon_total)
    assert a.as_metrics()["train/ledger_runs"] == 2.0
    empty = budget_status([], dataset_digest=DIGEST_A, delta=1e-5, max_total_epsilon=10)
    assert (empty.runs, empty.epsilon_total) == (0, 0.0)
    assert [s.dataset_digest for s in summarize(entries, delta=1e-5, max_total_epsilon=10)] == [
        DIGEST_A,
        DIGEST_B,
    ]


def test_mixed_or_gdp_runs_are_priced_with_rdp() -> None:
    assert composition_accountant(["prv", "prv"]) == "prv"
    assert composition_accountant(["rdp"]) == "rdp"
    assert composition_accountant(["prv", "rdp"]) == "rdp"
    assert composition_accountant(["gdp", "gdp"]) == "rdp"  # Opacus' GDP accountant reads only the last entry
    with pytest.raises(InvalidInputError, match="gdp"):
        composed_epsilon([_planned()], accountant="gdp", delta=1e-5)


def test_check_budget_refuses_with_dataset_spent_and_requested() -> None:
    entries = [_entry(run=str(i)) for i in range(7)]  # PRV: 7 epsilon-3 runs compose to ~8.8
    after = check_budget(entries, _entry(run="planned"), delta=1e-5, max_total_epsilon=10)  # 8th fits (~9.43)
    assert after.runs == 8 and 9.0 < after.epsilon_total <= 10
    entries.append(_entry(run="7"))
    with pytest.raises(PrivacyBudgetError) as err:
        check_budget(entries, _entry(run="planned"), delta=1e-5, max_total_epsilon=10)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"dataset {DIGEST_A[:12]}" in msg and "8 earlier run(s) spent epsilon 9.4" in msg
    assert "requests epsilon 3.000" in msg and "max_total_epsilon=10" in msg
    # another dataset's spending does not count
    check_budget(entries, _entry(run="planned", digest=DIGEST_B), delta=1e-5, max_total_epsilon=10)


def test_first_run_over_budget_is_refused() -> None:
    with pytest.raises(PrivacyBudgetError, match="0 earlier run"):
        check_budget([], _entry(), delta=1e-5, max_total_epsilon=2.0)


def test_jsonl_round_trip_and_append_only_text() -> None:
    e1, e2 = _entry(run="1"), _entry(run="2", digest=DIGEST_B, acc="rdp")
    line1, line2 = format_entry(e1), format_entry(e2)
    assert line1.endswith("\n") and line1.count("\n") == 1
    assert json.loads(line1)["version"] == 1
    text = line1 + "\n" + line2  # blank lines are tolerated; appending never rewrites earlier lines
    assert parse_ledger(text) == (e1, e2)
    assert parse_ledger(line1) == (e1,) and parse_ledger("") == ()
    assert (line1 + line2).startswith(line1)


@pytest.mark.parametrize(
    ("line", "reason"),
    [("{not json", "not JSON"), ("[1, 2]", "JSON object"), ('{"dataset_digest": "x"}', "missing fields"),
     (json.dumps({**_entry().as_dict(), "history": []}), "empty mechanism history")],
)  # fmt: skip
def test_parse_ledger_names_the_bad_line(line: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"^led.jsonl:2: .*{reason}"):
        parse_ledger(format_entry(_entry()) + line + "\n", source="led.jsonl")


def test_dataset_digest_is_order_free_and_validated() -> None:
    hashes = [DIGEST_A, DIGEST_B]
    assert dataset_digest(hashes) == dataset_digest(reversed(hashes)) != dataset_digest([DIGEST_A])
    with pytest.raises(InvalidInputError, match="no image hashes"):
        dataset_digest([])
    with pytest.raises(InvalidInputError, match="not sha256"):
        dataset_digest(["nope"])


def test_entry_from_record_and_summary() -> None:
    rec = make_record(acc="rdp")
    e = entry_from_record(rec, dataset_digest=DIGEST_A, time="t", mlflow_run_id="run9", git_sha="s")
    assert (e.history, e.accountant, e.delta, e.n_train) == (
        rec.history,
        "rdp",
        rec.target_delta,
        rec.n_train,
    )
    text = format_summary([e], delta=1e-5, max_total_epsilon=1.0)
    assert f"dataset {DIGEST_A[:12]}  runs 1" in text and "EXCEEDED" in text and "run run9" in text
    assert "empty" in format_summary([], delta=1e-5, max_total_epsilon=1.0)

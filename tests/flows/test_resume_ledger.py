"""A DP run killed half-way is spent (issue 39): the train flow writes a "started" entry before DP-SGD sees the
data and a "finished" one after; a rerun spends again, never zero, and a finished run counts once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.train import planned_entry, read_ledger, record_start, refuse_over_budget, spend_budget
from tasks.errors import InvalidInputError
from tasks.train.ledger import budget_status, format_summary, parse_ledger
from tests.flows.test_budget_flow import DIGEST, P
from tests.tasks.test_train import make_record


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.delenv("PRIVTRAIL_LEDGER", raising=False)
    return tmp_path


def _status() -> tuple[int, float]:
    s = budget_status(read_ledger(P), dataset_digest=DIGEST, delta=P.budget.delta,
                      max_total_epsilon=P.budget.max_total_epsilon)
    return s.runs, s.epsilon_total


def test_a_killed_run_is_spent_and_its_rerun_spends_again(workspace: Path) -> None:
    refuse_over_budget(P, DIGEST, 120, 40)
    record_start(P, planned_entry(P, DIGEST, 120, 40), run_id="killed")  # then kill -9: no finished entry
    runs, spent = _status()
    assert runs == 1 and spent == pytest.approx(P.dp.target_epsilon, rel=0.05)
    summary = format_summary(read_ledger(P), delta=P.budget.delta, max_total_epsilon=P.budget.max_total_epsilon)
    assert "run killed" in summary and "started, never finished: counted at its planned cost" in summary
    (entry,) = read_ledger(P)
    assert (entry.status, entry.mlflow_run_id, entry.epsilon) == ("started", "killed", P.dp.target_epsilon)
    record_start(P, planned_entry(P, DIGEST, 120, 40), run_id="rerun")  # the resumed run restarts training
    spend_budget(P, make_record(acc="rdp"), digest=DIGEST, run_id="rerun")
    runs, total = _status()
    assert runs == 2 and total > spent * 1.2  # both runs composed: the killed one is never free
    lines = [json.loads(x) for x in (workspace / "ledger/privacy_ledger.jsonl").read_text().splitlines()]
    assert [(e["mlflow_run_id"], e["status"]) for e in lines] == [
        ("killed", "started"), ("rerun", "started"), ("rerun", "finished")]


def test_a_finished_run_counts_once_at_its_recorded_mechanism(workspace: Path) -> None:
    record_start(P, planned_entry(P, DIGEST, 120, 40), run_id="one")
    spend_budget(P, make_record(acc="rdp"), digest=DIGEST, run_id="one")
    (entry,) = read_ledger(P)
    assert entry.status == "finished" and entry.time != "planned"
    assert _status()[0] == 1


def test_old_entries_read_as_finished_and_a_bad_status_is_refused() -> None:
    record = {"version": 1, "dataset_digest": DIGEST, "n_train": 1, "time": "t", "mlflow_run_id": "r", "git_sha": "g",
              "accountant": "rdp", "delta": 1e-5, "epsilon": 1.0, "history": [[1.0, 0.1, 10]]}
    (old,) = parse_ledger(json.dumps(record))
    assert old.status == "finished"
    with pytest.raises(InvalidInputError, match=r"ledger:1: status 'paused'"):
        parse_ledger(json.dumps(record | {"status": "paused"}))

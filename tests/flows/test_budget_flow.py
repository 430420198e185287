"""The privacy ledger on the flow side, without a Prefect server: refuse before training, append
after it, `privtrail budget` prints it, the PRIVTRAIL_LEDGER override."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from flows import cli, io
from flows.train import read_ledger, refuse_over_budget, spend_budget
from tasks.errors import PrivacyBudgetError
from tasks.params import TrainParams
from tasks.train.dp import planned_history
from tasks.train.ledger import LedgerEntry, format_entry
from tests.tasks.test_train import make_record

DIGEST = hashlib.sha256(b"train split").hexdigest()
# 120 train images, batch 40, 2 epochs, epsilon 2 at delta 1e-3 (RDP: fast to price)
P = TrainParams.model_validate({"epochs": 2, "batch_size": 40,
                                "dp": {"target_epsilon": 2.0, "target_delta": 1e-3, "accountant": "rdp"},
                                "budget": {"max_total_epsilon": 4.0, "delta": 1e-3}})  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.delenv("PRIVTRAIL_LEDGER", raising=False)
    return tmp_path


@cache
def _history() -> tuple[tuple[float, float, int], ...]:
    return planned_history(
        120, batch_size=40, epochs=2, target_epsilon=2.0, target_delta=1e-3, accountant="rdp"
    )


def _spent_run(run_id: str) -> LedgerEntry:
    return LedgerEntry(dataset_digest=DIGEST, n_train=120, time="t", mlflow_run_id=run_id, git_sha="g",
                       accountant="rdp", delta=1e-3, epsilon=2.0, history=_history())  # fmt: skip


def test_refuse_before_training_then_spend_appends(workspace: Path) -> None:
    assert refuse_over_budget(P, DIGEST, 120, 40).runs == 1  # empty ledger: the planned run alone
    for i in range(3):
        io.append_line(io.ledger_path(P), format_entry(_spent_run(f"r{i}")))
    with pytest.raises(
        PrivacyBudgetError, match=rf"dataset {DIGEST[:12]} \(n_train=120\): 3 earlier run\(s\)"
    ):
        refuse_over_budget(P, DIGEST, 120, 40)  # RDP: four epsilon-2 runs compose to 4.05 > 4
    other = hashlib.sha256(b"another split").hexdigest()
    assert refuse_over_budget(P, other, 120, 40).runs == 1
    before = (workspace / "ledger/privacy_ledger.jsonl").read_text()
    status = spend_budget(P, make_record(acc="rdp"), digest=other, run_id="new")
    after = (workspace / "ledger/privacy_ledger.jsonl").read_text()
    assert after.startswith(before) and after.count("\n") == 4  # appended, nothing rewritten
    assert status.runs == 1 and read_ledger(P)[-1].mlflow_run_id == "new"


def test_refuse_checks_delta_against_n(workspace: Path) -> None:
    from tasks.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="1/n_train = 1/500"):
        refuse_over_budget(
            P.model_copy(update={"dp": P.dp.model_copy(update={"target_delta": 0.01})}), DIGEST, 500, 40
        )


def test_ledger_env_override(workspace: Path, tmp_path_factory: pytest.TempPathFactory,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    shared = tmp_path_factory.mktemp("shared") / "ledger.jsonl"
    monkeypatch.setenv("PRIVTRAIL_LEDGER", str(shared))
    io.append_line(io.ledger_path(P), format_entry(_spent_run("x")))
    assert shared.exists() and not (workspace / "ledger").exists()


def test_privtrail_budget_prints_the_ledger(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "params.yaml").write_text("train:\n  budget: {max_total_epsilon: 2.5, delta: 1.0e-3}\n")
    assert cli.main(["budget"]) == 0
    assert "0 DP training run(s)" in capsys.readouterr().out
    io.append_line("ledger/privacy_ledger.jsonl", format_entry(_spent_run("r0")))
    io.append_line("ledger/privacy_ledger.jsonl", format_entry(_spent_run("r1")))
    assert cli.main(["budget"]) == 0
    out = capsys.readouterr().out
    assert f"dataset {DIGEST[:12]}  runs 2" in out and "budget 2.5: EXCEEDED" in out and "run r1" in out
    assert cli.main(["budget", "--check"]) == 3


def test_a_re_anonymized_source_spends_the_same_budget(workspace: Path) -> None:
    """The ledger's key names the raw source (who is in the data), not the anonymized images: anonymizing the
    same collection again, with other params, composes into the same budget and is refused once it is spent."""
    from tasks.ingest.manifest import source_identity

    def key(**ingest: object) -> str:
        return hashlib.sha256(source_identity(seed=1234, builtin={"n_images": 2000}, **ingest).encode()).hexdigest()

    first = key(kind="folder", location="/data/camera7")  # anonymized with pixelate, trained three times
    for i in range(3):
        io.append_line(io.ledger_path(P), format_entry(replace(_spent_run(f"pixelate-{i}"), dataset_digest=first)))
    again = key(kind="folder", location="/data/camera7")  # the same folder, re-anonymized with inpaint
    assert again == first
    with pytest.raises(PrivacyBudgetError, match="3 earlier run"):
        refuse_over_budget(P, again, 120, 40)
    assert key(kind="folder", location="/data/camera8") != first  # another collection has its own budget

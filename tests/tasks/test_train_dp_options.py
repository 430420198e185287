"""DP-SGD options of issue 5: grad_sample_mode, secure_mode, the δ < 1/n check, GDP warning, the
planned history the budget check prices, and their place in the record and compliance.json."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tasks.errors import InvalidInputError
from tasks.params import Gates
from tasks.report.compliance import build_compliance
from tasks.train.dp import (
    GDP_WARNING,
    SEEDED_WARNING,
    DpTrainingRecord,
    check_delta,
    planned_history,
    train_dp,
)
from tests.tasks.test_report import RECORD, report_metrics
from tests.tasks.test_train import toy_data

_KW = dict(model_name="digit_linear", epochs=2, batch_size=24, lr=0.5, momentum=0.9, target_epsilon=3.0,
           target_delta=1e-3, max_grad_norm=1.0, seed=0, physical_batch_size=16)  # fmt: skip


@pytest.fixture(scope="module")
def runs() -> dict[str, DpTrainingRecord]:
    x, y = toy_data(80, seed=0, size=16)
    x = x[:, :1].contiguous()  # digit_linear takes one channel
    return {
        mode: train_dp(x, y, accountant="rdp", grad_sample_mode=mode, noise_seed=11, **_KW)
        for mode in ("hooks", "ghost")
    }


def test_planned_history_is_what_training_runs(runs: dict) -> None:
    planned = planned_history(
        80, batch_size=24, epochs=2, target_epsilon=3.0, target_delta=1e-3, accountant="rdp"
    )
    for res in runs.values():
        assert res.record.history == planned  # ceil(80 / 24) = 4 batches: q = 1/4, 8 steps


def test_ghost_clipping_trains_the_same_mechanism(runs: dict) -> None:
    hooks, ghost = runs["hooks"], runs["ghost"]
    assert (hooks.record.grad_sample_mode, ghost.record.grad_sample_mode) == ("hooks", "ghost")
    assert ghost.record.history == hooks.record.history and ghost.record.epsilon == hooks.record.epsilon
    # same seeds, same sampling and noise: the clipped, noised updates agree up to float error
    for k, v in hooks.model.state_dict().items():
        assert torch.allclose(v, ghost.model.state_dict()[k], atol=1e-4), k
    assert [c.train_loss for c in ghost.curve] == pytest.approx([c.train_loss for c in hooks.curve], rel=1e-4)
    assert not ghost.record.secure_mode and ghost.record.warnings == (SEEDED_WARNING,) and ghost.record.rng == "seeded"


def test_delta_must_be_below_one_over_n() -> None:
    check_delta(1e-5, 1200)
    with pytest.raises(InvalidInputError, match=r"target_delta=0.01 must be < 1/n_train = 1/200 = 0.005"):
        check_delta(0.01, 200)
    x, y = toy_data(40, seed=1, size=16)
    x = x[:, :1].contiguous()
    with pytest.raises(InvalidInputError, match="1/n_train = 1/40"):
        train_dp(x, y, accountant="rdp", **{**_KW, "target_delta": 0.05})


def test_unknown_grad_sample_mode_is_refused() -> None:
    x, y = toy_data(40, seed=1, size=16)
    x = x[:, :1].contiguous()
    with pytest.raises(InvalidInputError, match="grad_sample_mode 'ew'"):
        train_dp(x, y, accountant="rdp", grad_sample_mode="ew", **_KW)


@pytest.mark.skipif(importlib.util.find_spec("torchcsprng") is not None, reason="torchcsprng installed")
def test_secure_mode_without_torchcsprng_says_so() -> None:
    x, y = toy_data(40, seed=1, size=16)
    x = x[:, :1].contiguous()
    with pytest.raises(InvalidInputError, match="secure_mode=true needs the torchcsprng"):
        train_dp(x, y, accountant="rdp", secure_mode=True, **_KW)


def test_gdp_run_carries_the_warning() -> None:
    x, y = toy_data(40, seed=2, size=16)
    x = x[:, :1].contiguous()
    rec = train_dp(x, y, accountant="gdp", **{**_KW, "epochs": 1}).record
    assert rec.accountant == "gdp" and rec.warnings == (GDP_WARNING,) and "understate" in GDP_WARNING
    assert rec.rng == "os_entropy"
    assert DpTrainingRecord.from_dict(rec.as_dict()) == rec


def test_old_records_still_load() -> None:
    old = DpTrainingRecord.from_dict(dict(RECORD))  # a dp_record.json without the issue-5 fields
    assert (old.grad_sample_mode, old.secure_mode, old.warnings) == ("hooks", False, ())


def test_compliance_dp_section_has_mode_norm_secure_and_ledger() -> None:
    record = {**RECORD, "grad_sample_mode": "ghost", "secure_mode": False, "warnings": []}
    ledger = {"ledger_total_epsilon": 4.31, "ledger_runs": 2, "ledger_max_total_epsilon": 10.0,
              "ledger_delta": 1e-5, "dataset_digest": "d" * 64}  # fmt: skip
    kw = dict(metrics=report_metrics(), epsilon_recomputed=2.985, gates=Gates(), lineage={})
    dp = build_compliance(dp_record=record, ledger=ledger, **kw)["dp"]
    assert (dp["grad_sample_mode"], dp["secure_mode"], dp["max_grad_norm"]) == (
        "ghost",
        False,
        RECORD["max_grad_norm"],
    )
    assert dp["ledger_total_epsilon"] == 4.31 and dp["ledger_runs"] == 2
    legacy = build_compliance(dp_record=RECORD, **kw)["dp"]
    assert legacy["grad_sample_mode"] == "hooks" and legacy["ledger_total_epsilon"] is None


def test_noise_and_sampling_are_secret_by_default() -> None:
    """Two runs with equal params (and equal `seed`) draw different noise and sampling, and record the same
    mechanism and epsilon: nothing in params, the repository or the record lets anyone regenerate the noise."""
    x, y = toy_data(80, seed=0, size=16)
    x = x[:, :1].contiguous()
    a, b = (train_dp(x, y, accountant="rdp", **_KW) for _ in range(2))
    assert a.record.rng == b.record.rng == "os_entropy" and a.record.warnings == ()
    assert a.record.history == b.record.history and a.record.epsilon == b.record.epsilon
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert not all(torch.equal(wa[k], wb[k]) for k in wa)
    c, d = (train_dp(x, y, accountant="rdp", noise_seed=5, **_KW) for _ in range(2))
    assert all(torch.equal(c.model.state_dict()[k], d.model.state_dict()[k]) for k in wa)
    assert "seed" not in str(a.record.as_dict()["rng"]) and c.record.rng == "seeded"

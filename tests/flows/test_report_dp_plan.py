"""Issue 34 item 7 (review): the report prices a DP record only when it is the mechanism the params and the
data plan — n_train from the anonymized manifest's train rows, batch size, epochs and DP params from
`train`, σ from Opacus' calibration — not merely when the record agrees with itself.

The report's `_recompute` runs on a temp workspace (params.yaml, the anonymized manifest and labels): no
stage, no MLflow. One tiny real DP-SGD run (96 images, one epoch) gives the honest record.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows import io
from tasks.errors import PrivacyBudgetError
from tasks.train.dp import DpTrainingRecord, history_mismatches, recompute_epsilon

REPO = Path(__file__).resolve().parents[2]
N_TRAIN, N_TEST, BATCH = 96, 24, 32
DP = {"target_epsilon": 8.0, "target_delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"}


@pytest.fixture(scope="module")
def honest() -> DpTrainingRecord:
    """The record of a real `train_dp` run on the plan's schedule."""
    from tasks.train.dp import train_dp
    from tests.tasks.test_train import toy_data

    x, y = toy_data(N_TRAIN, seed=0)
    rec = train_dp(x, y, model_name="gn_cnn", epochs=1, batch_size=BATCH, lr=0.5, momentum=0.9, seed=0,
                   physical_batch_size=32, **DP).record
    assert rec is not None
    return rec


def write_workspace(root: Path, *, n_train: int, names: list[str], train: dict | None = None,
                    dp: dict | None = None) -> None:
    """params.yaml (the real one, `train` and `train.dp` overridden) and the anonymized manifest and labels."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"] |= train or {"epochs": 1, "batch_size": BATCH}
    params["train"]["dp"] |= dp or DP
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    data = root / params["paths"]["anonymized"]
    data.mkdir(parents=True)
    splits = ["train"] * n_train + ["test"] * N_TEST
    pd.DataFrame({"id": [f"img_{i}" for i in range(len(splits))], "split": splits}).to_parquet(
        data / "manifest.parquet")
    (data / "labels.json").write_text(json.dumps({"names": names}))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))

    def make(n_train: int = N_TRAIN, names: tuple[str, ...] = ("dark", "bright")) -> object:
        write_workspace(tmp_path, n_train=n_train, names=list(names))
        return io.load_params()

    return make


def _recompute(params: object, record: dict) -> float | None:
    from flows import report

    return report._recompute(params, record)  # type: ignore[arg-type]


def test_the_real_record_of_a_run_on_the_plan_is_priced(workspace, honest: DpTrainingRecord) -> None:
    eps = _recompute(workspace(), honest.as_dict())
    assert eps == pytest.approx(recompute_epsilon(honest)) and eps == pytest.approx(honest.epsilon)


def test_a_self_consistent_record_with_less_noise_than_the_plan_is_refused(workspace,
                                                                           honest: DpTrainingRecord) -> None:
    sigma = 0.8 * honest.noise_multiplier
    low = replace(honest, noise_multiplier=sigma, history=tuple((sigma, q, s) for _, q, s in honest.history))
    low = replace(low, epsilon=recompute_epsilon(low))
    assert history_mismatches(low) == []  # agrees with itself: the record alone cannot tell
    with pytest.raises(PrivacyBudgetError, match="not the mechanism the params and the data plan") as err:
        _recompute(workspace(), low.as_dict())
    msg = str(err.value)
    assert f"noise_multiplier recorded {sigma:.6g}, below the planned {honest.noise_multiplier:.6g}" in msg
    assert "history step 0: sigma" in msg and "rdp calibration for epsilon=8" in msg


def test_more_noise_than_the_plan_is_priced_as_recorded(workspace, honest: DpTrainingRecord) -> None:
    """σ is checked one-sided: a record with more noise than today's calibration (another Opacus version)
    never understates ε, and is priced from its own history."""
    sigma = 1.1 * honest.noise_multiplier
    high = replace(honest, noise_multiplier=sigma, history=tuple((sigma, q, s) for _, q, s in honest.history))
    high = replace(high, epsilon=recompute_epsilon(high))
    assert _recompute(workspace(), high.as_dict()) == pytest.approx(high.epsilon)


def test_a_record_whose_n_train_is_not_the_manifests_is_refused(workspace, honest: DpTrainingRecord) -> None:
    # 95 train rows: the same q, steps and σ (ceil(95 / 32) = 3 batches), so only n_train tells them apart
    with pytest.raises(PrivacyBudgetError, match=f"n_train recorded {N_TRAIN}, planned 95"):
        _recompute(workspace(n_train=95), honest.as_dict())


def test_a_skipped_record_is_true_only_without_labels(workspace) -> None:
    skipped = {"skipped": "no labels (ingest.label_from: none)"}
    with pytest.raises(PrivacyBudgetError, match="names 2 classes"):
        _recompute(workspace(), skipped)


def test_a_skipped_record_without_labels_is_not_priced(workspace) -> None:
    assert _recompute(workspace(names=()), {"skipped": "no labels (ingest.label_from: none)"}) is None

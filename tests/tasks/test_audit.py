"""Tests of tasks/audit: the loss-threshold membership-inference attack and its metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.audit.mia import ATTACKS, AttackResult, loss_threshold_attack, mia_data, run_attack
from tasks.errors import InvalidInputError


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_identical_distributions_give_auc_near_half(seed: int) -> None:
    rng = np.random.default_rng(seed)
    res = loss_threshold_attack(rng.exponential(size=2000), rng.exponential(size=2000))
    assert res.auc == pytest.approx(0.5, abs=0.05)
    assert res.advantage < 0.08 and res.tpr_at_1pct_fpr < 0.05


def test_perfect_separation() -> None:
    members = np.linspace(0.0, 0.1, 500)  # members: small loss
    nonmembers = np.linspace(1.0, 2.0, 1500)
    res = loss_threshold_attack(members, nonmembers)
    assert res.auc == 1.0 and res.tpr_at_0_1pct_fpr == 1.0 and res.tpr_at_1pct_fpr == 1.0
    assert res.balanced_accuracy == 1.0 and res.advantage == 1.0
    assert (res.n_members, res.n_nonmembers) == (500, 1500)


def test_hand_computed_small_example() -> None:
    # Scores (-loss): members -1, -2, -4; non-members -3, -5.
    # Pairs (member > non-member): (-1>-3, -1>-5, -2>-3, -2>-5, -4>-5) = 5 of 6 -> AUC 5/6.
    # Threshold -2 (score >= -2): TPR 2/3, FPR 0 -> advantage 2/3, balanced accuracy 5/6.
    res = loss_threshold_attack(np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0]))
    assert res.auc == pytest.approx(5 / 6)
    assert res.advantage == pytest.approx(2 / 3) and res.balanced_accuracy == pytest.approx(5 / 6)
    assert res.tpr_at_0_1pct_fpr == pytest.approx(2 / 3) and res.tpr_at_1pct_fpr == pytest.approx(2 / 3)
    assert res.fpr[0] == 0.0 and res.tpr[-1] == 1.0


def test_reversed_scores_give_low_auc() -> None:
    res = loss_threshold_attack(np.full(10, 2.0) + np.arange(10), np.arange(10) * 0.1)
    assert res.auc == 0.0 and res.tpr_at_1pct_fpr == 0.0


def test_as_metrics_keys_and_values() -> None:
    res = loss_threshold_attack(np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0]))
    m = res.as_metrics("audit/dp")
    assert m["audit/dp/loss_threshold/auc"] == pytest.approx(5 / 6)
    assert m["audit/dp/loss_threshold/n_members"] == 3.0
    assert not any(k.endswith(("/fpr", "/tpr")) for k in m)
    assert all(isinstance(v, float) for v in m.values())


def test_registry() -> None:
    assert {"loss_threshold", "shadow", "lira_online", "lira_offline"} <= set(ATTACKS)
    logits = np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])  # losses of label 0: small, log 2, large
    data = mia_data(logits, np.zeros(3, np.int64), np.array([True, False, False]))
    res, scores = run_attack("loss_threshold", data)
    assert isinstance(res, AttackResult) and res.auc == 1.0
    assert scores == pytest.approx(-np.array([np.log1p(np.exp(-2.0)), np.log(2.0), np.log1p(np.exp(1.0))]))


@pytest.mark.parametrize(
    ("members", "nonmembers", "match"),
    [
        (np.array([]), np.ones(3), "member losses"),
        (np.ones(3), np.array([1.0, np.nan]), "non-member losses.*not finite"),
        (np.ones((2, 2)), np.ones(3), "1-D"),
        (np.array([1.0, np.inf]), np.ones(3), "not finite"),
    ],
)
def test_rejects_bad_input(members: np.ndarray, nonmembers: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        loss_threshold_attack(members, nonmembers)


@pytest.mark.slow
def test_overfit_nonprivate_model_leaks_more_than_dp_model() -> None:
    from tasks.train.dp import predict_losses, train_dp, train_nonprivate
    from tasks.train.preprocess import to_tensor
    from tests.tasks._standin import make_standin

    imgs, labels = make_standin(600, seed=11)
    x, y = to_tensor(imgs, input_size=32), torch_labels(labels)
    (xm, ym), (xn, yn) = (x[:300], y[:300]), (x[300:], y[300:])
    kw = dict(model_name="gn_cnn", epochs=30, batch_size=30, momentum=0.9, seed=0)
    plain = train_nonprivate(xm, ym, lr=0.05, **kw).model
    dp = train_dp(
        xm, ym, lr=0.5, target_epsilon=1.0, target_delta=1e-5, max_grad_norm=1.0, accountant="prv", **kw
    )
    leak = {
        name: loss_threshold_attack(predict_losses(m, xm, ym), predict_losses(m, xn, yn))
        for name, m in (("plain", plain), ("dp", dp.model))
    }
    assert leak["plain"].auc > 0.55, leak  # measured 0.599 (2 cores, torch 2.13 CPU)
    assert leak["dp"].auc < leak["plain"].auc - 0.03, leak
    assert abs(leak["dp"].auc - 0.5) < 0.1


def torch_labels(labels: np.ndarray):  # noqa: ANN201
    import torch

    return torch.from_numpy(labels.astype(np.int64))


def test_low_fpr_tpr_is_marked_coarse_where_the_non_members_cannot_support_it() -> None:
    import numpy as np

    from tasks.audit.mia import score_attack

    rng = np.random.default_rng(0)
    small = score_attack(rng.normal(0.2, 1, 1200), rng.normal(0, 1, 400), name="loss").as_metrics("a")
    assert small["a/loss/tpr_at_0_1pct_fpr_supported"] == 0 and small["a/loss/tpr_at_1pct_fpr_supported"] == 0
    large = score_attack(rng.normal(0.2, 1, 2000), rng.normal(0, 1, 2000), name="loss").as_metrics("a")
    assert large["a/loss/tpr_at_1pct_fpr_supported"] == 1 and large["a/loss/tpr_at_0_1pct_fpr_supported"] == 0
    lo, tpr, hi = (large[f"a/loss/tpr_at_1pct_fpr{k}"] for k in ("_ci_low", "", "_ci_high"))
    assert lo <= tpr <= hi and hi - lo < 0.06  # 2,000 members: a tight interval

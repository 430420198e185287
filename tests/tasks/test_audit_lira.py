"""Known-answer tests of the membership attacks with shadow models: LiRA online/offline, Shokri, the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from tasks.audit.lira import lira_offline, lira_online, logit_confidence
from tasks.audit.mia import ATTACKS, cross_entropy, mia_data, per_class_results, run_attack
from tasks.audit.shadow import attack_features, membership_matrix, train_shadows
from tasks.errors import InvalidInputError
from tasks.train.dp import predict_logits


class LookupTable(nn.Module):
    """Memorises its training set: confident on the exact inputs it saw, uniform elsewhere."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int = 10) -> None:
        super().__init__()
        self.keys = x.flatten(1)
        self.targets = y
        self.num_classes = num_classes
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hit = (x.flatten(1)[:, None] == self.keys[None]).all(-1)  # (B, M) exact match
        logits = torch.zeros(len(x), self.num_classes)
        for i in range(len(x)):
            j = torch.nonzero(hit[i])
            if len(j):
                logits[i, self.targets[j[0, 0]]] = 8.0
        return logits


def _pool(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, 4, 4), generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    member = np.zeros(n, bool)
    member[: n // 2] = True
    return x, y, member


def test_memorising_lookup_table_is_caught_by_every_attack() -> None:
    x, y, member = _pool()
    target = LookupTable(x[torch.from_numpy(member)], y[torch.from_numpy(member)])
    keep = membership_matrix(len(x), 8, seed=1)
    shadows = train_shadows(x, y, keep, trainer=lambda xs, ys, seed: LookupTable(xs, ys), seed=0)
    data = mia_data(predict_logits(target, x).numpy(), y.numpy(), member, shadow_logits=shadows, shadow_in=keep)
    for name in ATTACKS:
        res, _ = run_attack(name, data)
        assert res.auc > 0.99, (name, res)
        assert res.tpr_at_0_1pct_fpr > 0.99, (name, res)


def test_identical_outputs_give_auc_half_for_every_attack() -> None:
    x, y, member = _pool()
    logits = np.tile(np.linspace(-1, 1, 10), (len(x), 1))
    labels = np.zeros(len(x), np.int64)
    keep = membership_matrix(len(x), 4, seed=0)
    data = mia_data(logits, labels, member, shadow_logits=np.stack([logits] * 4), shadow_in=keep)
    for name in ATTACKS:
        res, scores = run_attack(name, data)
        assert res.auc == pytest.approx(0.5), name
        assert res.advantage == pytest.approx(0.0, abs=1e-12), name


def test_lira_on_gaussian_confidences_matches_the_analytic_auc() -> None:
    # IN confidences ~ N(1, 1), OUT ~ N(0, 1): the optimal test's AUC is Phi(1 / sqrt 2) = 0.7602.
    rng = np.random.default_rng(0)
    k, n = 16, 4000
    keep = membership_matrix(n, k, seed=1)
    shadow = rng.normal(size=(k, n)) + keep
    member = rng.random(n) < 0.5
    target = rng.normal(size=n) + member
    want = float(norm.cdf(1 / np.sqrt(2)))
    for fn in (lira_online, lira_offline):
        s = fn(target, shadow, keep, fixed_variance=True)
        from tasks.audit.mia import score_attack

        assert score_attack(s[member], s[~member], name="x").auc == pytest.approx(want, abs=0.02)
    per_sample = lira_online(target, shadow, keep, fixed_variance=False)
    assert np.all(np.isfinite(per_sample))


def test_lira_per_sample_offset_is_removed() -> None:
    # Each sample has its own difficulty (offset); the loss attack cannot see through it, LiRA can.
    rng = np.random.default_rng(3)
    k, n = 16, 3000
    offset = rng.normal(scale=5.0, size=n)
    keep = membership_matrix(n, k, seed=2)
    shadow = offset + keep + 0.3 * rng.normal(size=(k, n))
    member = rng.random(n) < 0.5
    target = offset + member + 0.3 * rng.normal(size=n)
    from tasks.audit.mia import score_attack

    lira = lira_online(target, shadow, keep)
    assert score_attack(lira[member], lira[~member], name="l").auc > 0.95
    assert score_attack(target[member], target[~member], name="raw").auc < 0.6


def test_membership_matrix_is_balanced_and_seeded() -> None:
    keep = membership_matrix(50, 8, seed=3)
    assert keep.shape == (8, 50) and np.all(keep.sum(0) == 4)
    assert np.array_equal(keep, membership_matrix(50, 8, seed=3))
    assert not np.array_equal(keep, membership_matrix(50, 8, seed=4))
    with pytest.raises(InvalidInputError, match="k >= 2"):
        membership_matrix(50, 1, seed=0)


def test_logit_confidence_and_cross_entropy_known_values() -> None:
    logits = np.array([[np.log(3.0), 0.0], [0.0, 0.0]])  # p_y = 3/4 and 1/2
    labels = np.array([0, 1])
    assert logit_confidence(logits, labels) == pytest.approx([np.log(3.0), 0.0])
    assert cross_entropy(logits, labels) == pytest.approx([-np.log(0.75), np.log(2.0)])
    assert logit_confidence(np.stack([logits, logits]), labels).shape == (2, 2)
    assert attack_features(logits, labels).shape == (
        2,
        1 + 2 + 1 + 2,
    )  # log p_y, top-min(3, C), entropy, one-hot


def test_shadow_attacks_need_shadows_and_inputs_are_validated() -> None:
    data = mia_data(np.zeros((4, 3)), np.zeros(4, np.int64), np.array([1, 1, 0, 0], bool))
    with pytest.raises(InvalidInputError, match="lira_online.*shadow models"):
        run_attack("lira_online", data)
    with pytest.raises(InvalidInputError, match="not one of"):
        run_attack("nope", data)
    with pytest.raises(InvalidInputError, match="both members and non-members"):
        mia_data(np.zeros((4, 3)), np.zeros(4, np.int64), np.ones(4, bool))
    with pytest.raises(InvalidInputError, match="do not match"):
        mia_data(
            np.zeros((4, 3)),
            np.zeros(4, np.int64),
            np.array([1, 1, 0, 0], bool),
            shadow_logits=np.zeros((2, 5, 3)),
            shadow_in=np.zeros((2, 5), bool),
        )


def test_per_class_slices() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    member = np.array([1, 0, 1, 0, 1, 1], bool)
    data = mia_data(np.zeros((6, 2)), labels, member)
    scores = np.array([5.0, 0.0, 0.0, 5.0, 6.0, 1.0])  # class 0: perfect; class 1: reversed
    out = per_class_results("x", scores, data)
    assert out[0].auc == 1.0 and out[1].auc == 0.0
    assert "audit/dp/x/class_0/auc" in out[0].as_metrics("audit/dp")

"""The audit's membership experiments on small fixed inputs: pool, subsampling, shadow trainers, every attack,
the pre-registered ε bounds, the canary run and the DP model's ε summary."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tasks.audit import experiments
from tasks.audit.epsilon import EpsilonBound
from tasks.audit.experiments import (
    Pool,
    canary_experiment,
    dp_epsilon_summary,
    epsilon_bounds,
    joint_alpha,
    membership_audit,
    preregistered,
    shadow_trainers,
    subsample,
)
from tasks.params import AuditParams, CanaryParams, ShadowParams
from tasks.train.dp import DpTrainingRecord
from tasks.train.models import ModelSpec

RECORD = DpTrainingRecord(noise_multiplier=1.1, sample_rate=0.1, steps=30, epochs=3, accountant="rdp",
                          target_epsilon=3.0, target_delta=1e-3, epsilon=2.9, max_grad_norm=0.7, n_train=20,
                          batch_size=8, poisson_sampling=True, history=((1.1, 0.1, 30),),
                          grad_sample_mode="functorch")  # fmt: skip
SPEC = ModelSpec(model="digit_linear", features="placard", input_size=4, in_shape=(1, 4, 4), num_classes=3,
                 class_names=("a", "b", "c"), input_range=(0.0, 1.0), seed=0)  # fmt: skip
ATTACKS = ("loss_threshold", "shadow", "lira_online", "lira_offline")
SCORES = {"loss_threshold": np.array([3.0, 2.0, 0.0, 1.0]), "lira_online": np.array([1.0, 3.0, 2.0, 0.0]),
          "shadow": np.array([2.0, 1.0, 3.0, 0.0])}  # fmt: skip
IS_MEMBER = np.array([True, True, False, False])


class Memoriser(nn.Module):
    """Confident (logit 8 on the label) on the exact inputs it was given, uniform elsewhere."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int = 3) -> None:
        super().__init__()
        self.keys, self.targets, self.num_classes = x.flatten(1), y, num_classes
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hit = (x.flatten(1)[:, None] == self.keys[None]).all(-1)  # (B, M)
        logits = torch.zeros(len(x), self.num_classes)
        for i in range(len(x)):
            j = torch.nonzero(hit[i])
            if len(j):
                logits[i, self.targets[j[0, 0]]] = 8.0
        return logits


def _pool(n: int = 40, seed: int = 0, side: int = 4) -> Pool:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand((n, 1, side, side), generator=g), torch.arange(n) % 3
    return Pool.from_splits((x[: n // 2], y[: n // 2]), (x[n // 2 :], y[n // 2 :]))


def test_pool_keeps_members_first() -> None:
    pool = _pool(10)
    assert pool.x.shape == (10, 1, 4, 4) and pool.y.dtype == torch.int64 and pool.input_shape == (1, 4, 4)
    assert pool.is_member.tolist() == [True] * 5 + [False] * 5
    (xm, ym), (xh, yh) = pool.members(), pool.nonmembers()
    assert torch.equal(xm, pool.x[:5]) and torch.equal(xh, pool.x[5:])
    assert ym.tolist() == [0, 1, 2, 0, 1] and yh.tolist() == [2, 0, 1, 2, 0]


def test_subsample_is_sorted_distinct_and_seeded() -> None:
    idx = subsample(100, 30, seed=3)
    assert idx.shape == (30,) and np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 100
    np.testing.assert_array_equal(idx, np.sort(np.random.default_rng(3).permutation(100)[:30]))
    assert not np.array_equal(idx, subsample(100, 30, seed=4))
    np.testing.assert_array_equal(subsample(5, 30, seed=0), np.arange(5))  # fewer rows than asked: all of them


def test_shadow_trainers_train_like_the_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Run:
        model = nn.Linear(1, 1)

    monkeypatch.setattr(experiments, "train_dp", lambda x, y, **kw: calls.append(("dp", kw)) or Run())
    monkeypatch.setattr(experiments, "train_nonprivate", lambda x, y, **kw: calls.append(("np", kw)) or Run())
    trainers = shadow_trainers(RECORD, spec=SPEC, lr=0.5, nonprivate_lr=2.0, momentum=0.8, physical_batch_size=64,
                               device="cpu")  # fmt: skip
    assert list(trainers) == ["dp", "nonprivate"]
    x, y = torch.zeros(5, 1, 4, 4), torch.zeros(5, dtype=torch.int64)
    assert trainers["dp"](x, y, 11) is Run.model and trainers["nonprivate"](x, y, 12) is Run.model
    (kind_dp, dp), (kind_np, plain) = calls
    assert (kind_dp, kind_np) == ("dp", "np")
    # batch_size: the record's 8, capped at the 5 samples
    common = {"model_name": "digit_linear", "num_classes": 3, "epochs": 3, "batch_size": 5, "momentum": 0.8,
              "device": "cpu"}  # fmt: skip
    assert dp == common | {"seed": 11, "lr": 0.5, "target_epsilon": 3.0, "target_delta": 1e-3, "max_grad_norm": 0.7,
                           "accountant": "rdp", "physical_batch_size": 64, "grad_sample_mode": "functorch",
                           "noise_multiplier": None}
    assert plain == common | {"seed": 12, "lr": 2.0}


def test_per_person_shadows_run_at_the_targets_per_person_sigma(monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-unit run's σ was calibrated for the per-person ε (larger than Opacus' per-image search would pick):
    its DP shadows run at that σ, or they would be trained less privately than the target."""
    import dataclasses

    seen: list[dict[str, Any]] = []

    class Run:
        model = nn.Linear(1, 1)

    monkeypatch.setattr(experiments, "train_dp", lambda x, y, **kw: seen.append(kw) or Run())
    per_person = dataclasses.replace(RECORD, noise_multiplier=4.2, privacy_unit={"unit": "person", "cap": 3})
    trainers = shadow_trainers(per_person, spec=SPEC, lr=0.5, nonprivate_lr=2.0, momentum=0.8, physical_batch_size=64,
                               device="cpu")  # fmt: skip
    trainers["dp"](torch.zeros(5, 1, 4, 4), torch.zeros(5, dtype=torch.int64), 1)
    assert seen[0]["noise_multiplier"] == 4.2


def test_person_membership_audit_attacks_persons_on_person_disjoint_shadows() -> None:
    """A trainer that memorises its training images: persons IN a shadow are found, the keys say person."""

    class Memory(nn.Module):
        def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("x", x.flatten(1))
            self.register_buffer("y", y)

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            hit = (torch.cdist(q.flatten(1), self.x) < 1e-6).any(1)
            noise = torch.sin(q.flatten(1).sum(1) * 1000)  # deterministic, per image
            return torch.stack([noise, 0.5 * hit.float() + noise * 0.3, torch.zeros(len(q))], 1)

    trained: list[int] = []

    def trainer(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        trained.append(len(x))
        return Memory(x, y)

    rng = np.random.default_rng(0)
    n = 120
    x = torch.from_numpy(rng.uniform(size=(n, 1, 4, 4)).astype(np.float32))
    y = torch.ones(n, dtype=torch.int64)
    pool = Pool.from_splits((x[:80], y[:80]), (x[80:], y[80:]), ids=tuple(f"i{i}" for i in range(n)))
    units = experiments.pool_units(pool.ids, {f"i{i}": (f"p{i % 30}",) for i in range(n) if i % 10})
    out = experiments.person_membership_audit("dp", trainer, pool, units, attacks=ATTACKS,
                                              shadow=ShadowParams(k=6, fixed_variance=True), seed=0, device="cpu",
                                              n_boot=100)
    assert len(trained) == 6 and out["audit/dp/person/n_persons"] == 27  # p0, p10, p20: no image known
    assert out["audit/dp/person/lira_online/auc"] > 0.9 and out["audit/dp/person/lira_offline/auc"] > 0.9
    assert out["audit/dp/person/lira_online/n_models"] == 6
    assert out["audit/dp/person/lira_online/auc_ci_low"] <= out["audit/dp/person/lira_online/auc"]
    assert not any(k.startswith("audit/dp/lira") for k in out)  # the image-level keys stay the image-level attack's
    assert experiments.person_membership_audit("dp", trainer, pool, units, attacks=("loss_threshold",),
                                               shadow=ShadowParams(k=6), seed=0, device="cpu") == {}
    with pytest.raises(ValueError, match="ids"):
        Pool.from_splits((x[:80], y[:80]), (x[80:], y[80:]), ids=("i0",))


def test_preregistered_tests_and_their_joint_level() -> None:
    full = AuditParams()
    assert preregistered(full) == ("lira_online", "canary") and joint_alpha(full) == pytest.approx(0.025)
    offline = AuditParams.model_validate({"attacks": ["loss_threshold", "lira_offline"],
                                          "epsilon": {"alpha": 0.1, "canary": {"enabled": False}}})
    assert preregistered(offline) == ("lira_offline",) and joint_alpha(offline) == pytest.approx(0.1)
    loss_only = AuditParams.model_validate({"attacks": ["loss_threshold"]})
    assert preregistered(loss_only) == ("loss_threshold", "canary")


def test_epsilon_bounds_report_the_preregistered_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"loss_threshold": 2.5, "lira_online": 0.75, "shadow": 1.0}
    seen: dict[str, float] = {}

    def fake(members: np.ndarray, nonmembers: np.ndarray, *, delta: float, alpha: float, seed: int) -> EpsilonBound:
        name = next(k for k, v in SCORES.items() if np.array_equal(v[IS_MEMBER], members))
        seen[name] = alpha
        assert delta == 1e-3 and seed == 7 and len(nonmembers) == 2
        return EpsilonBound(value[name], 0.0, alpha, len(members), len(nonmembers))

    monkeypatch.setattr(experiments, "empirical_epsilon", fake)
    out = epsilon_bounds("dp", SCORES, IS_MEMBER, delta=1e-3, audit=AuditParams(), seed=7)
    assert seen == {"loss_threshold": 0.05, "lira_online": 0.025, "shadow": 0.05}  # Bonferroni for the joint test
    assert out["audit/dp/loss_threshold/empirical_epsilon_lower_bound"] == 2.5
    assert out["audit/dp/empirical_epsilon_lower_bound"] == 0.75  # only lira_online is pre-registered
    assert out["audit/dp/exploratory_epsilon_lower_bound"] == 2.5
    assert len(out) == 5


def test_epsilon_bounds_without_a_preregistered_attack_report_zero() -> None:
    out = epsilon_bounds("nonprivate", {"loss_threshold": np.array([4.0, 3.0, 2.0, 1.0, 0.0, -1.0])},
                         np.array([True] * 3 + [False] * 3), delta=1e-5,
                         audit=AuditParams.model_validate({"attacks": ["lira_online", "loss_threshold"]}), seed=0)
    assert out["audit/nonprivate/empirical_epsilon_lower_bound"] == 0.0
    assert out["audit/nonprivate/exploratory_epsilon_lower_bound"] == \
        out["audit/nonprivate/loss_threshold/empirical_epsilon_lower_bound"]  # fmt: skip


def test_membership_audit_catches_a_memorising_target() -> None:
    pool = _pool()
    target = Memoriser(*pool.members())
    out = membership_audit("dp", target, lambda x, y, seed: Memoriser(x, y), pool, attacks=ATTACKS,
                           shadow=ShadowParams(k=4), seed=0, device="cpu")  # fmt: skip
    assert tuple(out.scores) == ATTACKS
    assert all(s.shape == (40,) and s.dtype == np.float64 for s in out.scores.values())
    assert list(out.results) == ["dp/loss_threshold", "dp/shadow", "dp/lira_online", "dp/lira_offline"]
    assert out.metrics["audit/dp/shadow_models"] == 4.0 and out.metrics["audit/dp/target_n_train"] == 20.0
    assert out.metrics["audit/dp/shadow_n_train_min"] == out.metrics["audit/dp/shadow_n_train_max"] == 20.0
    for name in ("loss_threshold", "lira_online"):
        assert out.metrics[f"audit/dp/{name}/auc"] == 1.0
        assert all(out.metrics[f"audit/dp/{name}/class_{c}/auc"] == 1.0 for c in range(3))
    assert len(out.class_rows) == 4 * 3
    assert {(r["attack"], r["class"]) for r in out.class_rows} == {(a, c) for a in out.scores for c in range(3)}
    assert all(r["model"] == "dp" for r in out.class_rows)


def test_membership_audit_without_shadows_trains_none() -> None:
    def refuse(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        raise AssertionError("no shadow should be trained")

    pool = _pool()
    out = membership_audit("nonprivate", Memoriser(*pool.members()), refuse, pool, attacks=("loss_threshold",),
                           shadow=ShadowParams(k=8), seed=0, device="cpu")  # fmt: skip
    assert list(out.scores) == ["loss_threshold"] and "audit/nonprivate/target_n_train" not in out.metrics
    assert out.metrics["audit/nonprivate/shadow_models"] == 8.0
    assert out.metrics["audit/nonprivate/loss_threshold/auc"] == 1.0


def test_canary_experiment_trains_on_members_plus_included_canaries() -> None:
    pool = _pool(side=8)  # 8 x 8: no two canaries alike (at 4 x 4 a few smooth to the same blank card)
    seen: dict[str, Any] = {}

    def trainer(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        seen.update(n=len(x), seed=seed, members=torch.equal(x[:20], pool.members()[0]))
        return Memoriser(x, y)

    out = canary_experiment(trainer, pool, record=RECORD, canary=CanaryParams(n=40, guesses=20), spec=SPEC,
                            beta=0.025, seed=1, device="cpu")  # fmt: skip
    assert seen["seed"] == 79 and seen["members"] and 20 < seen["n"] < 60
    assert out["audit/dp/canary/n_canaries"] == 40.0 and out["audit/dp/canary/n_guesses"] == 20.0
    assert out["audit/dp/canary/n_correct"] == 20.0  # a memoriser gives every canary away
    assert out["audit/dp/canary/beta"] == 0.025
    assert out["audit/dp/canary/epsilon_lower_bound"] > 0
    assert out["audit/dp/canary/ceiling_ratio"] == pytest.approx(out["audit/dp/canary/ceiling"] / 3.0)


def test_canary_experiment_maps_canaries_into_the_input_range() -> None:
    pool = _pool(side=8)
    seen: list[torch.Tensor] = []

    def trainer(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
        seen.append(x[20:])
        return Memoriser(x, y)

    spec = ModelSpec(**{**SPEC.__dict__, "input_range": (-1.0, 1.0)})
    canary_experiment(trainer, pool, record=RECORD, canary=CanaryParams(n=40, guesses=20), spec=spec, beta=0.05,
                      seed=1, device="cpu")  # fmt: skip
    assert float(seen[0].min()) < 0 and float(seen[0].min()) >= -1 and float(seen[0].max()) <= 1


def test_dp_epsilon_summary_takes_the_larger_bound() -> None:
    metrics = {"audit/dp/empirical_epsilon_lower_bound": 0.5, "audit/dp/canary/epsilon_lower_bound": 1.25}
    out = dp_epsilon_summary(metrics, epsilon=3.0, audit=AuditParams())
    assert out == pytest.approx({"audit/dp/empirical_epsilon_lower_bound": 1.25,
                                 "audit/dp/empirical_epsilon_margin": 1.75,
                                 "audit/dp/empirical_epsilon_confidence": 0.95,
                                 "audit/dp/empirical_epsilon_tests": 2.0})  # fmt: skip
    no_canary = AuditParams.model_validate({"epsilon": {"alpha": 0.1, "canary": {"enabled": False}}})
    out = dp_epsilon_summary({"audit/dp/empirical_epsilon_lower_bound": 0.5}, epsilon=3.0, audit=no_canary)
    assert out["audit/dp/empirical_epsilon_lower_bound"] == 0.5 and out["audit/dp/empirical_epsilon_margin"] == 2.5
    assert out["audit/dp/empirical_epsilon_confidence"] == pytest.approx(0.9)
    assert out["audit/dp/empirical_epsilon_tests"] == 1.0


def test_canary_persons_are_inserted_whole_and_scored_per_person() -> None:
    from tasks.audit.canary import make_canary_persons, person_canary_scores
    from tasks.report.definitions import undefined

    x, y, owner, inc = make_canary_persons(6, 3, shape=(1, 4, 4), num_classes=3, seed=0)
    assert x.shape == (18, 1, 4, 4) and list(owner) == [p for p in range(6) for _ in range(3)]
    assert all(len(set(y[owner == p].tolist())) == 1 for p in range(6))  # one identity, one label
    assert not torch.equal(x[0], x[1]) and float((x[0] - x[1]).abs().mean()) < float((x[0] - x[3]).abs().mean())
    assert person_canary_scores(np.arange(18.0), owner).tolist() == [3.0, 12.0, 21.0, 30.0, 39.0, 48.0]
    seen: list[int] = []

    def memorise(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> nn.Module:
        seen.append(len(xs))

        class Memory(nn.Module):  # confident in the trained label of the images it trained on
            def forward(self, q: torch.Tensor) -> torch.Tensor:
                d = torch.cdist(q.flatten(1), xs.flatten(1))
                hit = (d.min(1).values < 1e-6).float()[:, None]
                return 4.0 * hit * nn.functional.one_hot(ys[d.argmin(1)], 3)

        return Memory()

    pool = Pool.from_splits((torch.zeros(4, 1, 4, 4), torch.zeros(4, dtype=torch.int64)),
                            (torch.ones(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64)))
    spec = SPEC.__class__(**{**SPEC.__dict__, "num_classes": 3})
    out = experiments.canary_person_experiment(memorise, pool, k=3, unit_epsilon=3.0, record=RECORD,
                                               canary=CanaryParams(n=300, guesses=150), spec=spec, beta=0.05, seed=0,
                                               device="cpu")
    assert out["audit/dp/person/canary/n_canaries"] == 100 and out["audit/dp/person/canary/n_guesses"] == 50
    assert out["audit/dp/person/canary/images_per_person"] == 3
    assert (seen[0] - 4) % 3 == 0 and seen[0] > 4  # the members, then whole canary persons
    assert out["audit/dp/person/canary/n_correct"] >= 0.9 * out["audit/dp/person/canary/n_guesses"]  # memorised
    assert out["audit/dp/person/canary/epsilon_lower_bound"] > 0
    assert out["audit/dp/person/canary/ceiling_ratio"] == out["audit/dp/person/canary/ceiling"] / 3.0
    assert undefined(out) == []

"""The audit has teeth: a DP-SGD run whose noise is 10x smaller than its recorded mechanism claims is caught
by the canary audit, fails the empirical-epsilon gate, and promote refuses the model; an honest run is not."""

from __future__ import annotations

import numpy as np
import pytest

from flows.promote import failed_gates
from tasks.audit.canary import audit_ceiling, canary_audit, make_canaries
from tasks.audit.epsilon import EmpiricalPrivacyViolationError, check_empirical_epsilon
from tasks.audit.lira import logit_confidence
from tasks.params import Gates
from tasks.report.compliance import build_compliance
from tests.tasks.test_report import RECORD, report_metrics

# The auditor's best case (Steinke et al.: canaries only, a model that can memorise them): 600 canaries with
# random labels out of 100 classes (few OUT canaries hit their label by chance), logistic regression on every
# pixel; 150 IN and 150 OUT guesses (ceiling 4.37 at 97.5 % confidence, δ 1e-5). Measured: noise / 10 →
# 298 / 300 right, bound 3.70 > ε 3; honest noise → 184 / 300, bound 0.22.
M, K, CLASSES = 600, 150, 100
KW = dict(model_name="tests.user_models:pixels", epochs=60, batch_size=50, lr=1.0, momentum=0.9, target_epsilon=3.0,
          target_delta=1e-5, max_grad_norm=1.0, accountant="prv", seed=0, physical_batch_size=500)


def _audit(monkeypatch: pytest.MonkeyPatch | None, noise_scale: float) -> tuple[float, float, float]:
    """Train on the canaries that won the coin flip; return (recorded ε, canary ε lower bound, ceiling)."""
    import opacus.optimizers.optimizer as dp_optimizer

    from tasks.train.dp import predict_logits, train_dp

    if monkeypatch is not None:  # the bug: noise drawn at a fraction of the std the accountant was told
        real = dp_optimizer._generate_noise
        monkeypatch.setattr(dp_optimizer, "_generate_noise",
                            lambda std, reference, generator=None, secure_mode=False:
                            real(std * noise_scale, reference, generator, secure_mode))
    x, y, inc = make_canaries(M, shape=(1, 28, 28), num_classes=CLASSES, seed=1)
    sel = np.flatnonzero(inc)
    run = train_dp(x[sel], y[sel], num_classes=CLASSES, **KW)
    scores = logit_confidence(predict_logits(run.model, x).numpy(), y.numpy())
    audit = canary_audit(scores, inc, k_pos=K, k_neg=K, beta=0.025, delta=1e-5)
    return run.record.epsilon, audit.epsilon_lower_bound, audit.ceiling


def test_ten_times_less_noise_than_recorded_fails_the_gate_and_promote(monkeypatch: pytest.MonkeyPatch) -> None:
    claimed, bound, ceiling = _audit(monkeypatch, 0.1)
    assert claimed <= 3.01 and ceiling > claimed  # the record still claims epsilon 3; the audit can reach past it
    assert bound > claimed, (bound, ceiling)
    with pytest.raises(EmpiricalPrivacyViolationError, match="DP-SGD implementation or its accounting is broken"):
        check_empirical_epsilon(bound, claimed, source="canaries")
    metrics = report_metrics(**{"audit/dp/empirical_epsilon_lower_bound": bound,
                          "audit/dp/empirical_epsilon_margin": claimed - bound})
    c = build_compliance(metrics=metrics, dp_record=RECORD, epsilon_recomputed=2.985, gates=Gates(),
                         lineage={"git_sha": "abc", "mlflow_runs": {}, "dvc_lock_sha256": None, "model_uri": None})
    gate = next(g for g in c["gates"] if g["name"] == "min_empirical_epsilon_margin")
    assert gate["status"] == "failed" and c["verdict"] == "fail"
    assert any(f.startswith("min_empirical_epsilon_margin") for f in failed_gates(c))


def test_an_honest_run_is_not_flagged() -> None:
    """The control, in the default suite beside the broken run: the same audit on honest noise stays below the
    claim, so the broken run's failure is the audit's finding, not its noise."""
    claimed, bound, _ = _audit(None, 1.0)
    assert bound <= claimed
    check_empirical_epsilon(bound, claimed, source="canaries")
    metrics = report_metrics(**{"audit/dp/empirical_epsilon_lower_bound": bound,
                          "audit/dp/empirical_epsilon_margin": claimed - bound})
    c = build_compliance(metrics=metrics, dp_record=RECORD, epsilon_recomputed=2.985, gates=Gates(),
                         lineage={"git_sha": "abc", "mlflow_runs": {}, "dvc_lock_sha256": None, "model_uri": None})
    gate = next(g for g in c["gates"] if g["name"] == "min_empirical_epsilon_margin")
    assert gate["status"] == "passed", gate


def test_the_default_canary_design_can_certify_twice_the_target() -> None:
    assert audit_ceiling(5000, 2500, beta=0.025, delta=1e-5) / 3.0 >= 2.0
    assert audit_ceiling(256, 64, beta=0.05, delta=0.0) < 3.1  # the old design could never catch epsilon 3

"""The audit's inversion experiments on small fixed inputs: the defence grid, batches of distinct classes,
model names, MI-Face on each target and the gradient-inversion grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tasks.audit.experiments import Pool
from tasks.audit.gradient_inversion import Defence, pixel_linear
from tasks.audit.inversion_experiments import (
    defence_grid,
    distinct_batch,
    figure_method,
    gi_label,
    gradient_inversion_experiment,
    model_inversion_experiment,
)
from tasks.params import GradientInversionParams, ModelInversionParams
from tasks.train.dp import DpTrainingRecord
from tasks.train.models import ModelSpec

RECORD = DpTrainingRecord(noise_multiplier=1.5, sample_rate=0.1, steps=30, epochs=3, accountant="rdp",
                          target_epsilon=3.0, target_delta=1e-3, epsilon=2.9, max_grad_norm=0.5, n_train=20,
                          batch_size=8, poisson_sampling=True, history=((1.5, 0.1, 30),))  # fmt: skip
SPEC = ModelSpec(model="digit_linear", features="placard", input_size=8, in_shape=(1, 8, 8), num_classes=3,
                 class_names=("a", "b", "c"), input_range=(0.0, 1.0), seed=0)  # fmt: skip


def _pool(n: int = 24) -> Pool:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros((n, 1, 8, 8))
    x[:, :, 2:6, 1:7] = torch.rand((n, 1, 4, 6), generator=g)  # a blob on a blank card
    y = torch.tensor([2, 2, 0] + [i % 3 for i in range(n - 3)])
    return Pool.from_splits((x[: n // 2], y[: n // 2]), (x[n // 2 :], y[n // 2 :]))


def test_defence_grid_labels_and_levels() -> None:
    grid = defence_grid(GradientInversionParams(dp_sigmas=(0.1, 2.0), prune=(0.9,), quantize=("int8",)), RECORD)
    assert list(grid) == ["none", "dp_train_sigma", "dp_sigma_0.1", "dp_sigma_2", "prune_90", "int8"]
    assert grid["dp_train_sigma"] == Defence("dp", 1.5, 0.5)  # σ and clipping norm of the DP target
    assert grid["dp_sigma_2"] == Defence("dp", 2.0, 0.5) and grid["prune_90"] == Defence("prune", 0.9)
    assert grid["none"].kind == "none" and grid["int8"] == Defence("int8")


def test_distinct_batch_takes_the_first_sample_of_each_class() -> None:
    y = torch.tensor([2, 2, 0, 1, 0, 3])
    assert distinct_batch(y, 2).tolist() == [0, 2]
    assert distinct_batch(y, 10).tolist() == [0, 2, 3, 5]
    assert distinct_batch(torch.tensor([1, 1, 1]), 4).tolist() == [0]


def test_figure_method_and_model_labels() -> None:
    assert figure_method(("dlg", "idlg", "inverting_gradients")) == "inverting_gradients"
    assert figure_method(("idlg", "dlg")) == "dlg"
    user = ModelSpec(**{**SPEC.__dict__, "model": "pkg.models:factory"})
    assert gi_label("target", SPEC) == "digit_linear" and gi_label("target", user) == "target"
    assert gi_label("pixel_linear", SPEC) == gi_label("pixel_linear", user) == "pixel_linear"


def test_model_inversion_experiment_metrics_and_figure_rows() -> None:
    pool = _pool()
    models = {"dp": pixel_linear(num_classes=3, seed=0, input_size=8),
              "nonprivate": pixel_linear(num_classes=3, seed=1, input_size=8)}  # fmt: skip
    metrics, rows = model_inversion_experiment(models, pool, spec=SPEC, settings=ModelInversionParams(steps=3),
                                               device="cpu")  # fmt: skip
    fields = ("ssim_max", "ssim_mean", "ssim_max_other", "confidence")
    assert set(metrics) == {f"audit/{w}/model_inversion/{f}" for w in models for f in fields}
    assert all(np.isfinite(v) for v in metrics.values())
    assert list(rows) == ["MI-Face dp", "train mean"]  # never the baseline's pictures
    assert rows["MI-Face dp"].shape == rows["train mean"].shape == (3, 1, 8, 8)
    xm, ym = pool.members()
    np.testing.assert_allclose(rows["train mean"][1], xm[ym == 1].mean(0).numpy(), rtol=1e-6)


def test_model_inversion_experiment_shows_a_missing_class_as_blank() -> None:
    pool = _pool()
    spec = ModelSpec(**{**SPEC.__dict__, "num_classes": 4, "class_names": ("a", "b", "c", "d")})
    _, rows = model_inversion_experiment({"nonprivate": pixel_linear(num_classes=4, seed=0, input_size=8)}, pool,
                                         spec=spec, settings=ModelInversionParams(steps=1), device="cpu")  # fmt: skip
    assert list(rows) == ["train mean"] and rows["train mean"].shape == (4, 1, 8, 8)
    assert not rows["train mean"][3].any()


def test_gradient_inversion_experiment_grid() -> None:
    settings = GradientInversionParams(models=("pixel_linear", "target"), sweep_models=("pixel_linear",),
                                       methods=("idlg",), batch_sizes=(1, 2), steps=2, dp_sigmas=(0.1,), prune=(0.7,),
                                       quantize=("fp16",), defence_epochs=1)  # fmt: skip
    done: list[dict[str, Any]] = []
    out = gradient_inversion_experiment(RECORD, _pool(), spec=SPEC, settings=settings, lr=0.1, momentum=0.0, seed=0,
                                        on_defence=done.append)  # fmt: skip
    swept = ["none", "dp_train_sigma", "dp_sigma_0.1", "prune_70", "fp16"]
    expected = [("pixel_linear", d) for d in swept] + [("digit_linear", d) for d in ("none", "dp_train_sigma")]
    assert [(r["model"], r["defence"]) for r in out.defences] == expected
    assert done == out.defences  # reported as each defence finishes
    assert len(out.attacks) == len(expected) * 2  # two batch sizes, one method
    assert [r["batch_size"] for r in out.attacks[:2]] == [1, 2] and {r["method"] for r in out.attacks} == {"idlg"}
    for d in out.defences:
        mine = [a for a in out.attacks if (a["model"], a["defence"]) == (d["model"], d["defence"])]
        assert d["psnr_max"] == max(a["psnr"] for a in mine) and d["ssim_max"] == max(a["ssim"] for a in mine)
        assert 0.0 <= d["accuracy"] <= 1.0
    assert out.defences[1]["level"] == 1.5 and out.defences[3]["level"] == 0.7
    assert list(out.figure_rows) == ["anonymized truth"] + [f"{m} {d}" for m, d in expected]
    assert all(v.shape == (2, 1, 8, 8) for v in out.figure_rows.values())
    m = out.as_metrics()
    assert m["audit/dp/gradient_inversion/psnr"] == max(r["psnr_max"] for r in out.defences
                                                       if r["defence"] == "dp_train_sigma")  # fmt: skip
    assert m["audit/gradient_inversion/pixel_linear/fp16/accuracy"] == out.defences[4]["accuracy"]


def test_gradient_inversion_experiment_recovers_an_undefended_image() -> None:
    settings = GradientInversionParams(models=("pixel_linear",), sweep_models=(), methods=("idlg",), batch_sizes=(1,),
                                       steps=20, defence_epochs=1)  # fmt: skip
    out = gradient_inversion_experiment(RECORD, _pool(), spec=SPEC, settings=settings, lr=0.1, momentum=0.0, seed=0)
    psnr = {r["defence"]: r["psnr_max"] for r in out.defences}
    assert list(psnr) == ["none", "dp_train_sigma"]
    assert psnr["none"] > 40 and psnr["none"] > psnr["dp_train_sigma"] + 10
    np.testing.assert_allclose(out.figure_rows["pixel_linear none"], out.figure_rows["anonymized truth"], atol=0.05)


@pytest.mark.parametrize("b", [1, 3])
def test_gradient_inversion_figure_batch_is_the_largest(b: int) -> None:
    settings = GradientInversionParams(models=("pixel_linear",), sweep_models=(), methods=("idlg",),
                                       batch_sizes=(1, b), steps=1, defence_epochs=1)  # fmt: skip
    out = gradient_inversion_experiment(RECORD, _pool(), spec=SPEC, settings=settings, lr=0.1, momentum=0.0, seed=0)
    assert out.figure_rows["anonymized truth"].shape[0] == b

"""The audit's table rows, the metrics read off the gradient-inversion table, the image priors and figure helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.audit.mia import loss_threshold_attack
from tasks.audit.plots import gradient_inversion_figure, model_inversion_figure, unit_range
from tasks.audit.priors import total_variation
from tasks.audit.tables import GI_TARGET_DEFENCES, attack_row, defence_row, gi_metrics, per_class_row

TABLE = [
    defence_row("pixel_linear", "none", 0.0, psnr_max=30.0, ssim_max=0.9, accuracy=0.8),
    defence_row("pixel_linear", "dp_train_sigma", 1.2, psnr_max=12.0, ssim_max=0.2, accuracy=0.6),
    defence_row("pixel_linear", "prune_95", 0.95, psnr_max=20.0, ssim_max=0.5, accuracy=0.7),
    defence_row("digit_hog", "none", 0.0, psnr_max=25.0, ssim_max=0.95, accuracy=0.9),
    defence_row("digit_hog", "dp_train_sigma", 1.2, psnr_max=14.0, ssim_max=0.1, accuracy=0.85),
]


def test_per_class_row_copies_the_result_under_fixed_columns() -> None:
    res = loss_threshold_attack(np.array([1.0, 2.0, 4.0]), np.array([3.0, 5.0]))
    row = per_class_row("dp", "loss_threshold", 3, res)
    assert list(row) == ["model", "attack", "class", "auc", "advantage", "tpr_at_1pct_fpr", "n_members",
                         "n_nonmembers"]  # fmt: skip
    assert row["model"] == "dp" and row["attack"] == "loss_threshold" and row["class"] == 3
    assert row["auc"] == pytest.approx(5 / 6) and row["advantage"] == pytest.approx(2 / 3)
    assert (row["n_members"], row["n_nonmembers"]) == (3, 2)


def test_attack_and_defence_rows_have_the_json_and_csv_columns() -> None:
    a = attack_row("target", "fp16", "idlg", 4, psnr=21.5, ssim=0.4)
    assert a == {"model": "target", "defence": "fp16", "method": "idlg", "batch_size": 4, "psnr": 21.5,
                 "ssim": 0.4}  # fmt: skip
    assert list(a) == ["model", "defence", "method", "batch_size", "psnr", "ssim"]
    assert list(TABLE[0]) == ["model", "defence", "level", "psnr_max", "ssim_max", "accuracy"]
    assert TABLE[2]["level"] == 0.95 and TABLE[2]["accuracy"] == 0.7


def test_gi_metrics_per_row_and_best_per_target() -> None:
    m = gi_metrics(TABLE)
    assert len(m) == 3 * len(TABLE) + 2 * len(GI_TARGET_DEFENCES)
    assert m["audit/gradient_inversion/pixel_linear/prune_95/psnr_max"] == 20.0
    assert m["audit/gradient_inversion/digit_hog/none/accuracy"] == 0.9
    assert m["audit/gradient_inversion/pixel_linear/dp_train_sigma/ssim_max"] == 0.2
    # the DP target: best over models under the training σ; the baseline: best over models without defence
    assert m["audit/dp/gradient_inversion/psnr"] == 14.0 and m["audit/dp/gradient_inversion/ssim"] == 0.2
    assert m["audit/nonprivate/gradient_inversion/psnr"] == 30.0
    assert m["audit/nonprivate/gradient_inversion/ssim"] == 0.95


def test_gi_metrics_refuses_a_table_without_the_target_defences() -> None:
    with pytest.raises(ValueError):
        gi_metrics([r for r in TABLE if r["defence"] != "dp_train_sigma"])


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])  # vertical steps 2, 1, 1; horizontal 1, 2, 0, 0
    assert float(total_variation(x)) == pytest.approx(4 / 3 + 3 / 4)
    assert float(total_variation(torch.full((2, 1, 5, 5), 0.3))) == 0.0


def test_total_variation_is_differentiable_and_batched() -> None:
    x = torch.rand((3, 1, 6, 6), generator=torch.Generator().manual_seed(0), requires_grad=True)
    tv = total_variation(x)
    tv.backward()  # type: ignore[no-untyped-call]
    assert tv.ndim == 0 and x.grad is not None and x.grad.shape == x.shape and x.grad.abs().sum() > 0


def test_unit_range_maps_bounds_and_averages_channels() -> None:
    a = np.array([[[[-1.0, 1.0]], [[0.0, 0.0]], [[1.0, -1.0]]]])  # (1, 3, 1, 2) in [-1, 1]
    out = unit_range(a, (-1.0, 1.0))
    assert out.shape == (1, 1, 1, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out[0, 0, 0], [0.5, 0.5])
    np.testing.assert_allclose(unit_range(np.full((2, 1, 2, 2), 0.25), (0.0, 0.5)), np.full((2, 1, 2, 2), 0.5))


def test_inversion_figures_are_titled_grids() -> None:
    import matplotlib.pyplot as plt

    rows = {"MI-Face dp": np.zeros((3, 1, 4, 4)), "train mean": np.ones((3, 1, 4, 4))}
    fig = model_inversion_figure(rows, class_names=["a", "b", "c"])
    assert fig._suptitle.get_text().startswith("MI-Face class representatives of the DP model")
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "b"
    plt.close(fig)
    fig = gradient_inversion_figure({"anonymized truth": np.zeros((2, 1, 4, 4))}, method="idlg", batch_size=2)
    assert fig._suptitle.get_text() == "idlg, batch 2: reconstructions under each defence"
    plt.close(fig)

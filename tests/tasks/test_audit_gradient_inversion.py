"""Gradient inversion (DLG, iDLG, Inverting Gradients), its defences, and MI-Face model inversion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tasks.audit.gradient_inversion import (
    Defence,
    InversionConfig,
    attack_batch,
    batch_gradient,
    defended_gradient,
    defended_training,
    infer_labels,
    per_sample_gradients,
    pixel_linear,
    reconstruction_score,
)
from tasks.audit.model_inversion import class_representatives, score_inversion
from tasks.errors import InvalidInputError


def _batch(b: int, s: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, 1, s, s)
    x[:, :, 2:6, 1:7] = torch.rand((b, 1, 4, 6), generator=g)  # a blob on a blank card
    return x, torch.arange(b, dtype=torch.int64) * 2 + 1  # distinct labels


class TinyMlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc1, self.head = nn.Linear(64, 32), nn.Linear(32, 10)
        for m in (self.fc1, self.head):
            nn.init.normal_(m.weight, std=0.3, generator=g)
            nn.init.normal_(m.bias, std=0.1, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.sigmoid(self.fc1(x.flatten(1))))


@pytest.mark.parametrize("method", ["dlg", "idlg", "inverting_gradients"])
def test_single_image_is_recovered_from_a_linear_models_gradient(method: str) -> None:
    x, y = _batch(1)
    _, score = attack_batch(
        pixel_linear(num_classes=10, seed=0, input_size=8),
        x,
        y,
        Defence("none"),
        method=method,
        config=InversionConfig(steps=100),
    )
    assert score.psnr > 30, score


def test_tiny_mlp_input_is_recovered_by_idlg() -> None:
    x, y = _batch(1, seed=3)
    _, score = attack_batch(
        TinyMlp(), x, y, Defence("none"), method="idlg", config=InversionConfig(steps=200)
    )
    assert score.psnr > 25 and score.ssim > 0.9, score


def test_batch_of_four_and_dp_noise_defeats_it() -> None:
    x, y = _batch(4)
    model = pixel_linear(num_classes=10, seed=0, input_size=8)
    cfg = InversionConfig(steps=100)
    recon, clear = attack_batch(model, x, y, Defence("none"), method="inverting_gradients", config=cfg)
    assert clear.psnr > 25 and recon.shape == x.shape
    _, noisy = attack_batch(model, x, y, Defence("dp", 2.0, 1.0), method="inverting_gradients", config=cfg)
    assert noisy.psnr < 15, noisy


def test_idlg_label_inference() -> None:
    x, y = _batch(3)
    model = pixel_linear(num_classes=10, seed=0, input_size=8)
    assert infer_labels(model, batch_gradient(model, x, y), batch_size=3).tolist() == y.tolist()


def test_defences() -> None:
    x, y = _batch(4)
    model = pixel_linear(num_classes=10, seed=1, input_size=8)
    clean = defended_gradient(model, x, y, Defence("none"), seed=0)
    pruned = defended_gradient(model, x, y, Defence("prune", 0.95), seed=0)
    zero_share = float((pruned[0] == 0).float().mean())
    assert 0.949 <= zero_share < 0.99
    int8 = defended_gradient(model, x, y, Defence("int8"), seed=0)
    assert len(torch.unique(int8[0])) <= 255
    assert torch.allclose(defended_gradient(model, x, y, Defence("fp16"), seed=0)[0], clean[0], atol=1e-3)
    # DP with sigma 0: the mean of per-sample gradients clipped to norm C
    per = per_sample_gradients(model, x, y)
    assert torch.allclose(sum(p.sum(0) for p in per[:1]) / 4, clean[0], atol=1e-6)
    dp0 = defended_gradient(model, x, y, Defence("dp", 0.0, 1e-3), seed=0)
    norms = torch.sqrt(sum(p.flatten(1).pow(2).sum(1) for p in per))
    assert float(torch.sqrt(sum(g.pow(2).sum() for g in dp0))) <= 1e-3 + 1e-9 and float(norms.min()) > 1e-3
    with pytest.raises(InvalidInputError, match="prune"):
        defended_gradient(model, x, y, Defence("prune", 1.0), seed=0)
    with pytest.raises(InvalidInputError, match="not one of"):
        defended_gradient(model, x, y, Defence("zip"), seed=0)


def test_defended_training_learns_without_defence_and_noise_costs_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((400, 1, 8, 8), generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    kw = dict(epochs=5, batch_size=32, lr=0.5, momentum=0.9, seed=0)
    acc = {}
    for d in (Defence("none"), Defence("dp", 50.0, 0.1)):
        m = defended_training(pixel_linear(num_classes=2, seed=0, input_size=8), x, y, d, **kw)
        acc[d.label] = float((m(x).argmax(1) == y).float().mean())
    assert acc["none"] > 0.9 and acc["dp_sigma_50"] < acc["none"] - 0.1, acc


def test_reconstruction_score_matches_by_order() -> None:
    x, _ = _batch(3)
    s = reconstruction_score(x.numpy(), x.numpy()[[2, 0, 1]])
    assert s.psnr == 100.0 and s.ssim == pytest.approx(1.0) and s.order == (1, 2, 0)
    with pytest.raises(InvalidInputError, match="shapes"):
        reconstruction_score(x.numpy(), x.numpy()[:2])


def test_mi_face_recovers_the_template_of_a_template_matching_model() -> None:
    # logits_c = <w_c, x> with w_c a centred class template: the representative must look like its template.
    templates = torch.zeros(3, 1, 8, 8)
    templates[0, 0, :, 3:5] = 1
    templates[1, 0, 3:5, :] = 1
    templates[2, 0, 1:7, 1:7] = torch.eye(6)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():
        model[1].weight.copy_((templates - templates.mean((2, 3), keepdim=True)).flatten(1) * 3)
        model[1].bias.zero_()
    reps = class_representatives(model, num_classes=3, shape=(1, 8, 8), steps=150, lr=0.05, tv=0.01)
    res = score_inversion(model, reps, templates, torch.arange(3))
    assert res.ssim_max > 0.25 and res.ssim_max > res.ssim_max_other + 0.3 and res.confidence > 0.9, res

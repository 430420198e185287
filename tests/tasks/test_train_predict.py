"""`predict_logits`, the one batched evaluation of train and audit: eval mode, no gradients, batching-invariant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tasks.train.dp import evaluate, predict_logits, predict_losses


def _model() -> nn.Module:
    torch.manual_seed(0)
    # dropout: a model left in train mode would give different logits on every call
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 3))


def _x(n: int = 10) -> torch.Tensor:
    return torch.rand((n, 1, 4, 4), generator=torch.Generator().manual_seed(1))


def test_logits_are_float32_on_the_cpu_without_gradients_in_eval_mode() -> None:
    model = _model().train()
    out = predict_logits(model, _x())
    assert out.shape == (10, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert not out.requires_grad and not model.training
    assert torch.equal(out, predict_logits(model, _x()))  # dropout off: deterministic


def test_batching_does_not_change_the_logits() -> None:
    model, x = _model(), _x(23)
    whole = predict_logits(model, x, batch_size=1024)
    np.testing.assert_allclose(predict_logits(model, x, batch_size=5).numpy(), whole.numpy(), rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        np.testing.assert_allclose(whole.numpy(), model.eval()(x).numpy(), rtol=1e-6, atol=1e-7)


def test_device_moves_the_model_there() -> None:
    model = _model()
    out = predict_logits(model, _x(), device="cpu")
    assert next(model.parameters()).device.type == "cpu" and out.shape == (10, 3)


def test_evaluate_and_losses_read_the_same_logits() -> None:
    model, x = _model(), _x()
    logits = predict_logits(model, x)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    assert evaluate(model, x, y) == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    expected = nn.functional.cross_entropy(logits, y, reduction="none").numpy().astype(np.float64)
    np.testing.assert_array_equal(predict_losses(model, x, y), expected)

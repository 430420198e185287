"""Models a user brings by import path (`train.model: "tests.user_models:build"`), for the user-model tests."""

from __future__ import annotations

import torch
from torch import nn


def build(*, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """A small CNN with BatchNorm, as a user would write it: privtrail must swap BatchNorm for GroupNorm."""
    c = in_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 8, kernel_size=3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(8 * 16, num_classes),
    )


class Scale(nn.Module):
    """A trainable layer Opacus has no per-sample gradient for."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def build_unsupported(*, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """A model DP-SGD (hooks) cannot train: `Scale` has parameters and no grad sampler."""
    return nn.Sequential(nn.Flatten(), Scale(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], num_classes))


def build_no_kwargs(num_classes: int) -> nn.Module:
    """A factory with the wrong signature."""
    return nn.Linear(4, num_classes)


def pixels(*, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """Logistic regression on every input pixel: enough capacity to memorise a few hundred canaries."""
    c, h, w = in_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))

"""Model registry. Every model is Opacus-compatible (GroupNorm, no BatchNorm, no in-place tricks)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tasks.errors import InvalidInputError


def _block(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    # conv -> GroupNorm -> ReLU -> 2x2 average pool: halves the side.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.ReLU(),
        nn.AvgPool2d(2),
    )


class GnCnn(nn.Module):
    """A strided stem, three conv blocks with GroupNorm, global max pooling and a linear head.

    Global max pooling makes the logits independent of where the placard sits in the image.
    GroupNorm instead of BatchNorm: per-sample gradients (DP-SGD) need no cross-sample statistics.
    The stride-2 stem keeps CPU cost low (a 256-image batch of 64 px inputs is ~2 GFLOP forward).

    Shapes: (N, 3, s, s) float32 -> (N, num_classes) logits; s should be divisible by 8.
    """

    def __init__(self, *, num_classes: int = 10, width: int = 8, groups: int = 4) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, kernel_size=5, stride=2, padding=2),  # s/2
            nn.GroupNorm(groups, w),
            nn.ReLU(),
            _block(w, 2 * w, groups),  # s/4
            _block(2 * w, 4 * w, groups),  # s/8
            nn.Conv2d(4 * w, 4 * w, kernel_size=3, padding=1),
            nn.GroupNorm(groups, 4 * w),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.pool(self.features(x)), 1))
        return out


class DigitCnn(nn.Module):
    """A small GroupNorm CNN for placard crops: three conv blocks and a linear head on the flat map.

    Sized for DP-SGD on ~10^3 samples: few parameters (about 15k at width 16), so the noise added
    to each clipped gradient is spread over few coordinates. No global pooling: the crop is
    already centred, so where the ink is carries the digit.

    Shapes: (N, in_channels, s, s) float32 -> (N, num_classes) logits; s divisible by 4 (28 or 32).
    """

    def __init__(
        self, *, num_classes: int = 10, in_channels: int = 1, width: int = 16, groups: int = 4, size: int = 28
    ) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(in_channels, w, groups),  # s/2
            _block(w, 2 * w, groups),  # s/4
            _block(2 * w, 2 * w, groups),  # s/8 (floor)
        )
        self.head = nn.Linear(2 * w * (size // 8) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.features(x), 1))
        return out


class DigitLinear(nn.Module):
    """Multinomial logistic regression on the flattened crop: the fewest parameters DP-SGD must noise.

    Shapes: (N, in_channels, s, s) float32 -> (N, num_classes) logits.
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, size: int = 28) -> None:
        super().__init__()
        self.head = nn.Linear(in_channels * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(x, 1))
        return out


MODELS: dict[str, Callable[..., nn.Module]] = {
    "gn_cnn": GnCnn,
    "digit_cnn": DigitCnn,
    "digit_linear": DigitLinear,
}


def build_model(name: str, *, num_classes: int, seed: int, zero_head: bool = True) -> nn.Module:
    """Build a registered model with weights drawn from a seeded generator (not the global RNG).

    Args:
        name: key of `MODELS`.
        num_classes: size of the output layer.
        seed: seed of the weight initialisation.
        zero_head: zero the final linear layer (uniform start logits; trained faster on the stand-in).
    Raises:
        InvalidInputError: unknown model name.
    """
    if name not in MODELS:
        raise InvalidInputError(f"model {name!r} is not one of {sorted(MODELS)}")
    model = MODELS[name](num_classes=num_classes)
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=gen)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    head = getattr(model, "head", None) if zero_head else None
    if isinstance(head, nn.Linear):
        nn.init.zeros_(
            head.weight
        )  # zero-initialised classifier: a common DP-SGD trick (uniform start logits)
    return model

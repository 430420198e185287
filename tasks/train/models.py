"""Model registry. Every model is Opacus-compatible (GroupNorm, no BatchNorm, no in-place tricks).

`gn_cnn` takes whole scenes (N, 3, s, s) (features "full"); `digit_hog` and `digit_linear` take
placard crops (N, 1, s, s) (features "placard"): `INPUT_CHANNELS` says which.
"""

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


class DigitLinear(nn.Module):
    """Multinomial logistic regression on the crop average-pooled to `grid` x `grid` pixels.

    Shapes: (N, 1, s, s) float32 -> (N, num_classes) logits; any s >= `grid`.
    """

    def __init__(self, *, num_classes: int = 10, grid: int = 14) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.head = nn.Linear(grid * grid, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.pool(x), 1))
        return out


class Hog(nn.Module):
    """Fixed histogram-of-oriented-gradients features (Dalal & Triggs 2005); no trainable parameters.

    Central-difference gradients, magnitude soft-binned into `orientations` unsigned directions,
    summed over `cell`-pixel cells, L2-Hys normalised over 2x2-cell blocks. Data-independent, so it
    costs no privacy and DP-SGD only has to noise the head on top. The image is split into
    `cells` x `cells` cells whatever its size (7-px cells at s = 28).

    Shapes: (N, 1, s, s) -> (N, 4 * orientations, cells - 1, cells - 1).
    """

    def __init__(self, *, orientations: int = 9, cells: int = 4) -> None:
        super().__init__()
        self.orientations, self.cells = orientations, cells
        diff = torch.tensor([[-1.0, 0.0, 1.0]]) / 2
        self.kx: torch.Tensor
        self.ky: torch.Tensor
        self.register_buffer("kx", diff.view(1, 1, 1, 3), persistent=False)
        self.register_buffer("ky", diff.view(1, 1, 3, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = nn.functional.conv2d(x, self.kx, padding=(0, 1))
        gy = nn.functional.conv2d(x, self.ky, padding=(1, 0))
        mag, theta = torch.sqrt(gx**2 + gy**2 + 1e-12), torch.atan2(gy, gx) % torch.pi  # unsigned
        pos = theta / torch.pi * self.orientations  # in [0, orientations)
        bins = torch.arange(self.orientations, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        dist = torch.remainder(pos - bins - 0.5 + self.orientations / 2, self.orientations)
        weight = torch.clamp(1 - (dist - self.orientations / 2).abs(), min=0)  # linear vote, 2 bins
        cells = nn.functional.adaptive_avg_pool2d(mag * weight, self.cells)  # (N, o, c, c)
        blocks = torch.cat(
            [
                cells[:, :, i : i + cells.shape[2] - 1, j : j + cells.shape[3] - 1]
                for i in (0, 1)
                for j in (0, 1)
            ],
            dim=1,
        )  # (N, 4o, c-1, c-1): each position holds its 2x2 block
        blocks = blocks / torch.sqrt((blocks**2).sum(1, keepdim=True) + 1e-6)
        blocks = torch.clamp(blocks, max=0.2)  # L2-Hys: clip, renormalise
        return blocks / torch.sqrt((blocks**2).sum(1, keepdim=True) + 1e-6)


class DigitHog(nn.Module):
    """A linear classifier on fixed HOG features of the placard crop: the default DP model.

    Only the head (324 x 10 + 10 = 3,250 weights) is trained, so DP-SGD's noise is spread over few
    coordinates; the HOG layer is fixed. On the built-in data set (1,200 training crops) it reached
    0.93 test accuracy with DP-SGD at epsilon 3 against 0.97 without DP.

    Shapes: (N, 1, s, s) float32 -> (N, num_classes) logits; s >= 8 (28 is the tuned size).
    """

    def __init__(self, *, num_classes: int = 10) -> None:
        super().__init__()
        self.features = Hog()
        self.head = nn.Linear(36 * 3 * 3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.flatten(self.features(x), 1))
        return out


MODELS: dict[str, Callable[..., nn.Module]] = {
    "digit_hog": DigitHog,
    "gn_cnn": GnCnn,
    "digit_linear": DigitLinear,
}
INPUT_CHANNELS: dict[str, int] = {"gn_cnn": 3, "digit_hog": 1, "digit_linear": 1}


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

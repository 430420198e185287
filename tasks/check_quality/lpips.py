"""LPIPS (Zhang et al. 2018, "The unreasonable effectiveness of deep features as a perceptual metric").

LPIPS-Alex: AlexNet's five ReLU outputs, unit-normalised across channels, squared differences weighted
by learned 1×1 linear heads, averaged over space and summed over layers. The `lpips` package ships only
the linear heads; the AlexNet backbone is a torchvision download, impossible offline. So the metric
runs only when `check_quality.lpips_weights` names a weights file (read by the flow, passed here as a
state dict); otherwise the stage reports `lpips_available = 0` with the reason, never a silent skip.

Accepted state-dict keys: torchvision AlexNet's `features.{0,3,6,8,10}.{weight,bias}` plus the lpips
heads `lin{0..4}.model.1.weight` (as `torch.save({**alexnet.state_dict(), **lpips_heads}, path)` writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tasks.errors import InvalidInputError
from tasks.types import Image, check_image

_CONVS = (
    (3, 64, 11, 4, 2),
    (64, 192, 5, 1, 2),
    (192, 384, 3, 1, 1),
    (384, 256, 3, 1, 1),
    (256, 256, 3, 1, 1),
)
_TV_INDEX = (0, 3, 6, 8, 10)  # torchvision's AlexNet.features indices of the five convolutions
_SHIFT = (-0.030, -0.088, -0.188)  # lpips' ScalingLayer
_SCALE = (0.458, 0.448, 0.450)


# Kept over the `lpips` package: it needs torchvision (PyPI's fails on this CPU torch) + an AlexNet download.
class Lpips(nn.Module):
    """LPIPS with an AlexNet backbone; (N, 3, H, W) in [-1, 1] pairs → (N,) distances (0 for identical)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=s, padding=p) for i, o, k, s, p in _CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(c[1], 1, 1, bias=False) for c in _CONVS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        shift, scale = self.get_buffer("shift"), self.get_buffer("scale")
        x = (x - shift) / scale
        taps = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max-pool after the first two ReLUs
                x = nn.functional.max_pool2d(x, 3, 2)
            x = torch.relu(conv(x))
            taps.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(a))
        for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b), strict=True):
            out = out + lin((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return out


def _rename(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, tv in enumerate(_TV_INDEX):
        for part in ("weight", "bias"):
            out[f"convs.{k}.{part}"] = state[f"features.{tv}.{part}"]
        out[f"lins.{k}.weight"] = state[f"lin{k}.model.1.weight"]
    return out


def build_lpips(state: Mapping[str, Any]) -> Lpips:
    """Build LPIPS-Alex from a state dict (see the module docstring for its keys).

    Raises:
        InvalidInputError: a key is missing or a tensor has the wrong shape.
    """
    model = Lpips()
    try:
        renamed = _rename(state)
        model.load_state_dict(renamed | {"shift": model.shift, "scale": model.scale})
    except (KeyError, RuntimeError) as err:
        raise InvalidInputError(f"lpips_weights: not AlexNet + LPIPS heads weights: {err}") from None
    return model.eval()


def _to_tensor(images: list[Image]) -> torch.Tensor:
    arr = np.stack([check_image(i) for i in images]).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def lpips_distances(model: Lpips, raw: list[Image], anon: list[Image]) -> np.ndarray:
    """(N,) LPIPS distances of N same-shape (H, W, 3) uint8 image pairs (H, W >= 32)."""
    if len(raw) != len(anon) or not raw:
        raise InvalidInputError(f"lpips: {len(raw)} raw vs {len(anon)} anonymized images")
    with torch.no_grad():
        out: np.ndarray = model(_to_tensor(raw), _to_tensor(anon)).numpy().astype(np.float64)
    return out


@dataclass(frozen=True)
class LpipsStatus:
    """Whether LPIPS ran; its mean when it did, the reason when it did not."""

    available: bool
    reason: str
    mean: float = float("nan")
    n_images: int = 0

    def as_metrics(self) -> dict[str, float]:
        """`check_quality/lpips_available` (0/1) and, when available, `check_quality/lpips_mean`."""
        m = {"check_quality/lpips_available": float(self.available)}
        return m | ({"check_quality/lpips_mean": self.mean} if self.available else {})


def lpips_missing(weights: str | None, *, resolved: str | None) -> LpipsStatus:
    """LPIPS unavailable: `check_quality.lpips_weights` is null, or names no file (`resolved`: where it looked)."""
    if weights is None:
        return LpipsStatus(
            False,
            "check_quality.lpips_weights is null: LPIPS needs AlexNet backbone weights, "
            "a torchvision download that is not available offline",
        )
    return LpipsStatus(False, f"check_quality.lpips_weights: {resolved} not found")


def lpips_measured(weights: str, distances: Sequence[float]) -> LpipsStatus:
    """LPIPS ran on len(`distances`) image pairs with the weights in `weights`: their mean."""
    return LpipsStatus(True, f"LPIPS-Alex from {weights}", float(np.mean(distances)), len(distances))

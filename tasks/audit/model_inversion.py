"""Model inversion, MI-Face (Fredrikson, Jha & Ristenpart 2015): a class representative by gradient
descent on the model's *input*, and how much it resembles the class's training images.

The attacked input is the model's own input. For `digit_hog` that is the 28 × 28 placard crop: its
HOG front end (`tasks.train.models.Hog`) is written in torch (central differences, atan2, soft
binning, pooling, L2-Hys) and differentiable almost everywhere, so no surrogate model is needed.
Cost = −log p_c(x) + λ·TV(x) (Fredrikson's 1 − p_c, in log form for useful gradients far from the
optimum; TV stands in for their denoising step), x boxed to the input range [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from skimage.metrics import structural_similarity
from torch import nn

from tasks.audit.priors import total_variation
from tasks.errors import InvalidInputError


def class_representatives(
    model: nn.Module,
    *,
    num_classes: int,
    shape: tuple[int, int, int],
    steps: int = 300,
    lr: float = 0.05,
    tv: float = 0.05,
    device: str = "cpu",
    bounds: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """MI-Face representatives of every class, optimised jointly (one batch, one image per class).

    Args:
        model: (N, C, s, s) -> (N, num_classes) logits; its weights are not changed.
        shape: (C, s, s) of one input; the search starts from zeros (blank card), as Fredrikson et al.
        steps, lr: Adam iterations and step size; tv: total-variation weight.
        bounds: (low, high) of the model's inputs (the front end's range): the search stays inside.
    Returns:
        (num_classes, C, s, s) float32 in `bounds` on the CPU.
    """
    if steps < 1 or num_classes < 1:
        raise InvalidInputError(
            f"class_representatives: need steps >= 1 and num_classes >= 1, got {steps}, {num_classes}"
        )
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    low, high = bounds
    x = torch.full((num_classes, *shape), low + 0.01 * (high - low), device=device, requires_grad=True)
    target = torch.arange(num_classes, device=device)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), target, reduction="sum")
        loss = loss + tv * num_classes * total_variation(x)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        with torch.no_grad():
            x.clamp_(low, high)
    for p in model.parameters():
        p.requires_grad_(True)
    return x.detach().cpu()


def _ssim(a: NDArray[np.float64], b: NDArray[np.float64], data_range: float = 1.0) -> float:
    """SSIM of two (C, s, s) inputs (channels averaged)."""
    return float(
        np.mean(
            [
                structural_similarity(a[c], b[c], data_range=data_range, win_size=7)  # type: ignore[no-untyped-call]
                for c in range(len(a))
            ]
        )
    )


@dataclass(frozen=True)
class ModelInversionResult:
    """SSIM of each class representative to the training images (means over classes).

    ssim_max: best match among the class's own training images; ssim_mean: mean over them;
    ssim_max_other: best match among *other* classes' images (the control: a class-specific leak
    gives ssim_max > ssim_max_other); confidence: mean softmax probability of the intended class.
    """

    ssim_max: float
    ssim_mean: float
    ssim_max_other: float
    confidence: float
    per_class_ssim_max: tuple[float, ...]

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Keys "<prefix>/model_inversion/<field>" (scalar fields)."""
        keys = ("ssim_max", "ssim_mean", "ssim_max_other", "confidence")
        return {f"{prefix}/model_inversion/{k}": float(getattr(self, k)) for k in keys}


def score_inversion(
    model: nn.Module,
    reps: torch.Tensor,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    max_per_class: int = 200,
    data_range: float = 1.0,
) -> ModelInversionResult:
    """Compare representatives (num_classes, C, s, s) with training inputs (N, C, s, s), labels (N,).

    Only the first `max_per_class` images per class are compared (SSIM is per pair, averaged over
    channels; `data_range`: width of the inputs' range).
    """
    if reps.ndim != 4 or x_train.ndim != 4 or reps.shape[1:] != x_train.shape[1:]:
        raise InvalidInputError(
            f"score_inversion: reps {tuple(reps.shape)} and images {tuple(x_train.shape)} differ"
        )
    r, xs, ys = reps.numpy().astype(np.float64), x_train.numpy().astype(np.float64), y_train.numpy()
    with torch.no_grad():
        probs = torch.softmax(model.cpu().eval()(reps), 1)
    own, mean, other = [], [], []
    for c in range(len(r)):
        mine = xs[ys == c][:max_per_class]
        rest = xs[ys != c][: max_per_class * 2]
        s_own = [_ssim(r[c], im, data_range) for im in mine] or [float("nan")]
        own.append(max(s_own))
        mean.append(float(np.mean(s_own)))
        other.append(max(_ssim(r[c], im, data_range) for im in rest) if len(rest) else float("nan"))
    conf = float(probs[torch.arange(len(r)), torch.arange(len(r))].mean())
    return ModelInversionResult(
        float(np.nanmean(own)),
        float(np.nanmean(mean)),
        float(np.nanmean(other)),
        conf,
        tuple(float(v) for v in own),
    )

"""Image priors shared by the inversion attacks: the total-variation smoothness penalty."""

from __future__ import annotations

import torch


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |vertical step| + mean |horizontal step| over the last two axes.

    The smoothness prior of MI-Face (standing in for Fredrikson et al.'s denoising step) and of
    Inverting Gradients (Geiping et al. 2020).

    Args:
        x: (..., H, W) images, H and W >= 2.
    Returns:
        A 0-dim tensor, differentiable in `x`.
    """
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

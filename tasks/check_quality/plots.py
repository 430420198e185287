"""Figures of check_quality: the privacy–utility scatter of the method comparison (aggregates only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tasks.check_quality.compare import MethodRow  # noqa: E402

_ATTACKS = (
    ("reid_naive_top1", "naive", "o"),
    ("reid_adaptive_top1", "adaptive", "s"),
    ("reid_trained_accuracy", "trained", "^"),
)


def privacy_utility_figure(rows: Sequence[MethodRow]) -> Any:
    """Re-identification rate (three attacks) against SSIM and against the utility ratio, one point per method.

    Returns:
        A matplotlib Figure (the caller saves it).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, xkey, xlabel in zip(
        axes,
        ("ssim_whole", "utility_ratio"),
        ("SSIM (whole image)", "utility ratio (anon / raw accuracy)"),
        strict=True,
    ):
        for key, label, marker in _ATTACKS:
            ax.scatter(
                [getattr(r, xkey) for r in rows], [getattr(r, key) for r in rows], marker=marker, label=label
            )
        for r in rows:
            ax.annotate(
                r.method,
                (getattr(r, xkey), r.reid_worst_rate),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        if rows:
            ax.axhline(rows[0].reid_chance, color="k", ls="--", lw=0.8, label="chance")
        ax.set(xlabel=xlabel, ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("re-identification rate (top-1)")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("Privacy–utility trade-off per anonymization method")
    return fig

"""Figures of the audit: ROC curves on log-log axes (Carlini et al. 2022: the low-FPR regime matters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def roc_figure(results: Mapping[str, Any], *, title: str = "Membership inference ROC") -> Any:
    """One ROC curve per attack result (objects with `fpr`, `tpr`, `auc`), log-log, with the chance line.

    Args:
        results: label → AttackResult.
    Returns:
        A matplotlib Figure (the caller saves it).
    """
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    floor = 1e-4
    for label, res in results.items():
        fpr = np.clip(np.asarray(res.fpr, dtype=float), floor, 1)
        tpr = np.clip(np.asarray(res.tpr, dtype=float), floor, 1)
        ax.plot(fpr, tpr, label=f"{label} (AUC {res.auc:.3f})")
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, "k--", lw=0.8, label="chance")
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(floor, 1),
        ylim=(floor, 1),
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=title,
    )
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.2)
    return fig

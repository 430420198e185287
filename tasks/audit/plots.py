"""Figures of the audit: ROC curves on log-log axes (Carlini et al. 2022: the low-FPR regime matters),
grids of inverted images, and reconstruction quality against each defence's accuracy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike, NDArray  # noqa: E402


def unit_range(a: ArrayLike, bounds: tuple[float, float]) -> NDArray[np.float64]:
    """Model inputs in `bounds` → [0, 1], channels averaged: what an image grid shows.

    Args:
        a: (n, C, s, s) inputs (or reconstructions) in [low, high] = `bounds`.
    Returns:
        (n, 1, s, s) float64.
    """
    low, high = bounds
    out: NDArray[np.float64] = ((np.asarray(a, np.float64) - low) / (high - low)).mean(axis=1, keepdims=True)
    return out


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


def image_grid(rows: Mapping[str, Any], *, title: str, col_labels: list[str] | None = None) -> Any:
    """A grid of single-channel images: one row per entry, label on the left.

    Args:
        rows: row label → (n, 1, s, s) or (n, s, s) array in [0, 1] (anonymized crops or reconstructions only).
        col_labels: optional titles of the columns.
    Returns:
        A matplotlib Figure.
    """
    arrays = {
        k: np.asarray(v, dtype=float).reshape(len(v), *np.asarray(v).shape[-2:]) for k, v in rows.items()
    }
    n_cols = max(len(a) for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), n_cols, figsize=(1.1 * n_cols + 1.2, 1.15 * len(arrays) + 0.4),
                             squeeze=False)  # fmt: skip
    for r, (label, arr) in enumerate(arrays.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(arr):
                ax.imshow(arr[c], cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            if r == 0 and col_labels and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def psnr_vs_accuracy_figure(table: Sequence[Mapping[str, Any]], *, title: str) -> Any:
    """Scatter of each defence: best reconstruction PSNR (any method, batch size) vs test accuracy.

    Args:
        table: rows with "model", "defence", "psnr_max", "accuracy".
    """
    fig, ax = plt.subplots(figsize=(5.4, 4.2))
    for model in sorted({str(r["model"]) for r in table}):
        rows = [r for r in table if r["model"] == model]
        ax.scatter([r["accuracy"] for r in rows], [r["psnr_max"] for r in rows], label=model, s=18)
        for r in rows:
            ax.annotate(str(r["defence"]), (r["accuracy"], r["psnr_max"]), fontsize=6)
    ax.set(
        xlabel="test accuracy under the defence", ylabel="reconstruction PSNR (dB, best attack)", title=title
    )
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.2)
    return fig


def model_inversion_figure(rows: Mapping[str, Any], *, class_names: list[str]) -> Any:
    """`image_grid` of MI-Face class representatives against the mean training input, one column per class."""
    title = "MI-Face class representatives of the DP model vs mean anonymized training input"
    return image_grid(rows, title=title, col_labels=class_names)


def gradient_inversion_figure(rows: Mapping[str, Any], *, method: str, batch_size: int) -> Any:
    """`image_grid` of the true batch and its reconstructions by `method` under each defence."""
    return image_grid(rows, title=f"{method}, batch {batch_size}: reconstructions under each defence")

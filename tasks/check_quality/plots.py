"""Figures of check_quality: the privacy–utility scatter of the method comparison (aggregates only) and a
grid of sample anonymized crops per method (`samples.method_samples`: the written, verified files, or the
builtin benchmark's package faces; a clear row is refused)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tasks.anonymize.obfuscate import OBFUSCATORS  # noqa: E402
from tasks.check_quality.compare import MethodRow  # noqa: E402
from tasks.check_quality.samples import SOURCE_LABELS, MethodSamples  # noqa: E402
from tasks.errors import InvalidInputError  # noqa: E402

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


def method_samples_figure(samples: MethodSamples, *, title: str) -> Figure:
    """Sample anonymized crops: one row per shown method (its name and where its pixels come from on the left),
    one column per image, and below them the note saying where the pixels come from and what was left out.

    Args:
        samples: `samples.method_samples`' output: rows of (method, source, crops), crops (H, W, 3) uint8.
        title: the figure's title.
    Returns:
        A matplotlib Figure (the caller saves it); with no row it holds the note alone.
    Raises:
        InvalidInputError: a row labelled "none" (the clear image) or not an anonymization method, a source
            other than the written files or the benchmark faces, rows of different lengths, or an image that
            is not (H, W, 3) uint8.
    """
    _check_grid(samples.rows)
    n_rows, n_cols = max(1, len(samples.rows)), max([len(r[2]) for r in samples.rows] or [1])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols + 1.4, 1.9 * n_rows + 0.9), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off" if not samples.rows else "on")
    for (method, source, images), ax_row in zip(samples.rows, axes[: len(samples.rows)], strict=True):
        for ax, img in zip(ax_row, images, strict=True):
            ax.imshow(img, interpolation="nearest")
        ax_row[0].set_ylabel(
            f"{method}\n({SOURCE_LABELS[source]})", fontsize=10, rotation=0, ha="right", va="center"
        )
    fig.suptitle(title)
    fig.tight_layout()
    # below the grid (the saved PNG's tight bounding box takes it in): the figure says what it left out
    fig.text(0.01, 0.0, textwrap.fill(samples.note, 100), fontsize=7, va="top", ha="left")
    return fig


def _check_grid(rows: Sequence[tuple[str, str, Sequence[NDArray[np.uint8]]]]) -> None:
    for method, source, images in rows:
        if method not in OBFUSCATORS:  # "none" included: the grid never shows a clear image
            raise InvalidInputError(
                f"method_samples_figure: row {method!r} is not an anonymization method, "
                f"expected {sorted(OBFUSCATORS)}"
            )
        if source not in SOURCE_LABELS:
            raise InvalidInputError(
                f"method_samples_figure: row {method!r} from {source!r}, "
                f"expected one of {sorted(SOURCE_LABELS)}"
            )
        if not len(images) or len(images) != len(rows[0][2]):
            raise InvalidInputError(
                f"method_samples_figure: row {method!r} has {len(images)} images, not {len(rows[0][2])}"
            )
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise InvalidInputError(
                    f"method_samples_figure: row {method!r}: expected (H, W, 3) uint8, "
                    f"got {img.shape} {img.dtype}"
                )

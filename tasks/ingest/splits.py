"""Fixed, stratified train / holdout / test splits (DESIGN.md §2), drawn once at ingest from the seed."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.types import SPLITS


def assign_splits(
    labels: Sequence[Hashable], *, train: float, holdout: float, test: float, seed: int
) -> list[str]:
    """Return each item's split, stratified by label: "train" (members), "holdout" or "test".

    Global counts are exact (largest remainder of n × fraction; each split gets at least one item
    when n >= 3, so all three are non-empty from n = 10 on); inside every label each split's count
    is within two items of its share (stride scheduling over label-grouped, shuffled items).

    Args:
        labels: (n,) class of each item (ints or strings).
        train, holdout, test: positive fractions summing to 1.
        seed: seed of the shuffle; the same labels and seed give the same splits.
    Raises:
        InvalidInputError: a fraction not in (0, 1) or fractions not summing to 1.
    """
    fractions = np.array([train, holdout, test], dtype=np.float64)
    if np.any(fractions <= 0) or np.any(fractions >= 1) or abs(fractions.sum() - 1) > 1e-6:
        raise InvalidInputError(
            f"assign_splits: fractions must be in (0, 1) and sum to 1, got {fractions.tolist()}"
        )
    n = len(labels)
    rng = np.random.default_rng(seed)
    pattern = np.roll(_interleave(_split_counts(n, fractions)), int(rng.integers(0, max(n, 1))))
    # Items of one label are contiguous in `order`, and any contiguous run of `pattern` holds the
    # splits in proportion, so each label is split in proportion too.
    order = _grouped_order(labels, rng)
    out = np.empty(n, dtype=np.int64)
    out[order] = pattern
    return [SPLITS[int(s)] for s in out]


def _split_counts(n: int, fractions: NDArray[np.float64]) -> NDArray[np.int64]:
    """Return (3,) counts summing to n: largest remainder of n × fractions, each >= 1 when n >= 3."""
    exact = n * fractions
    counts = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    while n >= 3 and counts.min() == 0:
        counts[np.argmin(counts)] += 1
        counts[np.argmax(counts)] -= 1
    return counts


def _interleave(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return a sequence of split indices with `counts` of each, spread evenly (stride scheduling)."""
    n = int(counts.sum())
    share = counts / max(n, 1)
    done = np.zeros(len(counts))
    seq = np.empty(n, dtype=np.int64)
    for k in range(n):
        s = int(np.argmax(share * (k + 1) - done))  # the split furthest behind its share
        seq[k] = s
        done[s] += 1
    return seq


def _grouped_order(labels: Sequence[Hashable], rng: np.random.Generator) -> NDArray[np.int64]:
    """Return item indices grouped by label (labels in first-seen order), shuffled inside each label."""
    groups: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    parts = [rng.permutation(np.asarray(idx, dtype=np.int64)) for idx in groups.values()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def assign_group_splits(
    labels: Sequence[Hashable],
    groups: Sequence[Hashable],
    *,
    train: float,
    holdout: float,
    test: float,
    seed: int,
) -> list[str]:
    """`assign_splits` over groups instead of items: every item takes its group's split, so near-duplicates
    (neighbouring frames of one video) never sit on both sides of the member / non-member line. A group's
    label is its first item's. With every group of one item this is exactly `assign_splits(labels, ...)`.

    Raises:
        InvalidInputError: `labels` and `groups` differ in length, or as `assign_splits`.
    """
    if len(labels) != len(groups):
        raise InvalidInputError(f"assign_group_splits: {len(labels)} labels but {len(groups)} groups")
    first: dict[Hashable, Hashable] = {}
    for group, label in zip(groups, labels, strict=True):
        first.setdefault(group, label)
    order = list(first)
    split_of = dict(
        zip(
            order,
            assign_splits([first[g] for g in order], train=train, holdout=holdout, test=test, seed=seed),
            strict=True,
        )
    )
    return [split_of[g] for g in groups]

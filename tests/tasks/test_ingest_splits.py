"""Stratified, deterministic train / holdout / test splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tasks.errors import InvalidInputError
from tasks.ingest.splits import assign_splits


def _labels(n: int, seed: int = 0, classes: int = 10) -> list[int]:
    return [int(v) for v in np.random.default_rng(seed).integers(0, classes, size=n)]


def test_global_proportions_are_exact() -> None:
    splits = assign_splits(_labels(2000), train=0.6, holdout=0.2, test=0.2, seed=0)
    assert Counter(splits) == {"train": 1200, "holdout": 400, "test": 400}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_label_is_split_in_proportion(seed: int) -> None:
    labels = _labels(1003, seed=seed, classes=7) + [99] * 5  # plus one tiny class
    fractions = {"train": 0.5, "holdout": 0.3, "test": 0.2}
    splits = assign_splits(labels, **fractions, seed=seed)
    for label in set(labels):
        got = Counter(s for s, lab in zip(splits, labels, strict=True) if lab == label)
        n = labels.count(label)
        for split, frac in fractions.items():
            assert abs(got[split] - n * frac) < 2.5, (label, split, got, n)


def test_deterministic_and_seed_dependent() -> None:
    labels = _labels(300)
    a = assign_splits(labels, train=0.6, holdout=0.2, test=0.2, seed=5)
    assert a == assign_splits(labels, train=0.6, holdout=0.2, test=0.2, seed=5)
    assert a != assign_splits(labels, train=0.6, holdout=0.2, test=0.2, seed=6)


@pytest.mark.parametrize("labels", [list(range(10)), [3] * 10, ["a", "b"] * 5])
def test_each_split_non_empty_from_ten_items(labels: list[object]) -> None:
    splits = assign_splits(labels, train=0.8, holdout=0.1, test=0.1, seed=0)
    assert set(splits) == {"train", "holdout", "test"} and len(splits) == 10


def test_small_fraction_still_gets_one_item() -> None:
    splits = assign_splits(_labels(10), train=0.96, holdout=0.02, test=0.02, seed=0)
    assert Counter(splits) == {"train": 8, "holdout": 1, "test": 1}


def test_empty_input() -> None:
    assert assign_splits([], train=0.6, holdout=0.2, test=0.2, seed=0) == []


@pytest.mark.parametrize(("train", "holdout", "test"), [(0.6, 0.2, 0.1), (1.0, 0.0, 0.0), (0.7, -0.1, 0.4)])
def test_invalid_fractions_raise(train: float, holdout: float, test: float) -> None:
    with pytest.raises(InvalidInputError, match="assign_splits"):
        assign_splits([0, 1], train=train, holdout=holdout, test=test, seed=0)


def test_group_splits_keep_each_group_together_and_equal_item_splits_for_singletons() -> None:
    from tasks.ingest.splits import assign_group_splits

    labels = [i % 3 for i in range(60)]
    singles = assign_group_splits(labels, list(range(60)), train=0.6, holdout=0.2, test=0.2, seed=4)
    assert singles == assign_splits(labels, train=0.6, holdout=0.2, test=0.2, seed=4)
    groups = [i // 5 for i in range(60)]  # 12 groups of 5 neighbouring items
    splits = assign_group_splits(labels, groups, train=0.6, holdout=0.2, test=0.2, seed=4)
    for g in set(groups):
        assert len({s for s, gg in zip(splits, groups, strict=True) if gg == g}) == 1
    assert set(splits) == {"train", "holdout", "test"}


def test_video_frames_are_grouped_in_blocks_and_images_alone() -> None:
    from tasks.ingest.stage import FRAMES_PER_BLOCK, split_groups

    rows = [{"id": f"f{i}", "source": f"cam/a.avi#frame={5 * i}"} for i in range(FRAMES_PER_BLOCK + 1)]
    rows.append({"id": "img", "source": "cam/still.png"})
    groups = split_groups(rows)
    assert len(set(groups[:FRAMES_PER_BLOCK])) == 1 and groups[FRAMES_PER_BLOCK] != groups[0]
    assert groups[-1] == "img"

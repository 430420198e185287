"""check_quality redaction recall: coverage of ground-truth boxes by the union of redacted boxes."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.coverage import OVERREDACTION_CATEGORIES, RECALL_CATEGORIES, overredaction, redaction_recall
from tasks.errors import InvalidInputError

FACE = np.array([[0, 0, 10, 10]])  # 100 px²


@pytest.mark.parametrize(
    ("redacted", "covered"),
    [
        ([[0, 0, 10, 10]], 1),  # exactly the box
        ([[-4, -4, 20, 20]], 1),  # a padded box
        ([[0, 0, 7, 10]], 1),  # 70 %: at the threshold
        ([[0, 0, 6, 10]], 0),  # 60 %: partial, below 0.7
        ([[0, 0, 5, 10], [5, 0, 10, 10]], 1),  # two halves: their union covers it
        ([[0, 0, 6, 10], [0, 0, 6, 10]], 0),  # the same 60 % twice is still 60 %, not 120 %
        ([[0, 0, 6, 10], [1, 0, 7, 10]], 1),  # overlapping 60 % + 60 % → union 70 %
        ([[20, 20, 30, 30]], 0),  # elsewhere
        ([], 0),  # nothing redacted
    ],
)
def test_face_coverage(redacted: list[list[int]], covered: int) -> None:
    out = redaction_recall({"face": FACE}, np.array(redacted, np.int64).reshape(-1, 4))
    assert out["face"] == (covered, 1)


def test_min_coverage_moves_the_threshold() -> None:
    half = np.array([[0, 0, 5, 10]])
    assert redaction_recall({"face": FACE}, half, min_coverage=0.5)["face"] == (1, 1)
    assert redaction_recall({"face": FACE}, half, min_coverage=0.51)["face"] == (0, 1)


def test_counts_per_category_and_missing_categories() -> None:
    gt = {
        "face": np.array([[0, 0, 10, 10], [50, 50, 70, 70], [100, 0, 120, 30]]),
        "plate": np.array([[0, 100, 40, 115]]),
        "placard": np.array([[200, 200, 230, 230]]),
    }
    redacted = np.array([[0, 0, 10, 10], [48, 48, 72, 72], [0, 100, 20, 115]])
    out = redaction_recall(gt, redacted)
    assert out == {"face": (2, 3), "plate": (0, 1), "text_pii": (0, 0), "text_nonpii": (0, 0)}
    assert tuple(out) == RECALL_CATEGORIES


def test_overredaction_counts_placard_and_nonpii_text() -> None:
    gt = {
        "placard": np.array([[10, 10, 40, 40]]),
        "text_nonpii": np.array([[50, 0, 90, 12], [0, 60, 30, 70]]),
    }
    redacted = np.array([[8, 8, 42, 42], [50, 0, 90, 12]])
    out = overredaction(gt, redacted)
    assert out == {"text_nonpii": (1, 2), "placard": (1, 1)}
    assert tuple(out) == OVERREDACTION_CATEGORIES


def test_boxes_are_clipped_to_the_image() -> None:
    # Half of this face hangs off a 20×20 image; redacting its visible half covers it.
    face = np.array([[10, 0, 30, 10]])
    visible = np.array([[10, 0, 20, 10]])
    assert redaction_recall({"face": face}, visible, image_shape=(20, 20))["face"] == (1, 1)
    assert redaction_recall({"face": face}, visible)["face"] == (0, 1)  # no frame given: nothing clipped


@pytest.mark.parametrize(
    ("gt", "redacted", "kwargs", "match"),
    [
        ({"faces": FACE}, FACE, {}, "unknown categories"),
        ({"face": np.array([[5, 0, 0, 5]])}, FACE, {}, "x1 < x0"),
        ({"face": FACE}, np.array([[0.5, 0, 3, 3]]), {}, "whole pixels"),
        ({"face": FACE}, FACE, {"min_coverage": 0.0}, "min_coverage"),
        ({"face": FACE}, FACE, {"min_coverage": 1.5}, "min_coverage"),
    ],
)
def test_bad_inputs_raise(gt: dict, redacted: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        redaction_recall(gt, redacted, **kwargs)

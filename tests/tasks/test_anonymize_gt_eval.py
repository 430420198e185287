"""Ground-truth scoring of the anonymize stage: known answers on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.gt_eval import GtTally, ImageEval, evaluate_image
from tasks.errors import InvalidInputError
from tasks.types import Detections

GT = [
    ("face", (10, 10, 30, 30), None),
    ("text_nonpii", (60, 60, 90, 70), None),
    ("placard", (0, 80, 20, 100), None),
]


def _raw() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)


def test_covered_face_and_untouched_rest() -> None:
    raw = _raw()
    anon = raw.copy()
    anon[8:32, 8:32] = 0  # the face, padded by 2 px
    ev = evaluate_image(raw, anon, GT, np.array([[8, 8, 32, 32]]))
    assert ev.covered["face"] == (1, 1) and ev.covered["text_nonpii"] == (0, 1)
    outside = 100 * 100 - 20 * 20
    assert ev.changed_outside == (24 * 24 - 20 * 20, outside)  # the padding ring counts in the strict number
    assert ev.changed_outside_margin[0] == 0  # ... and not once the boxes grow by 20 % (4 px) per side
    assert ev.missed == ()


def test_missed_face_and_false_positive_change() -> None:
    raw = _raw()
    anon = raw.copy()
    anon[50:55, 50:55] = 0  # a false positive, nowhere near the face
    ev = evaluate_image(raw, anon, GT, np.array([[50, 50, 55, 55]]))
    assert ev.covered["face"] == (0, 1)
    assert ev.missed == (GT[0],)
    assert ev.changed_outside[0] == ev.changed_outside_margin[0] == 25


def test_quarantined_image_counts_nothing() -> None:
    ev = evaluate_image(_raw(), None, GT, np.zeros((0, 4), np.int64))
    assert not ev.written and ev.covered["face"] == (0, 0)


def test_auditor_finds_a_residual_face() -> None:
    raw = _raw()

    def auditor(image: np.ndarray) -> Detections:
        return Detections(np.array([[11, 11, 29, 29]]), np.ones(1, np.float32), ("face",))

    ev = evaluate_image(raw, raw.copy(), GT, np.zeros((0, 4), np.int64), auditor=auditor)
    assert ev.residual_faces == (1, 1)


def test_tally_and_record_round_trip() -> None:
    raw = _raw()
    anon = raw.copy()
    anon[8:32, 8:32] = 0
    evs = [
        evaluate_image(raw, anon, GT, np.array([[8, 8, 32, 32]])),
        evaluate_image(raw, raw.copy(), GT, np.zeros((0, 4))),
    ]
    tally = GtTally()
    for ev in evs:
        tally.add(ImageEval.from_record(ev.as_record()))
    m = tally.metrics()
    assert m["gt_face_recall"] == 0.5 and m["gt_text_nonpii_kept"] == 1.0
    assert m["gt_changed_outside_fraction"] == pytest.approx((24 * 24 - 400) / (2 * (10_000 - 400)))
    assert np.isnan(m["gt_plate_recall"]) and "gt_residual_face_rate" not in m


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        evaluate_image(_raw(), np.zeros((50, 50, 3), np.uint8), GT, np.zeros((0, 4)))

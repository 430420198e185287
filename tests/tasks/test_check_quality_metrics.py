"""check_quality image metrics (PSNR / SSIM whole and outside boxes) and the dataset summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tasks.check_quality.image_metrics import PSNR_CAP_DB, ImageQuality, image_quality
from tasks.check_quality.summary import ImageRecord, image_record, summarize
from tasks.errors import InvalidInputError
from tests.conftest import FakeDetector


@pytest.fixture
def photo(rng: np.random.Generator) -> np.ndarray:
    """A 64×64 textured RGB image (smooth gradient plus noise), so SSIM has structure to compare."""
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


BOXES = np.array([[8, 8, 24, 24], [40, 30, 60, 50]])


def _scramble_inside(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    for x0, y0, x1, y1 in boxes:
        out[y0:y1, x0:x1] = rng.integers(0, 256, out[y0:y1, x0:x1].shape, dtype=np.uint8)
    return out


def test_identical_images_give_capped_psnr_and_ssim_one(photo: np.ndarray) -> None:
    q = image_quality(photo, photo.copy(), sensitive_boxes=BOXES)
    assert q.psnr_whole == q.psnr_outside == PSNR_CAP_DB == 100.0
    assert q.ssim_whole == pytest.approx(1.0, abs=1e-12)
    assert q.ssim_outside == pytest.approx(1.0, abs=1e-12)
    assert q.outside_fraction == pytest.approx(1 - (16 * 16 + 20 * 20) / 64**2)


def test_change_only_inside_boxes_keeps_outside_perfect(photo: np.ndarray, rng: np.random.Generator) -> None:
    anon = _scramble_inside(photo, BOXES, rng)
    q = image_quality(photo, anon, sensitive_boxes=BOXES)
    assert q.psnr_outside == PSNR_CAP_DB
    # A 7×7 window reaching into a box would see the noise: the 3-px margin keeps it out.
    assert q.ssim_outside == pytest.approx(1.0, abs=1e-9)
    assert q.psnr_whole < 20.0
    assert q.ssim_whole < 0.9
    # Without the boxes, the same change is counted everywhere.
    unmasked = image_quality(photo, anon, sensitive_boxes=np.zeros((0, 4), np.int64))
    assert unmasked.psnr_outside == pytest.approx(q.psnr_whole)
    assert unmasked.outside_fraction == 1.0


def test_psnr_outside_matches_the_formula(photo: np.ndarray) -> None:
    raw = np.full_like(photo, 100)
    anon = raw.copy()
    anon[:, :32] += 10  # left half off by 10 grey levels, right half untouched
    q = image_quality(raw, anon, sensitive_boxes=np.array([[32, 0, 64, 64]]))
    assert q.psnr_outside == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)  # 28.13 dB
    assert q.psnr_whole == pytest.approx(10 * math.log10(255**2 / 50), abs=1e-9)  # MSE 50: 31.14 dB


def test_box_covering_everything_gives_nan_outside(photo: np.ndarray) -> None:
    q = image_quality(photo, photo[::-1].copy(), sensitive_boxes=np.array([[-5, -5, 100, 100]]))
    assert math.isnan(q.psnr_outside) and math.isnan(q.ssim_outside)
    assert q.outside_fraction == 0.0
    assert q.psnr_whole < PSNR_CAP_DB


@pytest.mark.parametrize(
    ("anon", "boxes", "match"),
    [
        (np.zeros((32, 64, 3), np.uint8), BOXES, "differs from raw"),
        (np.zeros((64, 64), np.uint8), BOXES, "anon"),
        (None, np.array([[10, 10, 5, 20]]), "x1 < x0"),
        (None, np.array([1, 2, 3, 4]), r"\(N, 4\)"),
    ],
)
def test_bad_inputs_raise(photo: np.ndarray, anon: np.ndarray | None, boxes: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        image_quality(photo, photo if anon is None else anon, sensitive_boxes=boxes)


def _record(
    image_id: str, psnr_out: float, faces: tuple[int, int, int], plates: tuple[int, int]
) -> ImageRecord:
    n_gt, raw_found, left = faces
    return ImageRecord(
        image_id=image_id,
        quality=ImageQuality(
            psnr_whole=30.0, psnr_outside=psnr_out, ssim_whole=0.9, ssim_outside=1.0, outside_fraction=0.9
        ),
        recall={"face": (n_gt - left, n_gt), "plate": plates, "text_pii": (0, 0), "text_nonpii": (1, 2)},
        overredaction={"text_nonpii": (1, 2), "placard": (0, 1)},
        n_gt_faces=n_gt,
        raw_faces_found=raw_found,
        raw_face_detections=raw_found + 1,
        residual_faces_matched=left,
        residual_face_detections=left,
    )


def test_summary_aggregates_records_and_skips_nan() -> None:
    records = [
        _record("a", 100.0, (2, 2, 0), (1, 1)),
        _record("b", 40.0, (3, 2, 1), (0, 1)),
        _record("c", float("nan"), (0, 0, 0), (0, 0)),
    ]
    s = summarize(records)
    m = s.as_metrics()
    assert m["check_quality/n_images"] == 3
    assert m["check_quality/n_images_no_outside"] == 1
    assert m["check_quality/psnr_outside"] == pytest.approx(70.0)  # NaN of "c" skipped
    assert m["check_quality/psnr_outside_median"] == pytest.approx(70.0)
    assert m["check_quality/psnr_whole"] == 30.0 and m["check_quality/ssim_outside"] == 1.0
    assert m["check_quality/face_redaction_recall"] == pytest.approx(4 / 5)
    assert (m["check_quality/face_redaction_covered"], m["check_quality/face_redaction_total"]) == (4, 5)
    assert m["check_quality/plate_redaction_recall"] == pytest.approx(0.5)
    assert math.isnan(m["check_quality/text_pii_redaction_recall"])  # no ground truth: undefined, not 100 %
    assert "check_quality/text_nonpii_redaction_recall" not in m  # reported as over-redaction instead
    assert m["check_quality/text_nonpii_overredaction_rate"] == pytest.approx(3 / 6)
    assert m["check_quality/placard_overredaction_rate"] == 0.0
    assert m["check_quality/auditor_raw_face_recall"] == pytest.approx(4 / 5)
    assert m["check_quality/auditor_raw_detections_per_image"] == pytest.approx(7 / 3)
    assert m["check_quality/residual_face_detections"] == 1
    assert m["check_quality/residual_face_rate"] == pytest.approx(1 / 3)
    assert m["check_quality/residual_face_matched_rate"] == pytest.approx(1 / 5)
    assert all(k.startswith("check_quality/") and isinstance(v, float) for k, v in m.items())
    assert "80.0% of 5 clear faces" in s.headline() and "1 of them" in s.headline()


def test_summary_of_shards_equals_summary_of_all() -> None:
    records = [_record(str(i), 30.0 + i, (i % 3, i % 2, 0), (i % 2, 1)) for i in range(10)]
    whole = summarize(records).as_metrics()
    # Shards are computed apart and their records concatenated: the order must not matter.
    assert summarize(records[5:] + records[:5]).as_metrics() == pytest.approx(whole, nan_ok=True)


def test_record_round_trips_through_json() -> None:
    rec = _record("img-7", 55.5, (3, 2, 1), (1, 2))
    back = ImageRecord.from_dict(json.loads(json.dumps(rec.as_dict())))
    assert back == rec


def test_summarize_refuses_no_records() -> None:
    with pytest.raises(InvalidInputError, match="records"):
        summarize([])


def test_image_record_with_fake_auditor(photo: np.ndarray, rng: np.random.Generator) -> None:
    gt = {
        "face": np.array([[8, 8, 24, 24]]),
        "plate": np.array([[40, 30, 60, 50]]),
        "placard": np.array([[0, 50, 10, 60]]),
    }
    anon = _scramble_inside(photo, gt["face"], rng)
    auditor = FakeDetector([[9, 9, 25, 25]])  # "sees" the face in both images
    rec = image_record(
        photo,
        anon,
        image_id="x",
        gt_boxes_by_category=gt,
        redacted_boxes=gt["face"],
        detector=auditor,
        match_iou=0.5,
    )
    assert auditor.calls == 2
    assert rec.recall == {"face": (1, 1), "plate": (0, 1), "text_pii": (0, 0), "text_nonpii": (0, 0)}
    assert rec.overredaction == {"text_nonpii": (0, 0), "placard": (0, 1)}
    assert (
        rec.n_gt_faces,
        rec.raw_faces_found,
        rec.residual_faces_matched,
        rec.residual_face_detections,
    ) == (1, 1, 1, 1)
    # Face and plate are masked out: only the (unchanged) rest is compared.
    assert rec.quality.psnr_outside == PSNR_CAP_DB and rec.quality.psnr_whole < 30


def test_uncalibrated_records_do_not_dilute_auditor_recall() -> None:
    import numpy as np

    from tasks.check_quality.summary import image_record, summarize
    from tests.conftest import FakeDetector

    img = np.zeros((64, 64, 3), np.uint8)
    gt = {"face": np.array([[10, 10, 40, 40]])}
    det = FakeDetector([[10, 10, 40, 40]])
    on = image_record(img, img, image_id="a", gt_boxes_by_category=gt, redacted_boxes=np.zeros((0, 4)),
                      detector=det, match_iou=0.3, calibrate=True)
    calls = det.calls
    off = image_record(img, img, image_id="b", gt_boxes_by_category=gt, redacted_boxes=np.zeros((0, 4)),
                       detector=det, match_iou=0.3, calibrate=False)
    assert det.calls == calls + 1 and off.raw_faces_found == 0 and not off.calibrated
    m = summarize([on, off]).as_metrics()
    assert m["check_quality/auditor_raw_face_recall"] == 1.0 and m["check_quality/auditor_calibration_images"] == 1
    assert m["check_quality/residual_faces_matched"] == 2 and m["check_quality/n_gt_faces"] == 2


def test_detector_proxy_of_face_recall_needs_no_ground_truth() -> None:
    """Without ground truth the auditor's raw detections stand in for it, under a name that says so."""
    import numpy as np

    from tasks.check_quality.summary import image_record, summarize
    from tests.conftest import FakeDetector

    img = np.zeros((64, 64, 3), np.uint8)
    det = FakeDetector([[10, 10, 40, 40]])
    covered = image_record(img, img, image_id="a", gt_boxes_by_category={}, redacted_boxes=np.array([[8, 8, 44, 44]]),
                           detector=det, match_iou=0.3)
    missed = image_record(img, img, image_id="b", gt_boxes_by_category={}, redacted_boxes=np.array([[50, 50, 60, 60]]),
                          detector=det, match_iou=0.3)
    assert (covered.raw_detections_covered, missed.raw_detections_covered) == (1, 0)
    m = summarize([covered, missed]).as_metrics()
    assert m["check_quality/face_redaction_recall_detector_proxy"] == 0.5
    assert m["check_quality/residual_face_detections_per_image_proxy"] == 1.0
    assert np.isnan(m["check_quality/face_redaction_recall"])  # the ground-truth metric is not measured

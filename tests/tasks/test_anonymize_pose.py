"""MediaPipe's BlazePose person detector (`anonymize.body.pose`): its anchors and decoding, a clear error
without its model, and people found on a real CCTV frame (opencv-doc's vtest.avi, hand-labelled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.anonymize.detectors.pose import PoseDetector, decode, ssd_anchors
from tasks.errors import AnonymizationError, InvalidInputError


def test_anchors_are_mediapipes_2254_and_decoding_reads_the_body_circle() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (2254, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])  # stride 8: a 28x28 grid, 2 per cell
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])  # then stride 16: 14x14, 2 per cell
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])  # then stride 32: 7x7, 6 per cell
    regressors = np.zeros((2254, 12), np.float32)
    logits = np.full(2254, -10.0, np.float32)
    k = 1568 + 2 * (14 * 7 + 7)  # the stride-16 cell (7, 7): centre (7.5 / 14) * 224 = 120 px
    regressors[k, 4:8] = [4, -6, 4, 24]  # hip at +4, -6 from the anchor; the circle's rim 30 px below the hip
    logits[k] = 3.0
    circles = decode(regressors, logits, threshold=0.5)
    np.testing.assert_allclose(circles, [[124, 114, 30, 1 / (1 + np.exp(-3))]], rtol=1e-6)


def test_without_its_model_the_detector_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(AnonymizationError, match="no model at .*missing.tflite.*make setup"):
        PoseDetector(model=tmp_path / "missing.tflite")(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InvalidInputError):
        PoseDetector(tile=8)


def test_people_on_a_real_cctv_frame_are_found() -> None:
    """vtest.avi frame 250 (7 people, 66-98 px tall; labelled after the detector's options were set)."""
    import cv2

    from bench.video_people import covered, labelled_people
    from tests.real_photos import VIDEO, RealPhotosUnavailable, default_cache, fetch_opencv_doc, load_image

    try:
        examples = fetch_opencv_doc(default_cache())
    except RealPhotosUnavailable as err:
        pytest.skip(f"real photos unavailable: {err}")
    frame = np.ascontiguousarray(cv2.cvtColor(load_image(examples, f"{VIDEO}#frame=250"), cv2.COLOR_BGR2RGB))
    found = PoseDetector()(frame)
    shares, px = covered(found[:, :4].clip(0).astype(np.int64), labelled_people()[250], frame.shape[:2])
    assert sum(s >= 0.5 for s in shares) >= 6 and px < 0.25, (shares, px)

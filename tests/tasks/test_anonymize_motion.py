"""The motion cue for fixed CCTV views: what moves against the learned background becomes a body box; a
still scene gives none; a camera move (most of the frame foreground) skips the cue; in a video the blobs
are redacted with the detectors' boxes even when every detector is blind."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.engine import anonymize_image
from tasks.anonymize.motion import MotionDetector
from tasks.anonymize.tracker import IouTracker
from tasks.anonymize.video import anonymize_frames
from tasks.errors import InvalidInputError
from tasks.types import Detections


def _scene(i: int, *, walker: bool = True) -> np.ndarray:
    """A textured still background; a 12x30 px 'walker' moving 4 px a frame from x = 20."""
    rng = np.random.default_rng(0)  # the same background every frame (camera noise below)
    frame = (rng.integers(60, 120, (120, 160, 1)) * np.ones((1, 1, 3))).astype(np.uint8)
    frame = (frame.astype(int) + np.random.default_rng(100 + i).integers(-2, 3, frame.shape)).clip(0, 255).astype(np.uint8)
    if walker:
        frame[50:80, 20 + 4 * i : 32 + 4 * i] = (200, 30, 30)
    return frame


def test_a_moving_person_is_boxed_and_a_still_scene_is_not() -> None:
    motion = MotionDetector(history=20, min_area=50)
    for i in range(12):
        found = motion(_scene(i))
    assert found.category == ("body",) and len(found) == 1
    x0, y0, x1, y1 = found.boxes[0]
    assert x0 <= 20 + 4 * 11 and x1 >= 32 + 4 * 11 and y0 <= 50 and y1 >= 80  # the walker, whole
    assert (x1 - x0) * (y1 - y0) < 0.2 * 120 * 160 and not motion.skipped
    still = MotionDetector(history=20, min_area=50)
    assert all(len(still(_scene(i, walker=False))) == 0 for i in range(12))


def test_a_camera_move_skips_the_cue_instead_of_boxing_the_frame() -> None:
    motion = MotionDetector(history=20, min_area=50, max_share=0.3)
    for i in range(10):
        motion(_scene(i, walker=False))
    moved = np.roll(_scene(10, walker=False), 7, axis=1)
    moved = np.ascontiguousarray(255 - moved)  # the view changed completely
    assert len(motion(moved)) == 0 and motion.skipped and motion.share > 0.3


def test_bad_options_and_a_frame_of_another_size_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        MotionDetector(dilate=4)
    with pytest.raises(InvalidInputError):
        MotionDetector(max_share=0)
    motion = MotionDetector()
    motion(_scene(0))
    with pytest.raises(InvalidInputError, match="frame of"):
        motion(np.zeros((60, 80, 3), np.uint8))


def test_in_a_video_moving_blobs_are_redacted_though_every_detector_is_blind() -> None:
    def blind(image: np.ndarray) -> Detections:
        return Detections.empty()

    def anonymize(frame, carry, index):  # type: ignore[no-untyped-def]
        return anonymize_image(frame, detectors={"body": blind}, method="mask", carry=carry, verify="off")

    frames = [_scene(i) for i in range(12)]
    outcomes = list(anonymize_frames(frames, anonymize=anonymize, tracker=IouTracker(),
                                     motion=MotionDetector(history=20, min_area=50)))  # fmt: skip
    last = outcomes[-1]
    assert last.moving == 1 and last.as_row()["moving"] == 1 and last.detected == 0
    walker = last.image[50:80, 64:76]
    assert not (walker == (200, 30, 30)).all(axis=-1).any()  # masked: no pixel of the walker left
    without = list(anonymize_frames(frames, anonymize=anonymize, tracker=IouTracker()))[-1]
    assert without.moving == 0 and (without.image[50:80, 64:76] == (200, 30, 30)).all()

"""Region verification: windows, merging, the change check, crops at the whole image's scale, the engine."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.engine import anonymize_image
from tasks.anonymize.regions import (
    ALIGN,
    MIN_MARGIN,
    covers_changes,
    detect_changed,
    merge,
    overlapping,
    windows,
)
from tasks.anonymize.scaled import Downscaled
from tasks.types import Detections


def dets(boxes: list[list[int]], category: str = "face") -> Detections:
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    return Detections(b, np.ones(len(b), np.float32), (category,) * len(b))


class Textured:
    """Reports `boxes` (full-image coordinates) whose pixels still have detail (std > 20), on the whole
    image or, shifted, on any crop that contains them whole; records every input shape it saw."""

    def __init__(self, boxes: list[list[int]], context: str = "box") -> None:
        self.boxes, self.context, self.seen = np.asarray(boxes, np.int64).reshape(-1, 4), context, []

    def _find(self, image: np.ndarray, x0: int, y0: int, full: tuple[int, int]) -> Detections:
        h, w = image.shape[:2]
        keep = []
        for bx0, by0, bx1, by1 in self.boxes - [x0, y0, x0, y0]:
            inside = bx0 >= 0 and by0 >= 0 and bx1 <= w and by1 <= h
            if inside and image[by0:by1, bx0:bx1].std() > 20:
                keep.append([bx0, by0, bx1, by1])
        return dets(keep)

    def __call__(self, image: np.ndarray) -> Detections:
        self.seen.append(image.shape[:2])
        return self._find(image, 0, 0, image.shape[:2])

    def detect_crop(self, crop: np.ndarray, *, full_shape: tuple[int, int]) -> Detections:
        self.seen.append(crop.shape[:2])
        # the test places crops by their content: the engine's windows are recomputed here, around the boxes
        # and, after escalation rounds, around the boxes grown by them too
        from tasks.anonymize.engine import ESCALATE_GROW, OWN_ROUNDS, grow

        h, w = full_shape
        grown = [grow(self.boxes, ESCALATE_GROW * k, width=w, height=h) for k in range(OWN_ROUNDS + 1)]
        wins = np.concatenate([windows(np.concatenate(grown[: k + 1]), width=w, height=h, context=self.context)
                               for k in range(OWN_ROUNDS + 1)])  # fmt: skip
        for x0, y0, x1, y1 in wins:
            if (y1 - y0, x1 - x0) == crop.shape[:2]:
                return self._find(crop, int(x0), int(y0), full_shape)
        raise AssertionError(f"a crop {crop.shape} that is none of the windows")


def test_windows_grow_each_box_by_its_side_and_merge() -> None:
    w = windows(np.array([[100, 100, 130, 140]]), width=400, height=300, context="box")
    # grown by max(30, 40) = 40 each side to [60, 60, 170, 180], snapped outwards to the 32 px grid
    np.testing.assert_array_equal(w, [[32, 32, 192, 192]])
    small = windows(np.array([[10, 10, 14, 14]]), width=400, height=300, context="box")
    assert 14 + MIN_MARGIN <= 32 and ALIGN == 32
    np.testing.assert_array_equal(small, [[0, 0, 32, 32]])  # clipped at 0, the minimum margin, snapped
    two = windows(np.array([[100, 100, 130, 130], [150, 100, 180, 130]]), width=400, height=300, context="box")
    np.testing.assert_array_equal(two, [[64, 64, 224, 160]])  # they overlap once grown: one window
    rows = windows(np.array([[100, 100, 130, 110]]), width=400, height=300, context="row")
    np.testing.assert_array_equal(rows, [[0, 64, 400, 128]])  # full width, rows grown by max(10, 16), snapped
    edge = windows(np.array([[370, 280, 390, 295]]), width=400, height=300, context="box")
    np.testing.assert_array_equal(edge, [[320, 256, 400, 300]])  # the grid stops at the image's edge


def test_merge_is_transitive() -> None:
    chain = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [9, 0, 21, 10], [50, 50, 60, 60]])
    np.testing.assert_array_equal(merge(chain), [[0, 0, 30, 10], [50, 50, 60, 60]])


def test_covers_changes_and_overlapping() -> None:
    a = np.zeros((50, 50, 3), np.uint8)
    b = a.copy()
    b[10:20, 10:20] = 255
    assert covers_changes(a, b, np.array([[10, 10, 20, 20]]))
    b[30, 30] = 1
    assert not covers_changes(a, b, np.array([[10, 10, 20, 20]]))
    d = dets([[0, 0, 10, 10], [15, 15, 25, 25], [40, 40, 45, 45]])
    np.testing.assert_array_equal(overlapping(d, np.array([[9, 9, 16, 16]])).boxes, [[0, 0, 10, 10], [15, 15, 25, 25]])
    assert len(overlapping(d, np.zeros((0, 4), np.int64))) == 0


@pytest.fixture
def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (400, 600, 3), dtype=np.uint8)


def test_a_small_change_is_verified_on_a_window_and_an_unfixed_box_survives(photo: np.ndarray) -> None:
    """A face whose redaction left it textured is found again on its window, at full-image coordinates;
    a textured face that nothing changed is not reported (the first pass owns it)."""
    det = Textured([[100, 100, 140, 150], [400, 200, 440, 250]])
    out = photo.copy()
    found, windowed = detect_changed(photo, out, np.array([[100, 100, 140, 150]]), {"face": det})
    assert windowed and det.seen == [(192, 160)]  # 50 px margin each side, snapped: a window, not the image
    np.testing.assert_array_equal(found["face"].boxes, [[100, 100, 140, 150]])


def test_a_change_outside_the_boxes_falls_back_to_the_whole_image(photo: np.ndarray) -> None:
    det = Textured([[100, 100, 140, 150], [400, 200, 440, 250]])
    out = photo.copy()
    out[5, 5] = out[5, 5] + 1
    found, windowed = detect_changed(photo, out, np.array([[100, 100, 140, 150]]), {"face": det})
    assert not windowed and det.seen == [(400, 600)]
    assert len(found["face"]) == 2  # the whole mode: everything the detector reports counts


def test_large_windows_fall_back_to_one_whole_pass(photo: np.ndarray) -> None:
    det = Textured([[100, 50, 300, 350]])
    found, windowed = detect_changed(photo, photo.copy(), np.array([[100, 50, 300, 350]]), {"face": det})
    assert not windowed and det.seen == [(400, 600)] and len(found["face"]) == 1


def test_engine_regions_and_whole_agree_and_regions_sees_less(photo: np.ndarray) -> None:
    for mode, shapes in (("regions", [(400, 600), (192, 160)]), ("whole", [(400, 600), (400, 600)])):
        det = Textured([[100, 100, 140, 150]])
        result = anonymize_image(photo, detectors={"face": det}, method="mask", verify=mode)
        assert result.image is not None and result.quarantine_reason is None
        assert det.seen == shapes, mode
    with pytest.raises(Exception, match="verify must be one of"):
        anonymize_image(photo, detectors={"face": Textured([])}, verify="sometimes")


def test_engine_regions_quarantines_what_survives(photo: np.ndarray) -> None:
    """A detector that fires on the box whatever its pixels: found again on the window, escalated to a
    mask, found again, quarantined: the same decision as the whole-image pass."""

    class Always(Textured):
        def _find(self, image: np.ndarray, x0: int, y0: int, full: tuple[int, int]) -> Detections:
            b = self.boxes - [x0, y0, x0, y0]
            return dets([list(map(int, r)) for r in b if r[0] >= 0 and r[1] >= 0])

    for mode in ("regions", "whole"):
        result = anonymize_image(photo, detectors={"face": Always([[100, 100, 140, 150]])}, method="mask", verify=mode)
        assert result.image is None and result.quarantine_reason == "sensitive content survived: 1 face", mode


def test_downscaled_crops_see_the_whole_images_scale() -> None:
    """Under `detect_max_side`, a crop is shrunk by the whole image's factor, not passed at full size."""
    seen: list[tuple[int, ...]] = []

    def inner(image: np.ndarray) -> Detections:
        seen.append(image.shape[:2])
        return dets([[2, 2, 10, 10]])

    d = Downscaled(inner, max_side=300)  # 1200 px → factor 1/4
    crop = np.zeros((200, 100, 3), np.uint8)
    found = d.detect_crop(crop, full_shape=(800, 1200))
    assert seen == [(50, 25)]
    np.testing.assert_array_equal(found.boxes, [[8, 8, 40, 40]])  # mapped back ×4
    assert d.context == "box"


def test_ocr_on_a_row_band_reads_what_the_whole_image_reads() -> None:
    """The OCR detector on a full-width band (its `context`), at the whole image's scale, finds the
    same personal line as on the whole 256 px image, at the same place."""
    from tasks.anonymize.detectors import OcrTextDetector
    from tests.tasks._anonymize_scenes import background, put_text

    img = background(np.random.default_rng(3), 256)
    put_text(img, "+1 555 014 2231", x=40, y=150, scale=0.45, fg=(20, 20, 20), bg=(235, 235, 235))
    ocr = OcrTextDetector()
    whole = ocr(img)
    assert ocr.context == "row" and whole.category == ("text",)
    (x0, y0, x1, y1), = windows(whole.boxes, width=256, height=256, context="row")
    band = ocr.detect_crop(np.ascontiguousarray(img[y0:y1, x0:x1]), full_shape=(256, 256))
    assert band.text == whole.text
    assert np.abs(band.boxes + [x0, y0, x0, y0] - whole.boxes).max() <= 3
    assert ocr._ocr.text_det.limit_side_len == ocr.limit_side_len  # restored


@pytest.mark.slow  # 300 builtin images anonymized twice with the real detectors: ~10 min on one core
def test_regions_and_whole_make_the_same_quarantine_decisions_on_300_builtin_images() -> None:
    from bench.verify_regions import compare

    c = compare(images=300, size=256)
    assert c.images == 300 and c.windowed >= 20  # windows were used (27 when written), not only the fallback
    assert c.disagreements == []

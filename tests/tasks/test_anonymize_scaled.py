"""Detection on a downscaled copy: boxes come back at full resolution and never shrink."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anonymize.scaled import Downscaled
from tasks.errors import InvalidInputError
from tasks.types import Detections


def _bright_square(image: np.ndarray) -> Detections:
    """A fake detector: the box around the pixels brighter than 200, and the size it was given."""
    ys, xs = np.nonzero(image[..., 0] > 200)
    seen.append(image.shape[:2])
    if not len(ys):
        return Detections.empty()
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.int64)
    return Detections(box, np.ones(1, np.float32), ("face",))


seen: list[tuple[int, int]] = []


def test_boxes_map_back_to_full_resolution_and_cover_the_object() -> None:
    image = np.zeros((1200, 1600, 3), np.uint8)
    image[300:500, 800:1000] = 255
    seen.clear()
    found = Downscaled(_bright_square, max_side=400)(image)
    assert seen == [(300, 400)]
    x0, y0, x1, y1 = found.boxes[0]
    assert x0 <= 800 and y0 <= 300 and x1 >= 1000 and y1 >= 500  # covers the object
    assert x1 - x0 <= 208 and y1 - y0 <= 208  # and not much more (one cell of the 4x downscale each side)
    assert found.category == ("face",)


def test_small_images_pass_through_and_bad_sides_are_refused() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    image[10:20, 30:40] = 255
    seen.clear()
    assert Downscaled(_bright_square, max_side=400)(image).boxes.tolist() == [[30, 10, 40, 20]]
    assert seen == [(100, 120)]
    with pytest.raises(InvalidInputError, match="detect_max_side"):
        Downscaled(_bright_square, max_side=8)


class _Keeper:
    """A fake OCR detector with a first pass: redacts the bright square, keeps the grey one."""

    def __call__(self, image: np.ndarray) -> Detections:
        return self.detect_and_keep(image)[0]

    def detect_and_keep(self, image: np.ndarray) -> tuple[Detections, Detections]:
        grey = np.zeros_like(image)
        grey[(image > 90) & (image < 110)] = 255
        return _bright_square(image), _bright_square(grey)


def test_the_first_pass_keeps_its_kept_lines_at_full_resolution() -> None:
    """The engine's first pass calls `detect_and_keep`: through `Downscaled` it lost the OCR's kept lines
    (and an oriented detector's chosen turns), so verification could not tell a kept line from new text."""
    image = np.zeros((1200, 1600, 3), np.uint8)
    image[300:500, 800:1000] = 255
    image[800:900, 100:500] = 100
    seen.clear()
    found, kept = Downscaled(_Keeper(), max_side=400).detect_and_keep(image)
    assert seen == [(300, 400), (300, 400)]  # one pass, on the small copy
    assert found.boxes[0][0] <= 800 and found.boxes[0][2] >= 1000
    x0, y0, x1, y1 = kept.boxes[0]
    assert x0 <= 100 and y0 <= 800 and x1 >= 500 and y1 >= 900 and x1 - x0 <= 408
    small, small_kept = Downscaled(_Keeper(), max_side=4000).detect_and_keep(image)
    assert small_kept.boxes.tolist() == [[100, 800, 500, 900]]
    plain_found, plain_kept = Downscaled(_bright_square, max_side=400).detect_and_keep(image)
    assert len(plain_kept) == 0 and len(plain_found) == 1

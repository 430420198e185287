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

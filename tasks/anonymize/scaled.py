"""Detection on a downscaled copy of a large photo, with the boxes mapped back to full resolution.

The anonymizer's detectors are tuned for faces of tens of pixels; on a 6000 px photo a full-resolution
pass costs minutes and finds nothing more. `Downscaled` runs a detector on a copy whose longer side is
`max_side` and scales its boxes back up (rounded outwards, so a box never shrinks), while the
obfuscation and the output stay at full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.anonymize.regions import context_of, detect_crop
from tasks.errors import InvalidInputError
from tasks.types import Detections, Detector, Image, check_image


class Downscaled:
    """A detector that sees images no larger than `max_side` on their longer side.

    Args:
        inner: the detector to run.
        max_side: longest side it sees (>= 32); smaller images pass through unchanged.
    """

    def __init__(self, inner: Detector, *, max_side: int) -> None:
        if max_side < 32:
            raise InvalidInputError(f"anonymize.detect_max_side must be >= 32, got {max_side}")
        self.inner, self.max_side = inner, max_side

    @property
    def context(self) -> str:
        """The inner detector's verification context ("row" or "box": `tasks.anonymize.regions`)."""
        return context_of(self.inner)

    def __call__(self, image: Image) -> Detections:
        h, w = check_image(image, name="Downscaled").shape[:2]
        if max(h, w) <= self.max_side:
            return self.inner(image)
        return _rescaled(image, self.max_side / max(h, w), self.inner)

    def detect_crop(self, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
        """The inner detector on a crop of an image of `full_shape` (H, W), at the whole image's scale."""
        h, w = full_shape
        if max(h, w) <= self.max_side:
            return detect_crop(self.inner, crop, full_shape=full_shape)
        scale = self.max_side / max(h, w)
        small = (max(1, round(h * scale)), max(1, round(w * scale)))
        return _rescaled(check_image(crop, name="Downscaled"), scale,
                         lambda im: detect_crop(self.inner, im, full_shape=small))


def _rescaled(image: Image, scale: float, run: Detector) -> Detections:
    """`run` on `image` resized by `scale`, its boxes mapped back (rounded outwards, clipped)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    found = run(np.ascontiguousarray(small))
    if not len(found):
        return found
    sx, sy = w / small.shape[1], h / small.shape[0]
    b = found.boxes.astype(np.float64)
    boxes = np.stack([np.floor(b[:, 0] * sx), np.floor(b[:, 1] * sy), np.ceil(b[:, 2] * sx),
                      np.ceil(b[:, 3] * sy)], axis=1)
    boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.int64)
    return Detections(boxes, found.scores, found.category, found.text)

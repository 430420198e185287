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

    def detect_and_keep(self, image: Image) -> tuple[Detections, Detections]:
        """The inner detector's first pass (to redact, kept lines: `detect_and_keep` where it has one, so
        the OCR's kept lines and an oriented detector's chosen turns survive the scaling), boxes mapped back."""
        h, w = check_image(image, name="Downscaled").shape[:2]
        keep = getattr(self.inner, "detect_and_keep", None)
        if keep is None:
            return self(image), Detections.empty()
        if max(h, w) <= self.max_side:
            return keep(image)  # type: ignore[no-any-return]
        kept: list[Detections] = []

        def found(small: Image) -> Detections:
            redact, keep_lines = keep(small)
            kept.append(keep_lines)
            return redact  # type: ignore[no-any-return]

        scale = self.max_side / max(h, w)
        redact = _rescaled(image, scale, found)
        return redact, _mapped_back(kept[0], image.shape[:2], _small_shape((h, w), scale))

    def detect_crop(self, crop: Image, *, full_shape: tuple[int, int]) -> Detections:
        """The inner detector on a crop of an image of `full_shape` (H, W), at the whole image's scale."""
        h, w = full_shape
        if max(h, w) <= self.max_side:
            return detect_crop(self.inner, crop, full_shape=full_shape)
        scale = self.max_side / max(h, w)
        small = (max(1, round(h * scale)), max(1, round(w * scale)))
        return _rescaled(
            check_image(crop, name="Downscaled"),
            scale,
            lambda im: detect_crop(self.inner, im, full_shape=small),
        )


def _small_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _rescaled(image: Image, scale: float, run: Detector) -> Detections:
    """`run` on `image` resized by `scale`, its boxes mapped back (rounded outwards, clipped)."""
    sh, sw = _small_shape(image.shape[:2], scale)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return _mapped_back(run(np.ascontiguousarray(small)), image.shape[:2], (sh, sw))


def _mapped_back(found: Detections, shape: tuple[int, int], small: tuple[int, int]) -> Detections:
    """Boxes found on an image of (H, W) `small`, in the pixels of one of (H, W) `shape` (rounded outwards)."""
    if not len(found):
        return found
    h, w = shape
    sx, sy = w / small[1], h / small[0]
    b = found.boxes.astype(np.float64)
    boxes = np.stack(
        [np.floor(b[:, 0] * sx), np.floor(b[:, 1] * sy), np.ceil(b[:, 2] * sx), np.ceil(b[:, 3] * sy)], axis=1
    )
    boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.int64)
    return Detections(boxes, found.scores, found.category, found.text)

"""The licence-plate Haar cascade: a second plate detector that does not read the characters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tasks.anonymize.detectors.common import (
    BACKEND_ERRORS,
    cascade_dets,
    nonempty_boxes,
)
from tasks.boxes import pad_boxes
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Image, check_image

_PLATE_CASCADE = "haarcascade_russian_plate_number.xml"


class PlateCascadeDetector:
    """OpenCV's licence-plate Haar cascade: a second plate detector that does not read the characters.

    It finds plate-shaped boards the OCR pass misreads (a plate whose string fails the plate pattern
    is still redacted as personal text, but one OCR does not detect at all is not). It fires on shop
    signs (boards with letters), so it is off in the stage's defaults (`anonymize.plate.cascade`; numbers:
    docs/measurements-archive.md#text-detector-options). Category "plate".
    """

    def __init__(self, *, neighbors: int = 2, min_width: int = 20, pad: float = 0.15) -> None:
        """Configure the detector; the cascade loads on first call.

        Args:
            neighbors: the cascade's minNeighbors (higher: fewer false positives).
            min_width: smallest plate width searched, in pixels (>= the cascade's 20-px-wide window).
            pad: each box grows by this fraction of its size on every side.
        """
        if neighbors < 0 or min_width < 20 or pad < 0:
            raise InvalidInputError(
                f"plate cascade: bad options neighbors={neighbors}, min_width={min_width}, pad={pad}"
            )
        self.neighbors, self.min_width, self.pad = neighbors, min_width, pad
        self._cascade: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cascade": None}

    def __call__(self, image: Image) -> Detections:
        """Find licence plates in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: OpenCV failed.
        """
        check_image(image)
        h, w = image.shape[:2]
        try:
            if self._cascade is None:
                self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / _PLATE_CASCADE))  # type: ignore[attr-defined]
                if self._cascade.empty():
                    raise AnonymizationError(f"plate cascade: cannot load {_PLATE_CASCADE} from cv2.data")
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            size = (self.min_width, max(8, round(self.min_width * 0.4)))
            rects, hits = self._cascade.detectMultiScale2(
                grey, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=size
            )
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"plate cascade failed on a {image.shape} image: {err}") from err
        dets = cascade_dets(rects, hits, neighbors=self.neighbors)
        dets = dets[nonempty_boxes(dets, width=w, height=h)]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=w, height=h)
        return Detections(boxes, dets[:, 4].astype(np.float32), ("plate",) * len(boxes))

"""People on fixed CCTV views by motion: what moves against a learned background is redacted as "body".

On wide CCTV views faces are 8-15 px and people 30-110 px tall: no face detector finds them and the HOG /
Haar people detectors miss one in three (docs/anonymization.md#bodies-and-cctv, measured on `vtest.avi`). A fixed
camera offers a cue those per-image detectors cannot use: people move. `MotionDetector` keeps OpenCV's
Gaussian-mixture background model (MOG2: Zivkovic 2004, Zivkovic & van der Heijden 2006) over the frames
of one video and returns the boxes of the foreground blobs of each frame:

1. MOG2 with its shadow test on; shadow pixels (value 127) are not foreground (a shadow shows no one).
2. A 3×3 opening drops single-pixel noise; a `dilate`-px square dilation joins a person's limbs and
   head into one blob and reaches a few pixels past its outline.
3. Connected components of at least `min_area` px become boxes, padded by `pad` of their size per side.

It only adds redaction (the frame's detectors and tracker still run). What it cannot see: a person who
stands still from the first frame on (never foreground) or for longer than about `history` frames (they
fade into the background; the detectors and the tracker remain). A moving camera or a sudden change of
light makes most of a frame foreground: when more than `max_share` of a frame's pixels are foreground the
cue is skipped for that frame (`skipped` says so; the model relearns within ~`history` frames) rather
than redacting the whole picture. Stateful: one instance per video, frames in order.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tasks.anonymize.detectors.common import BACKEND_ERRORS
from tasks.boxes import pad_boxes
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Image, check_image


class MotionDetector:
    """Foreground blobs of a fixed camera's frames (MOG2 background subtraction), as "body" boxes."""

    def __init__(self, *, history: int = 100, var_threshold: float = 16.0, min_area: int = 150,
                 dilate: int = 9, pad: float = 0.05, max_share: float = 0.3) -> None:  # fmt: skip
        """Args:
        history: frames the background model remembers (MOG2's `history`).
        var_threshold: squared Mahalanobis distance above which a pixel is foreground (MOG2's).
        min_area: smallest blob kept, in pixels (after the dilation).
        dilate: side of the square that joins a blob's parts, in pixels (odd, >= 1).
        pad: each box grows by this fraction of its size on every side.
        max_share: above this share of foreground pixels the frame's cue is skipped (camera moved).
        """
        if history < 1 or var_threshold <= 0 or min_area < 1 or dilate < 1 or dilate % 2 == 0 or pad < 0 \
                or not 0 < max_share <= 1:  # fmt: skip
            raise InvalidInputError(f"motion detector: bad options history={history}, var_threshold={var_threshold}, "
                                    f"min_area={min_area}, dilate={dilate}, pad={pad}, max_share={max_share}")  # fmt: skip
        self.history, self.var_threshold, self.min_area = history, var_threshold, min_area
        self.dilate, self.pad, self.max_share = dilate, pad, max_share
        self._model: Any = None
        self._shape: tuple[int, ...] | None = None
        self.skipped = False  # whether the last frame's cue was skipped (too much foreground)
        self.share = 0.0  # the last frame's share of foreground pixels

    def __call__(self, frame: Image) -> Detections:
        """Feed the next frame ((H, W, 3) uint8; every frame of the video, in order); return its moving blobs.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array, or a frame size other than the first one's.
            AnonymizationError: OpenCV failed.
        """
        check_image(frame)
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise InvalidInputError(f"motion detector: frame of {frame.shape} after frames of {self._shape}")
        height, width = frame.shape[:2]
        try:
            if self._model is None:
                self._model = cv2.createBackgroundSubtractorMOG2(history=self.history, varThreshold=self.var_threshold,
                                                                 detectShadows=True)  # fmt: skip
            raw = self._model.apply(frame)
            foreground = (raw == 255).astype(np.uint8)  # 127: shadow
            self.share = float(foreground.mean())
            self.skipped = self.share > self.max_share
            if self.skipped:
                return Detections.empty()
            foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            foreground = cv2.dilate(foreground, np.ones((self.dilate, self.dilate), np.uint8))
            n, _, stats, _ = cv2.connectedComponentsWithStats(foreground)
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"motion detector failed on a {frame.shape} frame: {err}") from err
        blobs = stats[1:n][stats[1:n, cv2.CC_STAT_AREA] >= self.min_area]  # row 0: the background
        if not len(blobs):
            return Detections.empty()
        xywh = blobs[:, :4].astype(np.float64)
        boxes = pad_boxes(
            np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], pad=self.pad, width=width, height=height
        )
        return Detections(boxes, np.ones(len(boxes), np.float32), ("body",) * len(boxes))

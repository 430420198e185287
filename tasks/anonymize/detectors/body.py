"""The body detector: OpenCV's HOG people detector united with the Haar full/upper-body cascades and, as an
option, MediaPipe's BlazePose person detector on tiles (`pose.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import (
    BACKEND_ERRORS,
    NMS_IOU,
    cascade_dets,
    nonempty_boxes,
)
from tasks.anonymize.detectors.pose import PoseDetector
from tasks.boxes import nms, pad_boxes
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Image, check_image

_BODY_CASCADES = {"fullbody": "haarcascade_fullbody.xml", "upperbody": "haarcascade_upperbody.xml"}


class BodyDetector:
    """OpenCV's HOG people detector (Dalal & Triggs 2005) united with the Haar full/upper-body cascades.

    Classic and weak (see the anonymize report for its measured recall and false positives); not in the
    default targets. HOG's window is 64×128, so it finds people at least `128 / upscale` px tall.
    Returns category "body".
    """

    def __init__(
        self,
        *,
        hog: bool = True,
        cascades: tuple[str, ...] = ("fullbody", "upperbody"),
        hit_threshold: float = 0.5,
        neighbors: int = 3,
        upscale: float = 1.0,
        min_size: int = 32,
        pad: float = 0.05,
        pose: bool = False,
        pose_tile: int = 192,
        pose_threshold: float = 0.5,
    ) -> None:
        """Configure the detector; models load on first call.

        Args:
            hog: run the HOG people detector.
            cascades: Haar cascades to run, among "fullbody" and "upperbody".
            hit_threshold: HOG SVM score threshold (higher: fewer false positives).
            neighbors: the cascades' minNeighbors.
            upscale: both run on a copy upscaled by this factor (small people), >= 1; 2 finds people
                from 64 px tall with HOG but is ~4x slower and doubles the false positives (measured).
            min_size: smallest body side the cascades search, in original pixels, >= 8.
            pad: each box grows by this fraction of its size on every side.
            pose: also run BlazePose's person detector (`PoseDetector`) on the whole image and on tiles.
            pose_tile: its tile side in pixels; pose_threshold: its smallest score kept.
        """
        if (
            not set(cascades) <= set(_BODY_CASCADES)
            or not (hog or cascades or pose)
            or upscale < 1
            or pad < 0
            or min_size < 8
        ):
            raise InvalidInputError(
                f"body detector: bad options hog={hog}, cascades={cascades}, upscale={upscale}, pad={pad}"
            )
        self.hog, self.cascades, self.hit_threshold = hog, tuple(cascades), hit_threshold
        self.neighbors, self.upscale, self.pad, self.min_size = neighbors, upscale, pad, min_size
        self._models: Any = None
        self._pose = PoseDetector(tile=pose_tile, threshold=pose_threshold) if pose else None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_models": None}

    def _load(self) -> None:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        haar = {}
        for name in self.cascades:
            haar[name] = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / _BODY_CASCADES[name]))  # type: ignore[attr-defined]
            if haar[name].empty():
                raise AnonymizationError(
                    f"body detector: cannot load the Haar cascade {_BODY_CASCADES[name]}"
                )
        self._models = (hog, haar)

    def _find(self, grey: NDArray[Any]) -> NDArray[np.float64]:
        hog, haar = self._models
        found = [np.zeros((0, 5))]
        if self.hog and min(grey.shape) >= 128:
            rects, weights = hog.detectMultiScale(
                grey, hitThreshold=self.hit_threshold, winStride=(8, 8), scale=1.05
            )
            r = np.asarray(rects, np.float64).reshape(-1, 4)
            w = np.asarray(weights, np.float64).reshape(-1)
            found.append(np.c_[r[:, :2], r[:, :2] + r[:, 2:], 1 - np.exp(-w)])  # SVM margin → (0, 1)
        for cascade in haar.values():
            side = round(self.min_size * self.upscale)
            rects, hits = cascade.detectMultiScale2(
                grey, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=(side, side)
            )
            found.append(cascade_dets(rects, hits, neighbors=self.neighbors))
        return np.concatenate(found)

    def __call__(self, image: Image) -> Detections:
        """Find people in an (H, W, 3) uint8 RGB image; boxes are padded and clipped.

        Raises:
            InvalidInputError: not an (H, W, 3) uint8 array.
            AnonymizationError: OpenCV failed.
        """
        check_image(image)
        h, w = image.shape[:2]
        try:
            if self._models is None:
                self._load()
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            if self.upscale != 1:
                grey = cv2.resize(
                    grey, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
                )
            dets = self._find(grey)
        except BACKEND_ERRORS as err:
            raise AnonymizationError(f"body detector failed on a {image.shape} image: {err}") from err
        dets[:, :4] /= self.upscale
        if self._pose is not None:
            dets = np.concatenate([dets, self._pose(image)])
        dets = dets[nms(dets[:, :4], dets[:, 4].astype(np.float32), iou=NMS_IOU)]
        dets = dets[nonempty_boxes(dets, width=w, height=h)]
        boxes = pad_boxes(dets[:, :4], pad=self.pad, width=w, height=h)
        return Detections(boxes, dets[:, 4].astype(np.float32), ("body",) * len(boxes))

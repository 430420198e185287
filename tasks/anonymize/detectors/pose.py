"""People by MediaPipe's BlazePose detector (the `pose_detection.tflite` of the mediapipe 0.10.21 wheel), run
by LiteRT (`ai-edge-litert`) on overlapping tiles, so small CCTV people are seen at the model's scale.

The model (Bazarevsky et al. 2020, "BlazePose") is an SSD over 2,254 anchors on a 224×224 input; each anchor
regresses a face box and 4 keypoints: the mid-hip centre, a point on the circle around the whole body, the
mid-shoulder centre and a point on the upper-body circle. A person's box is the square around the
whole-body circle (what MediaPipe's pose pipeline crops for its landmark model), so it holds the whole
person whichever way they face. MediaPipe runs it once on the whole picture, for one near person; here it
also runs on `tile`-px tiles at half-tile strides: on vtest.avi's 768×576 frames people are 30-110 px tall,
a third to a half of a 192 px tile.

The model file is not a Python package: `make setup` takes it out of the mediapipe wheel (which cannot be
installed beside numpy 2) and checks its SHA-256; `POSE_MODEL` is where it lies.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.detectors.common import BACKEND_ERRORS, NMS_IOU
from tasks.boxes import nms
from tasks.errors import AnonymizationError, InvalidInputError

POSE_MODEL = Path(sys.prefix) / "share" / "privtrail" / "pose_detection.tflite"
POSE_MODEL_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"
_SIDE = 224  # the model's input side
_ERRORS: tuple[type[Exception], ...] = (*BACKEND_ERRORS, RuntimeError, ValueError)  # LiteRT raises these


@lru_cache(maxsize=1)
def ssd_anchors() -> NDArray[np.float64]:
    """(2254, 2) anchor centres in [0, 1]: MediaPipe's SsdAnchorsCalculator for pose detection (5 layers,
    strides 8, 16, 32, 32, 32, one aspect ratio, fixed anchor size: 2 anchors per cell per layer)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):  # layers of the same stride share their grid
        grid = -(-_SIDE // stride)
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.c_[(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid]
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres)


def decode(
    regressors: NDArray[np.float32], logits: NDArray[np.float32], *, threshold: float
) -> NDArray[np.float64]:
    """(2254, 12) regressors and (2254,) logits of one 224×224 input → (K, 4) [cx, cy, radius, score] of the
    whole-body circles scoring >= `threshold`, in input pixels."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
    keep = np.flatnonzero(scores >= threshold)
    anchors = ssd_anchors()[keep] * _SIDE
    r = regressors[keep].astype(np.float64)
    hip = anchors + r[:, 4:6]  # keypoint 0: mid-hip centre
    rim = anchors + r[:, 6:8]  # keypoint 1: a point on the whole-body circle
    radius = np.hypot(*(rim - hip).T)
    return np.asarray(np.c_[hip, radius, scores[keep]], np.float64)


class PoseDetector:
    """BlazePose's person detector on the whole image and on overlapping tiles; (N, 5) [x0, y0, x1, y1, score]."""

    def __init__(
        self, *, tile: int = 192, threshold: float = 0.5, threads: int = 1, model: Path = POSE_MODEL
    ) -> None:
        """Args:
        tile: side of the square tiles, in image pixels (>= 32); strides are half a tile.
        threshold: the smallest detection score kept (MediaPipe's default 0.5).
        threads: LiteRT interpreter threads.
        model: the `pose_detection.tflite` file.
        """
        if tile < 32 or not 0 < threshold < 1 or threads < 1:
            raise InvalidInputError(
                f"pose detector: bad options tile={tile}, threshold={threshold}, threads={threads}"
            )
        self.tile, self.threshold, self.threads, self.model = tile, threshold, threads, Path(model)
        self._interpreter: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_interpreter": None}

    def _load(self) -> Any:
        if not self.model.is_file():
            raise AnonymizationError(f"pose detector: no model at {self.model} (run `make setup`, which extracts it "
                                     "from the mediapipe 0.10.21 wheel), or turn anonymize.body.pose off")  # fmt: skip
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise AnonymizationError(f"pose detector: needs the ai-edge-litert package: {err}") from err
        interpreter = Interpreter(model_path=str(self.model), num_threads=self.threads)
        interpreter.allocate_tensors()
        return interpreter

    def _run(self, crop: NDArray[np.uint8]) -> NDArray[np.float64]:
        """Circles [cx, cy, radius, score] of one square (S, S, 3) RGB crop, in crop pixels."""
        it = self._interpreter
        side = crop.shape[0]
        x = cv2.resize(
            crop, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA if side > _SIDE else cv2.INTER_LINEAR
        )
        it.set_tensor(it.get_input_details()[0]["index"], (x.astype(np.float32) / 127.5 - 1.0)[None])
        it.invoke()
        out = {tuple(d["shape"])[-1]: it.get_tensor(d["index"])[0] for d in it.get_output_details()}
        circles = decode(out[12], out[1][:, 0], threshold=self.threshold)
        circles[:, :3] *= side / _SIDE
        return circles

    def __call__(self, image: NDArray[np.uint8]) -> NDArray[np.float64]:
        """(N, 5) float [x0, y0, x1, y1, score] of the people in an (H, W, 3) uint8 RGB image, unclipped.

        Raises:
            AnonymizationError: the model is missing or LiteRT failed.
        """
        if self._interpreter is None:
            self._interpreter = self._load()
        h, w = image.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        square[:h, :w] = image  # the whole picture, padded to a square (MediaPipe letterboxes it so)
        crops = [(0, 0, square)]
        if min(h, w) > self.tile:
            step = self.tile // 2
            ys = sorted({*range(0, h - self.tile + 1, step), h - self.tile})
            xs = sorted({*range(0, w - self.tile + 1, step), w - self.tile})
            crops += [(x0, y0, image[y0 : y0 + self.tile, x0 : x0 + self.tile]) for y0 in ys for x0 in xs]
        found = [np.zeros((0, 5))]
        try:
            for x0, y0, crop in crops:
                c = self._run(np.ascontiguousarray(crop))
                cx, cy, r = c[:, 0] + x0, c[:, 1] + y0, c[:, 2]
                found.append(np.c_[cx - r, cy - r, cx + r, cy + r, c[:, 3]])
        except _ERRORS as err:
            raise AnonymizationError(f"pose detector failed on a {image.shape} image: {err}") from err
        dets = np.concatenate(found)
        return dets[nms(dets[:, :4], dets[:, 4].astype(np.float32), iou=NMS_IOU)]

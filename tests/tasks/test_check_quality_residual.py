"""check_quality residual face detection: dlib auditors on pasted LFW faces, clear and anonymized."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from tasks.auditors import RESIDUAL_DETECTORS
from tasks.coverage import residual_faces
from tasks.errors import InvalidInputError
from tasks.types import Detections

FACE_PX = 28  # small, as in the builtin dataset (24–72 px)


@pytest.fixture(scope="module")
def lfw() -> np.ndarray:
    return (data.lfw_subset() * 255).astype(np.uint8)  # (200, 25, 25); 0–99 faces, 100–199 non-faces


def _scene(lfw: np.ndarray, ids: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Paste LFW crops `ids` on a 4×2 grid over a 256×256 grass photo; return the image and their boxes."""
    img = np.repeat(data.grass()[:256, :256, None], 3, axis=2)
    boxes = []
    for k, i in enumerate(ids):
        x, y = 16 + 60 * (k % 4), 40 + 120 * (k // 4)
        img[y : y + size, x : x + size] = cv2.resize(lfw[i], (size, size), interpolation=cv2.INTER_CUBIC)[
            ..., None
        ]
        boxes.append([x, y, x + size, y + size])
    return img, np.array(boxes, np.int64)


def _pixelate(img: np.ndarray, boxes: np.ndarray, *, block: int = 8, pad: float = 0.2) -> np.ndarray:
    """Mosaic each box grown by `pad` (the anonymizer's defaults: block 8, pad 0.2)."""
    out = img.copy()
    for x0, y0, x1, y1 in boxes:
        d = round((x1 - x0) * pad)
        region = out[y0 - d : y1 + d, x0 - d : x1 + d]
        h, w = region.shape[:2]
        small = cv2.resize(region, (w // block, h // block), interpolation=cv2.INTER_AREA)
        region[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return out


def _blur(img: np.ndarray, boxes: np.ndarray, *, strength: float = 0.5, pad: float = 0.2) -> np.ndarray:
    out = img.copy()
    for x0, y0, x1, y1 in boxes:
        d = round((x1 - x0) * pad)
        region = out[y0 - d : y1 + d, x0 - d : x1 + d]
        region[:] = cv2.GaussianBlur(region, (0, 0), strength * min(region.shape[:2]))
    return out


def test_hog_finds_small_clear_faces_only_when_upscaled(lfw: np.ndarray) -> None:
    img, boxes = _scene(lfw, list(range(8)), FACE_PX)
    upscaled = RESIDUAL_DETECTORS["dlib_hog"](upsample=1, upscale=2)
    native = RESIDUAL_DETECTORS["dlib_hog"](upsample=1, upscale=1)
    # Measured (dlib-bin 20.0.1): 7 of 8 found upscaled (LFW #4 is missed), 0 of 8 without (28 px < 40 px).
    assert residual_faces(upscaled(img), boxes, match_iou=0.3) == (7, 7)
    assert residual_faces(native(img), boxes, match_iou=0.3) == (0, 0)
    dets = upscaled(img)
    assert dets.category == ("face",) * 7 and dets.boxes.dtype == np.int64
    assert ((dets.scores > 0.5) & (dets.scores <= 1)).all()  # logistic of a non-negative margin
    assert (dets.boxes[:, [0, 1]] >= 0).all() and (dets.boxes[:, [2, 3]] <= 256).all()


@pytest.mark.parametrize("obfuscate", [_pixelate, _blur], ids=["pixelate8", "blur0.5"])
def test_hog_finds_no_anonymized_face(lfw: np.ndarray, obfuscate) -> None:
    img, boxes = _scene(lfw, list(range(8)), FACE_PX)
    hog = RESIDUAL_DETECTORS["dlib_hog"](upsample=1, upscale=2)
    assert residual_faces(hog(obfuscate(img, boxes)), boxes, match_iou=0.3) == (0, 0)


def test_hog_still_sees_through_a_weak_mosaic(lfw: np.ndarray) -> None:
    # The auditor is not blind to anything altered: 2-px cells leave most faces detectable.
    img, boxes = _scene(lfw, list(range(8)), 36)
    hog = RESIDUAL_DETECTORS["dlib_hog"](upsample=1, upscale=2)
    found, _ = residual_faces(hog(_pixelate(img, boxes, block=2)), boxes, match_iou=0.3)
    assert found >= 5  # measured: 6 of 8 (7 are found clear); 3-px cells already hide all of them


def test_cnn_detector_loads_packaged_weights_and_finds_faces(lfw: np.ndarray) -> None:
    img, boxes = _scene(lfw, [0, 1], 48)
    crop = img[:144, :144].copy()  # both faces, padded, lie in the top-left 144×144: keeps the CNN fast
    cnn = RESIDUAL_DETECTORS["dlib_cnn"](upsample=1)
    assert residual_faces(cnn(crop), boxes, match_iou=0.3) == (2, 2)
    assert residual_faces(cnn(_pixelate(crop, boxes)), boxes, match_iou=0.3) == (0, 0)


def test_residual_faces_matching() -> None:
    gt = np.array([[0, 0, 10, 10], [50, 50, 70, 70], [100, 100, 120, 120]])
    dets = Detections(
        np.array([[1, 1, 11, 11], [2, 0, 12, 10], [55, 50, 85, 70], [0, 0, 10, 10], [200, 200, 210, 210]]),
        np.full(5, 0.9, np.float32),
        ("face", "face", "face", "plate", "face"),
    )
    # Face 0 matched twice counts once; face 1's IoU is 300/700 = 0.43; the plate box is not a face.
    assert residual_faces(dets, gt, match_iou=0.5) == (1, 4)
    assert residual_faces(dets, gt, match_iou=0.4) == (2, 4)
    assert residual_faces(Detections.empty(), gt, match_iou=0.5) == (0, 0)
    assert residual_faces(dets, np.zeros((0, 4), np.int64), match_iou=0.5) == (0, 4)
    with pytest.raises(InvalidInputError, match="match_iou"):
        residual_faces(dets, gt, match_iou=0.0)


def test_detector_options_and_images_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="upscale"):
        RESIDUAL_DETECTORS["dlib_hog"](upscale=0)
    with pytest.raises(InvalidInputError, match="image"):
        RESIDUAL_DETECTORS["dlib_hog"]()(np.zeros((32, 32), np.uint8))

"""Scenes for the anonymize tests, built at run time like the `builtin` dataset: a scikit-image photo
crop, real LFW faces pasted with feathered edges, rendered plate / PII / shop text, a digit placard.

Not a test module; `from tests.tasks._anonymize_scenes import ...`.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data as skdata
from sklearn.datasets import load_digits

_PHOTOS = (
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
)


@functools.cache
def _faces() -> NDArray[np.uint8]:
    return (skdata.lfw_subset()[:100] * 255).astype(np.uint8)  # 100 real 25x25 faces


@functools.cache
def scene_photo(name: str) -> NDArray[np.uint8]:
    img = getattr(skdata, name)()
    img = np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., :3]
    return np.ascontiguousarray(img).astype(np.uint8)


def background(rng: np.random.Generator, size: int = 256) -> NDArray[np.uint8]:
    img = scene_photo(_PHOTOS[rng.integers(len(_PHOTOS))])
    y, x = rng.integers(0, img.shape[0] - size + 1), rng.integers(0, img.shape[1] - size + 1)
    return img[y : y + size, x : x + size].copy()


def paste_face(img: NDArray[np.uint8], rng: np.random.Generator, *, side: int, x: int, y: int) -> list[int]:
    """Paste a random LFW face scaled to `side` px, lit at random, with feathered edges; return its box."""
    face = cv2.resize(_faces()[rng.integers(100)], (side, side), interpolation=cv2.INTER_CUBIC)
    face = np.clip(face.astype(np.float32) * rng.uniform(0.7, 1.2), 0, 255)[..., None]
    r = max(2, side // 8)
    alpha = cv2.GaussianBlur(np.pad(np.ones((side - 2 * r, side - 2 * r), np.float32), r), (0, 0), r / 2)[
        ..., None
    ]
    roi = img[y : y + side, x : x + side].astype(np.float32)
    img[y : y + side, x : x + side] = np.clip(alpha * face + (1 - alpha) * roi, 0, 255).astype(np.uint8)
    return [x, y, x + side, y + side]


def face_scene(
    rng: np.random.Generator, sides: list[int], size: int = 256
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """A photo crop with non-overlapping faces of the given sides; returns (image, (N, 4) boxes)."""
    img, boxes = background(rng, size), []
    for side in sides:
        for _ in range(100):
            x, y = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
            if all(x + side <= b[0] or b[2] <= x or y + side <= b[1] or b[3] <= y for b in boxes):
                break
        boxes.append(paste_face(img, rng, side=side, x=x, y=y))
    return img, np.asarray(boxes, np.int64)


def put_text(
    img: NDArray[np.uint8],
    text: str,
    *,
    x: int,
    y: int,
    scale: float,
    fg: tuple[int, int, int],
    bg: tuple[int, int, int],
    thickness: int = 1,
) -> list[int]:
    """Render `text` on a filled rectangle with its baseline at y; return the rectangle's box."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    box = [x - 3, y - h - 4, x + w + 3, y + base + 2]
    cv2.rectangle(img, tuple(box[:2]), (box[2], box[3]), bg, -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, thickness, cv2.LINE_AA)
    return box


def put_placard(img: NDArray[np.uint8], *, index: int, x: int, y: int, side: int) -> tuple[list[int], int]:
    """Paste sklearn digit `index` (8x8, upscaled to `side`) dark-on-light on a light placard; return (box, label)."""
    digits = load_digits()
    glyph = 255 - (digits.images[index] / 16 * 255).astype(np.uint8)
    glyph = cv2.resize(glyph, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = side // 4
    img[y - pad : y + side + pad, x - pad : x + side + pad] = 235
    img[y : y + side, x : x + side] = glyph[..., None]
    return [x - pad, y - pad, x + side + pad, y + side + pad], int(digits.target[index])


def coverage(gt: NDArray[np.int64], boxes: NDArray[np.int64]) -> float:
    """Largest fraction of the ground-truth box `gt` covered by any one of `boxes`."""
    if not len(boxes):
        return 0.0
    ix = np.minimum(gt[2], boxes[:, 2]) - np.maximum(gt[0], boxes[:, 0])
    iy = np.minimum(gt[3], boxes[:, 3]) - np.maximum(gt[1], boxes[:, 1])
    return float((ix.clip(0) * iy.clip(0)).max() / ((gt[2] - gt[0]) * (gt[3] - gt[1])))

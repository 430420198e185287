"""Obfuscate rectangular regions of an image: pixelate, blur or mask. Always on a copy.

Registry: `OBFUSCATORS[name](image, boxes, **options)`; `obfuscate` dispatches with the stage's params.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Image, check_image

Boxes = NDArray[np.int64]


def check_boxes(boxes: object, *, image: Image, name: str = "boxes") -> Boxes:
    """Return `boxes` as (N, 4) int64 if every box is non-empty and inside `image`.

    Args:
        boxes: (N, 4) integer [x0, y0, x1, y1] with 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H.
        image: (H, W, 3) uint8, the image the boxes refer to.
        name: how the error message names the boxes.
    Raises:
        InvalidInputError: not an (N, 4) integer array, or a box empty or outside the image.
    """
    if not isinstance(boxes, np.ndarray) or boxes.ndim != 2 or boxes.shape[1] != 4:
        desc = boxes.shape if isinstance(boxes, np.ndarray) else type(boxes).__name__
        raise InvalidInputError(f"{name}: expected an (N, 4) array of [x0, y0, x1, y1], got {desc}")
    if boxes.size and not np.issubdtype(boxes.dtype, np.integer):
        raise InvalidInputError(f"{name}: expected integer pixel coordinates, got {boxes.dtype}")
    b = boxes.astype(np.int64)
    h, w = image.shape[:2]
    bad = (
        (b[:, 0] < 0)
        | (b[:, 1] < 0)
        | (b[:, 2] > w)
        | (b[:, 3] > h)
        | (b[:, 0] >= b[:, 2])
        | (b[:, 1] >= b[:, 3])
    )
    if bad.any():
        raise InvalidInputError(
            f"{name}: box {b[np.flatnonzero(bad)[0]].tolist()} is empty or outside the {w}x{h} image"
        )
    return b


def pixelate_regions(image: Image, boxes: Boxes, *, block: int) -> Image:
    """Return a copy of `image` with each box replaced by a mosaic of `block`-pixel cells.

    Each cell holds the mean of the pixels it covers (area resampling), so no detail finer than
    `block` pixels survives inside a box.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        block: cell side in pixels, >= 1.
    Raises:
        InvalidInputError: wrong shape or dtype, box outside the image, block < 1.
    """
    out = check_image(image).copy()
    if block < 1:
        raise InvalidInputError(f"block: must be >= 1, got {block}")
    for x0, y0, x1, y1 in check_boxes(boxes, image=image):
        region = out[y0:y1, x0:x1]
        h, w = region.shape[:2]
        small = cv2.resize(region, (-(-w // block), -(-h // block)), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return out


def blur_regions(image: Image, boxes: Boxes, *, strength: float) -> Image:
    """Return a copy of `image` with each box Gaussian-blurred with sigma = strength × the box's short side.

    The blur reads only pixels inside the box (reflected at its border), so nothing outside changes.
    With the default strength 0.5 a face becomes a smooth blob: its eyes, nose and mouth are gone.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        strength: sigma as a fraction of the box's short side, > 0.
    Raises:
        InvalidInputError: wrong shape or dtype, box outside the image, strength <= 0.
    """
    out = check_image(image).copy()
    if not strength > 0:
        raise InvalidInputError(f"strength: must be > 0, got {strength}")
    for x0, y0, x1, y1 in check_boxes(boxes, image=image):
        sigma = max(strength * min(x1 - x0, y1 - y0), 0.5)
        region = np.ascontiguousarray(out[y0:y1, x0:x1])
        out[y0:y1, x0:x1] = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return out


def mask_regions(image: Image, boxes: Boxes, *, color: tuple[int, int, int] = (0, 0, 0)) -> Image:
    """Return a copy of `image` with each box filled with `color`.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        color: RGB fill, each in [0, 255].
    Raises:
        InvalidInputError: wrong shape or dtype, box outside the image, bad colour.
    """
    out = check_image(image).copy()
    if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
        raise InvalidInputError(f"color: expected three values in [0, 255], got {color}")
    for x0, y0, x1, y1 in check_boxes(boxes, image=image):
        out[y0:y1, x0:x1] = np.asarray(color, np.uint8)
    return out


OBFUSCATORS: dict[str, Callable[..., Image]] = {
    "blur": blur_regions,
    "pixelate": pixelate_regions,
    "mask": mask_regions,
}


def obfuscate(image: Image, boxes: Boxes, *, method: str, block: int, blur_strength: float) -> Image:
    """Obfuscate `boxes` in a copy of `image` with the registered `method`.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        method: a key of `OBFUSCATORS`.
        block: pixelation cell side (used by "pixelate").
        blur_strength: sigma as a fraction of the box's short side (used by "blur").
    Raises:
        InvalidInputError: unknown method, bad image or boxes.
        AnonymizationError: OpenCV failed on the image.
    """
    if method not in OBFUSCATORS:
        raise InvalidInputError(
            f"method: unknown obfuscator {method!r}, expected one of {sorted(OBFUSCATORS)}"
        )
    per_method: dict[str, dict[str, Any]] = {
        "pixelate": {"block": block},
        "blur": {"strength": blur_strength},
    }
    options = per_method.get(method, {})
    try:
        return OBFUSCATORS[method](image, boxes, **options)
    except cv2.error as err:
        raise AnonymizationError(f"{method}: OpenCV failed on a {image.shape} image: {err}") from err

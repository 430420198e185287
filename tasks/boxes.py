"""Box helpers every stage uses: validation, masks, IoU, padding and non-maximum suppression."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tasks.errors import InvalidInputError


def as_boxes(boxes: ArrayLike, *, name: str) -> NDArray[np.int64]:
    """Return `boxes` as an (N, 4) int64 array [x0, y0, x1, y1], x1/y1 exclusive.

    Args:
        boxes: (N, 4) integer-valued boxes, or an empty array/list.
        name: what the boxes are, for the error message.
    Raises:
        InvalidInputError: wrong shape, non-integer values, or x1 < x0 / y1 < y0.
    """
    arr = np.asarray(boxes)
    if arr.size == 0:
        return np.zeros((0, 4), np.int64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InvalidInputError(f"{name}: expected (N, 4) boxes [x0, y0, x1, y1], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and not np.array_equal(arr, np.round(arr)):
        raise InvalidInputError(f"{name}: box coordinates must be whole pixels, got {arr.dtype} values")
    out = arr.astype(np.int64)
    bad = (out[:, 2] < out[:, 0]) | (out[:, 3] < out[:, 1])
    if bad.any():
        raise InvalidInputError(f"{name}: box {out[np.argmax(bad)].tolist()} has x1 < x0 or y1 < y0")
    return out


def check_inside(
    boxes: NDArray[np.int64], *, width: int, height: int, name: str = "boxes"
) -> NDArray[np.int64]:
    """`boxes` ((N, 4) int64 [x0, y0, x1, y1]) when every one is non-empty and inside a `width` × `height` image.

    Raises:
        InvalidInputError: the first box that is empty or reaches outside, named by `name`.
    """
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    bad = (
        (b[:, 0] < 0)
        | (b[:, 1] < 0)
        | (b[:, 2] > width)
        | (b[:, 3] > height)
        | (b[:, 0] >= b[:, 2])
        | (b[:, 1] >= b[:, 3])
    )
    if bad.any():
        raise InvalidInputError(
            f"{name}: box {b[np.flatnonzero(bad)[0]].tolist()} is empty or outside the {width}x{height} image"
        )
    return b


def box_mask(boxes: NDArray[np.int64], shape: tuple[int, int], *, grow: int = 0) -> NDArray[np.bool_]:
    """Return the (H, W) union of `boxes`, each grown by `grow` pixels per side and clipped to the image."""
    height, width = shape
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(y0 - grow, 0) : max(y1 + grow, 0), max(x0 - grow, 0) : max(x1 + grow, 0)] = True
    return mask


def iou_matrix(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    """Return the (len(a), len(b)) intersection-over-union of two sets of [x0, y0, x1, y1] boxes."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = (ix * iy).astype(np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: NDArray[np.float64] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def pad_boxes(boxes: NDArray[np.float64], *, pad: float, width: int, height: int) -> NDArray[np.int64]:
    """Grow (N, 4) float [x0, y0, x1, y1] boxes by `pad` × their size on each side; clip; round outwards."""
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    grown = boxes + np.array([-1, -1, 1, 1]) * pad * size
    out = np.concatenate([np.floor(grown[:, :2]), np.ceil(grown[:, 2:])], axis=1).astype(np.int64)
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]


def nms(boxes: NDArray[np.float64], scores: NDArray[np.float32], *, iou: float) -> NDArray[np.int64]:
    """Indices of the boxes kept by greedy non-maximum suppression at `iou` (OpenCV's NMSBoxes)."""
    if not len(boxes):
        return np.zeros((0,), np.int64)
    xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]].tolist()
    keep = cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), 0.0, iou)
    return np.asarray(keep, np.int64).reshape(-1)

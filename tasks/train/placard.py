"""Find the digit placard in a scene with classical computer vision, and crop its digit.

A fixed, data-independent front end (no learned parameters, nothing estimated from the data set):
it is applied to each image on its own, so it costs no privacy (DP post-processing applies to the
model, per-sample pre-processing to its inputs).

The placard is a light, near-grey card, roughly square (aspect ≤ 1.3), slightly rotated, with dark
ink inside. `locate_placard` thresholds the "whiteness" (the darkest channel, on low-saturation
pixels) at several levels, takes the outer contours of each mask, keeps those shaped like a card
(area, aspect of the minimum-area rectangle, fill of that rectangle, a share of dark ink inside)
and returns the best-scoring one. Plates (3-4:1), text signs, pixelated and black-masked boxes fail
the aspect, fill or ink tests. `placard_crop` rotates the card upright, measures the ink as darkness
relative to the card, and returns a tight, centred, contrast-normalised crop of the digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.boxes import iou_matrix
from tasks.errors import InvalidInputError
from tasks.types import check_image

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1, y1 exclusive
_Rect = tuple[tuple[float, float], tuple[float, float], float]  # cv2.minAreaRect: centre, size, angle

# All sizes are for a 256-px image and scale with the image's short side.
_BASE = 256
_THRESHOLDS = tuple(range(140, 246, 8))  # levels of the darkest channel tried, uint8
_MAX_CHROMA = 40  # max - min channel: the card is near-grey
_AREA = (600.0, 14000.0)  # contour area in px at 256 px: cards are 34-95 px a side
_MIN_SIDE = 20.0
_MAX_ASPECT = 1.5
_MIN_FILL = 0.8  # contour area / its minimum-area rectangle, for the "grow" step
_INK_DROP = 70  # a pixel is ink when it is this much darker than the card (grey levels)
_INK_SHARE = (0.02, 0.6)
_INNER = 0.12  # share of the short side eroded before looking for ink (skips the card's edge)
_K3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class _Candidate:
    score: float
    box: Box
    rect: _Rect
    area: float
    fill: float


def _check(image: object, name: str) -> NDArray[np.uint8]:
    return check_image(image, name=name, min_side=16)


def _score(contour: NDArray[np.int32], gray: NDArray[np.uint8], k: float) -> _Candidate | None:
    """Score one contour as a placard; None when its area, shape or ink rules it out."""
    area = float(cv2.contourArea(contour))
    if not _AREA[0] * k * k <= area <= _AREA[1] * k * k:
        return None
    rect = cv2.minAreaRect(contour)
    w, h = rect[1]
    if min(w, h) < _MIN_SIDE * k or max(w, h) / min(w, h) > _MAX_ASPECT:
        return None
    x, y, bw, bh = cv2.boundingRect(contour)
    filled = np.zeros((bh, bw), np.uint8)
    cv2.drawContours(filled, [contour - np.array([x, y], np.int32)], -1, 1, -1)
    inner = cv2.erode(filled, _K3, iterations=max(2, int(min(w, h) * _INNER)))
    values = gray[y : y + bh, x : x + bw][inner > 0]
    if values.size < 50:
        return None
    ink = float((values < np.percentile(values, 90) - _INK_DROP).mean())
    if not _INK_SHARE[0] <= ink <= _INK_SHARE[1]:
        return None
    fill, aspect = area / (w * h), max(w, h) / min(w, h)
    score = 2 * fill - (aspect - 1) + 4 * min(ink, 0.15)
    (cx, cy), _, angle = rect
    return _Candidate(score, (x, y, x + bw, y + bh), ((cx, cy), (w, h), angle), area, fill)


def _candidates(image: NDArray[np.uint8]) -> list[_Candidate]:
    """Every card-like outer contour of the whiteness masks, over all threshold levels."""
    darkest = image.min(axis=2)
    grey = (image.max(axis=2).astype(np.int16) - darkest) <= _MAX_CHROMA
    gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8)
    k = min(image.shape[:2]) / _BASE
    out: list[_Candidate] = []
    for level in _THRESHOLDS:
        mask = cv2.morphologyEx(((darkest >= level) & grey).astype(np.uint8), cv2.MORPH_OPEN, _K3)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scored = (_score(np.asarray(cnt, np.int32), gray, k) for cnt in contours)
        out.extend(c for c in scored if c is not None)
    return out


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (`tasks.boxes.iou_matrix` on one pair)."""
    return float(iou_matrix(np.asarray([a], np.int64), np.asarray([b], np.int64))[0, 0])


def _fallback(image: NDArray[np.uint8]) -> _Candidate:
    """A centred square a third of the short side: the guess when nothing looks like a placard."""
    h, w = image.shape[:2]
    s = min(h, w) / 3
    box = (round(w / 2 - s / 2), round(h / 2 - s / 2), round(w / 2 + s / 2), round(h / 2 + s / 2))
    return _Candidate(float("-inf"), box, ((w / 2, h / 2), (s, s), 0.0), s * s, 1.0)


def _best(image: NDArray[np.uint8]) -> _Candidate:
    """The best candidate, grown to the largest well-filled candidate overlapping it.

    A lighting gradient makes the highest-scoring level sometimes cut off the card's darker side;
    the same card at a lower level (still card-shaped, still well filled) is the whole card.
    """
    cands = _candidates(image)
    if not cands:
        return _fallback(image)
    best = max(cands, key=lambda c: c.score)
    same = [c for c in cands if c.fill >= _MIN_FILL and box_iou(c.box, best.box) > 0.5]
    return max(same, key=lambda c: c.area) if same else best


def locate_placard(image: NDArray[np.uint8]) -> Box:
    """Return the box of the light digit placard in an RGB scene (never fails on a valid image).

    Args:
        image: (H, W, 3) uint8 RGB.
    Returns:
        (x0, y0, x1, y1) pixels, x1/y1 exclusive, inside the image. When no region looks like a
        placard, a centred square a third of the short side.
    Raises:
        InvalidInputError: not an (H, W, 3) uint8 image, or smaller than 16x16.
    """
    return _best(_check(image, "locate_placard")).box


def _upright(gray: NDArray[np.uint8], rect: _Rect) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """Rotate the card upright into a square patch centred on it; return the patch and the card's (w, h)."""
    (cx, cy), (w, h), angle = rect
    if angle > 45:  # cv2 gives angles in (0, 90]: the nearest upright pose is the other side's
        angle, w, h = angle - 90, h, w
    elif angle < -45:
        angle, w, h = angle + 90, h, w
    side = int(np.ceil(max(w, h) * 1.1)) + 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[:, 2] += np.array([side / 2 - cx, side / 2 - cy])
    patch = cv2.warpAffine(gray, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(patch, np.float32), (w, h)


def _darkness(patch: NDArray[np.float32], wh: tuple[float, float]) -> NDArray[np.float32]:
    """Ink darkness in [0, 1] inside the card's inner window (0 = card, 1 = darkest ink), 0 outside."""
    side = patch.shape[0]
    hw, hh = (max(2, int(v * (0.5 - _INNER / 1.5))) for v in wh)
    y0, y1, x0, x1 = side // 2 - hh, side // 2 + hh, side // 2 - hw, side // 2 + hw
    window = patch[y0:y1, x0:x1]
    card = float(np.percentile(window, 90))
    span = max(card - float(window.min()), 40.0)
    out = np.zeros_like(patch)
    out[y0:y1, x0:x1] = _drop_border_blobs(np.clip((card - window) / span, 0, 1))
    return out


def _drop_border_blobs(dark: NDArray[np.float32]) -> NDArray[np.float32]:
    """Zero the ink blobs that touch the window's border: the card's edge or the scene behind it."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((dark > 0.25).astype(np.uint8), connectivity=8)
    h, w = dark.shape
    x0, y0, bw, bh = (stats[:, i] for i in range(4))
    touches = (x0 == 0) | (y0 == 0) | (x0 + bw == w) | (y0 + bh == h)
    touches[0] = False  # label 0 is the background
    if touches.all() or n <= 1:
        return dark
    return np.where(touches[labels], np.float32(0), dark)


def _square_around_ink(dark: NDArray[np.float32], *, margin: float = 0.12) -> NDArray[np.float32]:
    """The tight box around the ink, padded to a centred square with `margin` of its side each side."""
    ys, xs = np.nonzero(dark > 0.4)
    if ys.size == 0:
        return dark
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    pad = int(round(side * margin))
    canvas = np.zeros((side + 2 * pad, side + 2 * pad), np.float32)
    oy, ox = pad + (side - (y1 - y0)) // 2, pad + (side - (x1 - x0)) // 2
    canvas[oy : oy + y1 - y0, ox : ox + x1 - x0] = dark[y0:y1, x0:x1]
    return canvas


def placard_crop(image: NDArray[np.uint8], *, size: int) -> NDArray[np.float32]:
    """Locate the placard, rotate it upright and return its digit as a centred ink map.

    When nothing looks like a placard the centred-square guess is cropped; `placard_crop_found` says so.

    Args:
        image: (H, W, 3) uint8 RGB scene.
        size: side of the output.
    Returns:
        (size, size) float32 in [0, 1]: ink darkness relative to the card (0 = card, 1 = the darkest
        ink), the digit's tight box padded to a centred square (aspect kept), resized (INTER_AREA).
    Raises:
        InvalidInputError: not an (H, W, 3) uint8 image, smaller than 16x16, or size < 4.
    """
    return placard_crop_found(image, size=size)[0]


def placard_crop_found(image: NDArray[np.uint8], *, size: int) -> tuple[NDArray[np.float32], bool]:
    """`placard_crop`, and whether a placard was found (False: the centred-square guess was cropped)."""
    if size < 4:
        raise InvalidInputError(f"placard_crop: size must be >= 4, got {size}")
    cand = _best(_check(image, "placard_crop"))
    patch, wh = _upright(np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8), cand.rect)
    digit = _square_around_ink(_darkness(patch, wh))
    out = cv2.resize(digit, (size, size), interpolation=cv2.INTER_AREA)
    return np.asarray(out, np.float32), bool(np.isfinite(cand.score))

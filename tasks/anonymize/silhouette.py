"""Bodies as flat silhouettes: the person stays present (a person-shaped figure a detector still finds, a
pedestrian a counter still counts), their identity does not (no face, no clothing colour, no texture).

`silhouette_regions` replaces everything inside the union of the body boxes:

1. **Background**: each connected part of the union is filled from its own outer ring only (the pixels of
   the part within a few pixels of its edge, mostly the floor or wall around the person), inpainted
   inwards at a reduced scale (OpenCV's Telea) and smoothed. Nothing from the box interior enters it, so
   a poor person mask never leaks the clothing it missed; what the ring shows survives only as a blur.
2. **Person mask** (`person_mask`), per box, on the raw pixels inside that box brought down to `side` px
   tall: a pixel is the person when its colour (CIELAB) is far from the colours that fill the box's left
   and right edges (the distance to the `_BACKGROUND_SHARE` nearest of them; Otsu's threshold on it, never
   under `contrast` ΔE), weighted towards the box's central column; closed, holes filled, specks dropped.
   Where boxes nest, the tightest box's mask wins (its edges show the least that is not background). A
   colour-contrast mask rather than GrabCut: GrabCut seeds its colour models from OpenCV's global RNG (not
   deterministic per image) and found nobody in boxes without a margin (4 of 7 hand-labelled boxes).
3. **Figure**: the masks, their edges softened by a Gaussian of `feather` × the box height, painted in
   one flat dark grey `tone` over the background, the same for every person so colour cannot link two
   people. A mask that misses someone leaves background there (as `inpaint` would), never their pixels.

Reads only pixels inside the boxes; pixels outside them never change; no randomness (same input, same
output). `python -m bench.body_methods` measures it on vtest.avi against inpaint, pixelate and blur:
person-detector recall on the output (OpenCV's HOG people detector still finds 32 of the 36 labelled
people it finds on the raw frames, inpainted ones 0; BlazePose, which anchors on a face, does not) and a
colour/texture re-identification attack across frames (4 s apart: 0.31 rank-1, chance 0.22, raw 0.66).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.boxes import as_boxes, check_inside
from tasks.errors import InvalidInputError
from tasks.types import Image, check_image

Boxes = NDArray[np.int64]
Mask = NDArray[np.bool_]
_FILL_SIDE = 24  # short side, in pixels, the background is inpainted at (it is smoothed anyway)
_MAX_SAMPLES = 64  # side-column colours a mask compares each pixel with
# a colour is background when at least this share of the box's side columns shows it: a person cut by the
# box's side (a tracker's or a tight box) puts their own colours there too, but rarely this many
_BACKGROUND_SHARE = 0.2


def silhouette_regions(
    image: Image,
    boxes: Boxes,
    *,
    tone: int = 72,
    feather: float = 0.015,
    side: int = 64,
    contrast: float = 12.0,
) -> Image:
    """Return a copy of `image` with every body box turned into a flat grey figure on a smooth background.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        tone: the figure's grey level, in [0, 255] (the same for everyone).
        feather: sigma of the figure's soft edge as a fraction of the box height, in [0, 0.2].
        side: height, in pixels, each box is brought down to for its person mask (>= 16).
        contrast: the smallest CIELAB distance (ΔE) from the box's side colours that counts as the person, > 0.
    Raises:
        InvalidInputError: bad image, boxes or options.
    """
    out = check_image(image).copy()
    if not (0 <= tone <= 255 and 0 <= feather <= 0.2 and side >= 16 and contrast > 0):
        raise InvalidInputError(
            f"silhouette: need tone in [0, 255], feather in [0, 0.2], side >= 16, contrast > 0; got "
            f"{tone}, {feather}, {side}, {contrast}"
        )
    b = _inside(boxes, image)
    if not len(b):
        return out
    region = np.zeros(image.shape[:2], bool)
    alpha = np.zeros(image.shape[:2], np.float32)
    for x0, y0, x1, y1 in b:
        region[y0:y1, x0:x1] = True
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    for x0, y0, x1, y1 in b[np.argsort(-area, kind="stable")]:  # the tightest box has the last word
        person = person_mask(image[y0:y1, x0:x1], side=side, contrast=contrast).astype(np.float32)
        sigma = feather * (y1 - y0)
        if sigma >= 0.3:
            alpha[y0:y1, x0:x1] = cv2.GaussianBlur(person, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        else:
            alpha[y0:y1, x0:x1] = person
    a = alpha[region][:, None].astype(np.float64)  # (K, 1) over the K pixels of the boxes
    blended = a * tone + (1 - a) * ring_fill(image, region)[region]
    out[region] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _inside(boxes: object, image: Image) -> Boxes:
    """`boxes` as (N, 4) int64 when each is non-empty and inside `image` (as `obfuscate.check_boxes`, which
    this module cannot import: `obfuscate` registers this method).

    Raises:
        InvalidInputError: not (N, 4) whole pixels, or a box empty or outside the image.
    """
    if not isinstance(boxes, np.ndarray):
        raise InvalidInputError(
            f"boxes: expected an (N, 4) array of [x0, y0, x1, y1], got {type(boxes).__name__}"
        )
    h, w = image.shape[:2]
    return check_inside(as_boxes(boxes, name="boxes"), width=w, height=h)


def person_mask(crop: Image, *, side: int = 64, contrast: float = 12.0) -> Mask:
    """(h, w) bool: the pixels of one body box's `crop` whose colour stands out from the colours of the box's
    own left and right edges (2 px each at the reduced scale): far (CIELAB) from the nearest
    `_BACKGROUND_SHARE` of them, over Otsu's threshold and `contrast`, weighted towards the central column.

    Args:
        crop: (h, w, 3) uint8 RGB, the pixels of one box.
        side: the crop is brought down to this height (never up) before the colour test.
        contrast: the smallest such distance (ΔE) that counts as the person.
    Raises:
        InvalidInputError: not an (h, w, 3) uint8 array.
    """
    h, w = check_image(crop).shape[:2]
    if min(h, w) < 4:
        return np.zeros((h, w), bool)
    scale = min(1.0, side / h)
    sw, sh = max(4, round(w * scale)), max(4, round(h * scale))
    small = cv2.resize(np.ascontiguousarray(crop), (sw, sh), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    sides = np.zeros((sh, sw), bool)
    sides[:, :2] = sides[:, -2:] = True  # a person spans a body box's height: its sides show the background
    samples = lab[sides.ravel()]
    samples = samples[:: max(1, len(samples) // _MAX_SAMPLES)]
    # (pixels, samples) squared distances, |a|² + |b|² - 2a·b: one matrix product instead of a 3-D array
    d2 = (lab**2).sum(1)[:, None] + (samples**2).sum(1)[None, :] - 2 * lab @ samples.T
    k = max(1, int(_BACKGROUND_SHARE * len(samples)))
    dist = np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1].clip(0))  # far from the k nearest border colours
    score = cv2.GaussianBlur(dist.reshape(sh, sw), (0, 0), 1.0) * _central_prior(sh, sw)
    level = max(contrast, _otsu(score))
    mask = _clean(score > level)
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR) > 0


def _central_prior(h: int, w: int) -> NDArray[np.float32]:
    """(h, w) weight 1 on the box's central column falling to 0.5 at its left and right edges: a person
    fills a body box's middle, what stands out at its sides is more often the background's."""
    dx = np.abs((np.arange(w) + 0.5) / w - 0.5) * 2  # 0 at the centre, 1 at the sides
    return np.broadcast_to((1 - 0.5 * dx**2).astype(np.float32)[None, :], (h, w))


def _otsu(score: NDArray[np.float32]) -> float:
    """Otsu's threshold of `score`, in its own units (0 when it is flat)."""
    top = float(score.max())
    if top <= 0:
        return 0.0
    level, _ = cv2.threshold(
        (score / top * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU
    )
    return float(level) / 255 * top


def _clean(mask: Mask) -> Mask:
    """Close small gaps, fill holes, drop specks under 3 % of the box."""
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 0.03 * mask.size)
    m = np.isin(labels, keep[keep > 0]).astype(np.uint8)
    holes = np.pad(1 - m, 1, constant_values=1).astype(np.uint8)
    cv2.floodFill(holes, None, (0, 0), 0)  # what the outside reaches is not a hole
    return np.asarray((m > 0) | (holes[1:-1, 1:-1] > 0), bool)


def ring_fill(image: Image, region: Mask) -> NDArray[np.float64]:
    """(H, W, 3) float: inside `region`, a smooth fill inpainted from each connected part's outer ring only
    (elsewhere: the image). The ring is deep enough for whole reduced-scale pixels (`_part_fill`), so the
    fill never reads a pixel outside the region nor one deeper inside it."""
    out = image.astype(np.float64)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8))
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        part = labels[y : y + h, x : x + w] == i
        out[y : y + h, x : x + w][part] = _part_fill(image[y : y + h, x : x + w], part)[part]
    return out


def _part_fill(crop: Image, part: Mask) -> NDArray[np.float64]:
    """(h, w, 3) float: `part` of `crop` filled from its outer ring, at a reduced scale, smoothed."""
    h, w = part.shape
    scale = min(1.0, _FILL_SIDE / min(h, w))
    width = max(2, int(np.ceil(2 / scale)))  # deep enough that whole reduced pixels lie in it
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)  # outside the crop is outside the part:
    inner = cv2.erode(part.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    ring = part & ~inner
    sw, sh = max(2, round(w * scale)), max(2, round(h * scale))
    known = cv2.resize(ring.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) >= 0.999
    if not known.any():  # a sliver: its ring's mean colour
        return np.broadcast_to(crop[ring].mean(0) if ring.any() else np.full(3, 128.0), (h, w, 3)).astype(
            np.float64
        )
    pure = np.where(ring[..., None], crop, 0).astype(np.uint8)  # nothing deeper than the ring is ever read
    small = cv2.resize(pure, (sw, sh), interpolation=cv2.INTER_AREA)
    small = np.where(known[..., None], small, 0).astype(np.uint8)
    filled = cv2.inpaint(small, (~known).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    return np.asarray(cv2.GaussianBlur(big, (0, 0), max(0.5, 0.5 / scale)), np.float64)

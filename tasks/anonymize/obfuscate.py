"""Obfuscate rectangular regions of an image: pixelate, blur, mask, dp_pixelate, inpaint (hard-edged or
soft: elliptical, feathered, re-textured) or replace.

Always on a copy; pixels outside the boxes never change — except under `inpaint_soft`, whose fade reaches
past each box, never beyond its `soft_extent`.

Registry: `OBFUSCATORS[name](image, boxes, **options)`; `obfuscate` dispatches with the stage's params.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.replace import FacePool, replace_region
from tasks.anonymize.silhouette import silhouette_regions
from tasks.boxes import check_inside
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
    h, w = image.shape[:2]
    return check_inside(boxes.astype(np.int64), width=w, height=h, name=name)


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


def _cell_edges(n: int, block: int) -> NDArray[np.int64]:
    """Cell boundaries along one side of n pixels: cells of `block`, the last one wider (< 2 × block)."""
    cells = max(1, n // block)
    return np.asarray([*(np.arange(cells) * block), n], np.int64)


def dp_pixelate_regions(
    image: Image, boxes: Boxes, *, block: int, epsilon: float, neighbourhood: int, rng: np.random.Generator
) -> Image:
    """Differentially private pixelization (Fan 2018) of each box, on a copy.

    Each box is cut into cells of `block` × `block` pixels (the last row and column of cells absorb
    the remainder, so every cell has at least block² pixels unless the box itself is smaller); each
    cell becomes the mean of its grey (luma) values plus Laplace noise of scale 255·m / (n·ε), with n
    the smallest cell's pixel count (n = b² for boxes of at least b × b) and m = `neighbourhood`.
    Changing up to m pixels moves the cell means by at most 255·m/n in L1, so the released cells are
    ε-differentially private w.r.t. m-pixel neighbours (Fan 2018, Thm. 1). Every raw pixel enters
    exactly one noisy cell, so the whole image spends ε (not ε per box). Luma, not RGB: Fan's
    sensitivity is for one value per pixel; three channels would need three times the noise.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        block: cell side b in pixels, >= 1.
        epsilon: the privacy parameter ε > 0.
        neighbourhood: m >= 1, how many pixels may differ between neighbouring images.
        rng: the noise source (seed it per image for reproducibility).
    Raises:
        InvalidInputError: bad image, boxes or options.
    """
    out = check_image(image).copy()
    if block < 1 or not epsilon > 0 or neighbourhood < 1:
        raise InvalidInputError(
            f"dp_pixelate: need block >= 1, epsilon > 0, neighbourhood >= 1; got {block}, {epsilon}, {neighbourhood}"
        )
    for x0, y0, x1, y1 in check_boxes(boxes, image=image):
        luma = cv2.cvtColor(np.ascontiguousarray(out[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float64)
        ey, ex = _cell_edges(y1 - y0, block), _cell_edges(x1 - x0, block)
        sums = np.add.reduceat(np.add.reduceat(luma, ey[:-1], axis=0), ex[:-1], axis=1)
        counts = np.outer(np.diff(ey), np.diff(ex))
        scale = dp_noise_scale(cell_pixels=int(counts.min()), epsilon=epsilon, neighbourhood=neighbourhood)
        cells = np.clip(np.rint(sums / counts + rng.laplace(0.0, scale, counts.shape)), 0, 255).astype(
            np.uint8
        )
        grid = np.repeat(np.repeat(cells, np.diff(ey), axis=0), np.diff(ex), axis=1)
        out[y0:y1, x0:x1] = grid[..., None]
    return out


def dp_noise_scale(*, cell_pixels: int, epsilon: float, neighbourhood: int) -> float:
    """Laplace scale 255·m / (n·ε) of `dp_pixelate_regions`, n = `cell_pixels` (b² for full cells; Fan 2018)."""
    return 255.0 * neighbourhood / (cell_pixels * epsilon)


_INPAINT_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def inpaint_regions(image: Image, boxes: Boxes, *, radius: int = 3, algorithm: str = "telea") -> Image:
    """Return a copy of `image` with every box removed and filled in from its surroundings.

    All boxes are inpainted at once (OpenCV's Telea fast marching or Navier–Stokes method), so no box
    is filled from the pixels of another un-obfuscated box. Nothing from inside a box survives.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        radius: neighbourhood radius of the inpainting, >= 1.
        algorithm: "telea" or "ns".
    Raises:
        InvalidInputError: bad image or boxes, radius < 1, unknown algorithm.
    """
    out = check_image(image).copy()
    if radius < 1 or algorithm not in _INPAINT_FLAGS:
        raise InvalidInputError(
            f"inpaint: need radius >= 1 and algorithm telea|ns, got {radius}, {algorithm!r}"
        )
    mask = np.zeros(image.shape[:2], np.uint8)
    for x0, y0, x1, y1 in check_boxes(boxes, image=image):
        mask[y0:y1, x0:x1] = 255
    if mask.any():
        filled = cv2.inpaint(out, mask, radius, _INPAINT_FLAGS[algorithm])
        out[mask > 0] = filled[mask > 0]  # belt and braces: only masked pixels may change
    return out


def soft_core(pad: float) -> float:
    """The normalised radius (1 = the ellipse inscribed in a padded box) that contains the whole detected
    box for a detector pad of `pad` (its corners lie at √2 / (1 + 2·pad)), never below 1, plus 2 %."""
    return max(1.0, 2**0.5 / (1 + 2 * pad)) * 1.02


def soft_extent(boxes: Boxes, *, core: float, feather: float, width: int, height: int) -> Boxes:
    """(N, 4) the region each box's ellipse and its fade reach: the box grown about its centre by
    `core + feather` (its normalised outer radius), clipped to the image. `soft_inpaint_regions` changes
    pixels only inside these regions; the engine verifies around them."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 * (core + feather)
    grown = np.concatenate([np.floor(centre - half), np.ceil(centre + half)], axis=1)
    return np.asarray(np.clip(grown, 0, [width, height, width, height]), np.int64)


def _soft_alpha(
    box: NDArray[np.int64], region: NDArray[np.int64], *, width: int, height: int, core: float, feather: float
) -> NDArray[np.float64]:
    """(h, w) weight of the fill over `region` (the box's `soft_extent`): 1 inside the ellipse of normalised
    radius `core` (1 = inscribed in the box), falling smoothly to 0 at `core + feather`, so no edge of the
    box ever shows. A box on the image border is open on that side (the face may go on beyond it), so the
    weight there reaches the border at full strength."""
    x0, y0, x1, y1 = (int(v) for v in box)
    rx0, ry0, rx1, ry1 = (int(v) for v in region)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    xs, ys = np.arange(rx0, rx1) + 0.5, np.arange(ry0, ry1) + 0.5
    dx, dy = (xs - cx) / hw, (ys - cy) / hh
    dx = np.where(((dx < 0) & (x0 == 0)) | ((dx > 0) & (x1 == width)), 0.0, dx)
    dy = np.where(((dy < 0) & (y0 == 0)) | ((dy > 0) & (y1 == height)), 0.0, dy)
    r = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    t = np.clip((core + feather - r) / feather, 0.0, 1.0) if feather > 0 else (r <= core).astype(np.float64)
    return np.asarray(t * t * (3 - 2 * t), np.float64)  # smoothstep: no visible seam at either end


def soft_inpaint_regions(
    image: Image,
    boxes: Boxes,
    *,
    core: float = 1.1,
    feather: float = 0.25,
    fill_side: int = 12,
    grain: float = 1.0,
    radius: int = 3,
    rng: np.random.Generator | None = None,
    avoid: Boxes | None = None,
) -> Image:
    """Return a copy of `image` with an elliptical, feathered, re-textured fill over each (face) box.

    Telea inpainting of a large rectangle smears its border inwards into a diamond with a hard outline.
    Here each box gets an ellipse (normalised radius `core`, 1 = inscribed in the box; `soft_core(pad)`
    contains the whole detected box) whose edge fades out over `feather` into the original pixels, beyond
    the box where the ellipse reaches past it (`soft_extent`), so no side of the box shows. Overlapping
    ellipses are one region: their weights combine (the largest counts) and the region gets one fill, so
    two detections of one face never leave one shape nested in another. The fill is inpainted at a
    reduced scale (the region's short side brought down to `fill_side` pixels, then smoothly upscaled), so
    it is a soft continuation of the surroundings, and re-textured with grey noise of the surroundings' own
    high-frequency strength (× `grain`), so it does not look airbrushed.

    Nothing from inside an ellipse survives: the inpainting reads only pixels the output still shows (any
    reduced-scale pixel whose footprint touches a weighted pixel counts as unknown), and inside the core
    the output is the fill alone. Pixels outside every ellipse and its fade never change.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        core: normalised radius of full replacement, >= 1.
        feather: width of the fade beyond `core`, in normalised radius, in [0, 1].
        fill_side: short side, in pixels, the fill is inpainted at (>= 4); larger regions are inpainted
            downscaled to it.
        grain: noise strength relative to the surroundings' high-pass standard deviation, >= 0.
        radius: Telea neighbourhood radius at the reduced scale, >= 1.
        rng: the grain's noise source (None: a fixed one; the grain protects nothing, it only looks).
        avoid: (M, 4) further boxes the fill must not read (other sensitive boxes not yet obfuscated).
    Raises:
        InvalidInputError: bad image, boxes or options.
    """
    out = check_image(image).copy()
    if not (core >= 1 and 0 <= feather <= 1 and fill_side >= 4 and grain >= 0 and radius >= 1):
        raise InvalidInputError(
            f"inpaint_soft: need core >= 1, feather in [0, 1], fill_side >= 4, grain >= 0, radius >= 1; got "
            f"{core}, {feather}, {fill_side}, {grain}, {radius}"
        )
    b = check_boxes(boxes, image=image)
    h, w = image.shape[:2]
    alpha = np.zeros((h, w), np.float64)
    for box, (x0, y0, x1, y1) in zip(
        b, soft_extent(b, core=core, feather=feather, width=w, height=h), strict=True
    ):
        sub = alpha[y0:y1, x0:x1]
        region = np.asarray([x0, y0, x1, y1], np.int64)
        np.maximum(sub, _soft_alpha(box, region, width=w, height=h, core=core, feather=feather), out=sub)
    weighted = alpha > 0
    hidden = weighted.copy()  # every pixel the fill touches: never a source of the fill
    for x0, y0, x1, y1 in check_boxes(avoid, image=image, name="avoid") if avoid is not None else ():
        hidden[y0:y1, x0:x1] = True
    gen = rng if rng is not None else np.random.default_rng(0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(weighted.astype(np.uint8), connectivity=8)
    for k in range(1, count):  # one fill per connected region: overlapping ellipses are one shape
        x0, y0, bw, bh = (int(v) for v in stats[k, :4])
        x1, y1 = x0 + bw, y0 + bh
        cx0, cy0, cx1, cy1 = (
            max(0, x0 - bw // 2),
            max(0, y0 - bh // 2),
            min(w, x1 + bw // 2),
            min(h, y1 + bh // 2),
        )
        crop, hid = image[cy0:cy1, cx0:cx1], hidden[cy0:cy1, cx0:cx1]
        fill = _soft_fill(crop, hid, scale=min(1.0, fill_side / min(bw, bh)), radius=radius)
        fill = _grain(fill, crop, hid, grain=grain, rng=gen)
        take = labels[y0:y1, x0:x1] == k
        a = alpha[y0:y1, x0:x1, None]
        fx0, fy0 = x0 - cx0, y0 - cy0
        blended = a * fill[fy0 : fy0 + bh, fx0 : fx0 + bw] + (1 - a) * image[y0:y1, x0:x1].astype(np.float64)
        region_out = out[y0:y1, x0:x1]
        region_out[take] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)[take]
    return out


def _soft_fill(crop: Image, hidden: NDArray[np.bool_], *, scale: float, radius: int) -> NDArray[np.float64]:
    """The crop's `hidden` pixels inpainted from the others at `scale`, upscaled smoothly (float, crop size)."""
    ch, cw = hidden.shape
    sw, sh = max(2, round(cw * scale)), max(2, round(ch * scale))
    small = cv2.resize(np.ascontiguousarray(crop), (sw, sh), interpolation=cv2.INTER_AREA)
    # a reduced pixel whose footprint touches a hidden pixel is unknown (INTER_AREA mixes footprints), and
    # so is one more ring of them: weights too small for the mask's float sum still reach the image's
    small_hidden = cv2.resize(hidden.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    small_hidden = cv2.dilate(small_hidden.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    if small_hidden.all():  # the box is the whole picture (a portrait): nothing to continue, a plain grey
        return np.full((ch, cw, 3), 128.0)
    small = np.where(small_hidden[..., None], 0, small).astype(np.uint8)  # hidden content never enters
    filled = cv2.inpaint(small, small_hidden.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    big = cv2.resize(filled, (cw, ch), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    sigma = max(0.5, 0.5 / scale)  # soften the upscaled cells
    return np.asarray(cv2.GaussianBlur(big, (0, 0), sigma), np.float64)


def _grain(
    fill: NDArray[np.float64],
    crop: Image,
    hidden: NDArray[np.bool_],
    *,
    grain: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """`fill` plus grey noise as strong as the visible surroundings' high-pass (robust std) × `grain`."""
    if grain == 0:
        return fill
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float64)
    high = grey - cv2.GaussianBlur(grey, (9, 9), 1.5)  # a 9 × 9 kernel: it reaches 4 px
    near = cv2.dilate(hidden.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    seen = high[~near]  # the high-pass of visible pixels only: it never reads a hidden one
    strength = 1.4826 * float(np.median(np.abs(seen - np.median(seen)))) * grain if seen.size else 0.0
    if strength <= 0:
        return fill
    noise = np.asarray(cv2.GaussianBlur(rng.standard_normal(hidden.shape), (0, 0), 0.6), np.float64)
    noise = noise * (strength / max(float(noise.std()), 1e-9))
    return fill + noise[..., None]


def replace_regions(image: Image, boxes: Boxes, *, pool: FacePool) -> Image:
    """Return a copy of `image` with each (face) box replaced by its k-Same surrogate (see `replace.py`).

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] face boxes, inside the image.
        pool: the k-Same groups and their mean faces.
    Raises:
        InvalidInputError: bad image or boxes.
    """
    out = check_image(image).copy()
    for box in check_boxes(boxes, image=image):
        replace_region(out, box, pool)
    return out


OBFUSCATORS: dict[str, Callable[..., Image]] = {
    "blur": blur_regions,
    "pixelate": pixelate_regions,
    "mask": mask_regions,
    "dp_pixelate": dp_pixelate_regions,
    "inpaint": inpaint_regions,
    "inpaint_soft": soft_inpaint_regions,
    "replace": replace_regions,
    "silhouette": silhouette_regions,
}


def obfuscate(
    image: Image,
    boxes: Boxes,
    *,
    method: str,
    block: int = 8,
    blur_strength: float = 0.5,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Image:
    """Obfuscate `boxes` in a copy of `image` with the registered `method`.

    Args:
        image: (H, W, 3) uint8.
        boxes: (N, 4) int64 [x0, y0, x1, y1] in pixels, inside the image.
        method: a key of `OBFUSCATORS`.
        block: pixelation cell side (used by "pixelate").
        blur_strength: sigma as a fraction of the box's short side (used by "blur").
        options: method → keyword options of its obfuscator (e.g. {"dp_pixelate": {"block": 8,
            "epsilon": 1.0, "neighbourhood": 16, "rng": rng}, "replace": {"pool": pool}}); they
            override `block` / `blur_strength`.
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
    kwargs = per_method.get(method, {}) | dict((options or {}).get(method, {}))
    try:
        return OBFUSCATORS[method](image, boxes, **kwargs)
    except cv2.error as err:
        raise AnonymizationError(f"{method}: OpenCV failed on a {image.shape} image: {err}") from err

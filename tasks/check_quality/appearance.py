"""What a person sees in an anonymized image: how much changed, whether the redactions show, what is left.

Per image, against its raw version (all measured on pixels, aggregated into counts — no pixel leaves):

- **changed share**: pixels where any channel differs (`changed_mask`), over the whole image and over the
  pixels *outside* the sensitive boxes. The boxes count as inside *after padding* as the anonymizer pads its
  detections (`pad_sensitive`): a method that covers its padded box exactly changes nothing outside.
- **border edge energy**: mean Sobel gradient magnitude of the grey output on the border ring of the
  *visible* change (`visible_mask`: changed by more than `VISIBLE_LEVELS` grey levels, closed, holes
  filled; `border_ring`: the pixels within `RING_WIDTH` px of its boundary, on both sides), over the same
  measure on the same ring of the raw image. ≈ 1: the redaction blends in (no seam); a black box on a light
  background: ≫ 1; < 1: the ring is smoother than the photo was (a blur that reaches it).
- **regions**: connected regions of visible change; *seams*: regions whose own part of the ring has an edge
  ratio >= `SEAM_RATIO` (one outlined redaction among many soft ones shows here, the pooled ratio dilutes
  it); *nested* ones (a hard straight step inside a region: the outline of a second, darker box inside the
  first, or the line where two overlapping boxes obfuscated one after the other meet); *flat* ones (a solid
  fill: a mask).

Recall of categories that were not targeted (people still there when bodies were not a target, faces when
faces were not) is `tasks.check_quality.utility.preserved` on the raw and output detections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tasks.boxes import as_boxes, box_mask, pad_boxes
from tasks.errors import InvalidInputError
from tasks.types import Image, check_image

RING_WIDTH = 2  # px each side of the visible change's boundary
VISIBLE_LEVELS = 8  # grey levels on some channel a pixel must change by for the change to show
SEAM_RATIO = 1.5  # a region whose own border ring has this edge-energy ratio or more shows a seam
EDGE_FLOOR = 1.0  # Sobel units added to both means: a flat raw ring (ratio 0/0 or x/0) stays finite
NESTED_STEP = 12.0  # grey levels of a hard step inside a region that counts as a seam
SEAM_RUN = 11  # px a seam runs straight (averaged along it, so a fill's noise is no seam)
MIN_REGION = 16  # pixels; smaller changed specks are not regions
REGION_MARGIN = 3  # px of a region's rim ignored inside it (the seam belongs to the border ring)
FLAT_LEVELS = 2.0  # grey levels around the median within which a flat fill's pixels lie ...
FLAT_SHARE = 0.9  # ... for at least this share of them
BLACK_LEVEL = 16.0  # a flat fill whose median grey is below this is black


def changed_mask(raw: Image, out: Image, *, tolerance: int = 0) -> NDArray[np.bool_]:
    """(H, W) pixels where any channel of `out` differs from `raw` by more than `tolerance` levels.

    Args:
        raw: (H, W, 3) uint8, the input (or what the tool writes when it redacts nothing, e.g. a re-encode).
        out: (H, W, 3) uint8, the anonymized image.
        tolerance: grey levels a channel may differ by and still count as unchanged (0: exact).
    Raises:
        InvalidInputError: bad images, different shapes, negative tolerance.
    """
    check_image(raw, name="raw")
    check_image(out, name="out")
    if raw.shape != out.shape:
        raise InvalidInputError(f"out: shape {out.shape} differs from raw {raw.shape}")
    if tolerance < 0:
        raise InvalidInputError(f"tolerance: must be >= 0, got {tolerance}")
    diff = cv2.absdiff(raw, out)  # (H, W, 3) uint8
    largest = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
    return np.asarray(largest > tolerance, np.bool_)


def visible_mask(raw: Image, out: Image, *, levels: int = VISIBLE_LEVELS) -> NDArray[np.bool_]:
    """(H, W) the change a person sees: pixels changed by more than `levels` on some channel, closed by a
    5×5 square and with holes filled, so a redaction is one solid shape (a blur leaves smooth skin almost
    unchanged, and a JPEG writer's requantised blocks around it change by a few levels only).

    Raises:
        InvalidInputError: see `changed_mask`.
    """
    strong = changed_mask(raw, out, tolerance=levels).astype(np.uint8)
    closed = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    # holes: the unchanged pixels the outside cannot reach (4-connected flood from a 1-px frame)
    outside = np.pad(1 - closed, 1, constant_values=1)
    cv2.floodFill(outside, np.zeros((outside.shape[0] + 2, outside.shape[1] + 2), np.uint8), (0, 0), 2)
    return np.asarray(outside[1:-1, 1:-1] != 2, np.bool_)


def pad_sensitive(
    boxes_by_category: Mapping[str, ArrayLike], *, pads: Mapping[str, float], shape: tuple[int, int]
) -> NDArray[np.int64]:
    """The categories of `pads` padded as the anonymizer pads their detections, as one (N, 4) int64 array.

    Args:
        boxes_by_category: category → (N, 4) [x0, y0, x1, y1] tight boxes (e.g. ground truth).
        pads: category → padding as a share of the box's size per side (`AnonymizeParams.face.pad`, ...);
            categories not named here are left out.
        shape: (H, W) of the image, to clip to.
    """
    height, width = shape
    out = [np.zeros((0, 4), np.int64)]
    for cat, pad in pads.items():
        boxes = as_boxes(boxes_by_category.get(cat, ()), name=cat).astype(np.float64)
        if len(boxes):
            out.append(pad_boxes(boxes, pad=pad, width=width, height=height))
    return np.concatenate(out)


def border_ring(mask: NDArray[np.bool_], *, width: int = RING_WIDTH) -> NDArray[np.bool_]:
    """Pixels within `width` px (Chebyshev distance) of the boundary between `mask` and the rest, both sides.

    The image's own edge is no boundary. Empty or full masks have no ring (all False).
    """
    if width < 1:
        raise InvalidInputError(f"width: must be >= 1, got {width}")
    m = np.ascontiguousarray(mask, np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    near_in = cv2.dilate(m, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    near_out = cv2.dilate(1 - m, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    return np.asarray(near_in & near_out, np.bool_)


def _grey(image: Image) -> NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.float32)


def sobel_magnitude(grey: NDArray[np.float32]) -> NDArray[np.float32]:
    """(H, W) gradient magnitude sqrt(gx² + gy²) of a grey float image, 3×3 Sobel, reflected borders."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return np.asarray(cv2.magnitude(gx, gy), np.float32)


Window = tuple[slice, slice]  # rows, columns of a crop


def region_windows(mask: NDArray[np.bool_], *, min_area: int = MIN_REGION, pad: int = 0
                   ) -> list[tuple[Window, NDArray[np.bool_]]]:  # fmt: skip
    """The 8-connected regions of `mask` with at least `min_area` pixels: each as (window, the region's
    mask inside the window), the window its bounding box grown by `pad` px (clipped to the image)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(mask, np.uint8), connectivity=8
    )
    height, width = mask.shape
    out = []
    for i in range(1, int(n)):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            window = (
                slice(max(y - pad, 0), min(y + h + pad, height)),
                slice(max(x - pad, 0), min(x + w + pad, width)),
            )
            out.append((window, np.asarray(labels[window] == i, np.bool_)))
    return out


def _interior(region: NDArray[np.bool_], margin: int) -> NDArray[np.bool_]:
    """`region` eroded by `margin` px (the edge of the array erodes it too)."""
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    eroded = cv2.erode(region.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return np.asarray(eroded > 0, np.bool_)


def _sharp_rows(grey: NDArray[np.float32], inner: NDArray[np.bool_], *, step: float, run: int) -> bool:
    """Whether a horizontal step of >= `step` grey levels between two rows, `run` px long, lies inside
    `inner`: the row-to-row difference averaged over `run` columns (noise averages out) exceeds `step`
    and the same difference two rows above and below by `step` (a steep ramp, as a blur leaves, does not),
    at `run` neighbouring positions in a row."""
    if grey.shape[0] < 2:
        return False
    diff = cv2.blur(np.diff(grey, axis=0), (run, 1), borderType=cv2.BORDER_REFLECT)  # (H-1, W)
    mag = np.abs(diff)
    padded = np.pad(mag, ((2, 2), (0, 0)), mode="edge")
    sharp = mag - np.maximum(padded[:-4], padded[4:]) > step
    along = cv2.erode(inner.astype(np.uint8), np.ones((1, run), np.uint8), borderValue=0) > 0
    hits = (sharp & along[:-1] & along[1:]).astype(np.uint8)
    # a seam, not a granule of the fill: `run` hits in a row (a straight step about 2 × `run` px long)
    return bool((cv2.erode(hits, np.ones((1, run), np.uint8), borderValue=0) > 0).any())


def _nested(grey: NDArray[np.float32], region: NDArray[np.bool_], *, step: float, run: int) -> bool:
    inner = _interior(region, REGION_MARGIN)
    if not inner.any():
        return False
    return _sharp_rows(grey, inner, step=step, run=run) or _sharp_rows(grey.T, inner.T, step=step, run=run)


def _flat(grey: NDArray[np.float32], region: NDArray[np.bool_]) -> tuple[bool, float]:
    inner = _interior(region, REGION_MARGIN)
    values = grey[inner if inner.any() else region]
    if not values.size:
        return False, float("nan")
    median = float(np.median(values))
    return bool(np.mean(np.abs(values - median) <= FLAT_LEVELS) >= FLAT_SHARE), median


def _crop(region: NDArray[np.bool_]) -> Window | None:
    """The bounding box of a full-size region mask grown by 1 px (None: empty)."""
    windows = region_windows(region, min_area=1, pad=1)
    if not windows:
        return None
    rows = slice(min(w[0].start for w, _ in windows), max(w[0].stop for w, _ in windows))
    return rows, slice(min(w[1].start for w, _ in windows), max(w[1].stop for w, _ in windows))


def is_nested(
    out: Image, region: NDArray[np.bool_], *, step: float = NESTED_STEP, run: int = SEAM_RUN
) -> bool:
    """Whether the output shows a hard straight edge *inside* `region` ((H, W) mask): the outline of a
    second redaction inside the first, or the line where two overlapping redactions meet.

    Redaction boxes are axis-aligned, so their seams are horizontal or vertical steps: a step of >= `step`
    grey levels, sharp (not a ramp) and `run` px long, in the region's interior (its rim of
    `REGION_MARGIN` px, the seam with the outside, belongs to `border_ring`).
    """
    crop = _crop(region)
    return crop is not None and _nested(_grey(out)[crop], region[crop], step=step, run=run)


def is_flat(out: Image, region: NDArray[np.bool_]) -> tuple[bool, float]:
    """(whether `region` ((H, W) mask) of the output is a solid fill, its median grey): >= `FLAT_SHARE` of
    its interior pixels lie within `FLAT_LEVELS` of the median (the rim is left out: a feathered edge is not
    texture)."""
    crop = _crop(region)
    return (False, float("nan")) if crop is None else _flat(_grey(out)[crop], region[crop])


@dataclass(frozen=True)
class Appearance:
    """Appearance counts of one image, or of many summed (`pooled`); ratios are properties.

    Attributes:
        pixels: pixels in the image(s).
        changed: pixels changed anywhere.
        outside: pixels outside the (padded) sensitive boxes.
        changed_outside: of those, pixels changed.
        ring_pixels: pixels of the changed region's border ring.
        ring_output: sum of the output's Sobel magnitude over the ring.
        ring_raw: sum of the raw image's Sobel magnitude over the same ring.
        regions: connected changed regions (>= `MIN_REGION` px).
        nested: of those, regions with a hard straight edge inside (`is_nested`).
        flat: of those, solid fills (`is_flat`).
        black: of the flat ones, black fills (median grey < `BLACK_LEVEL`).
        seams: regions whose own part of the ring has an edge-energy ratio >= `SEAM_RATIO` (a visible
            outline: the pooled ratio dilutes one outlined region among many soft ones).
        images: images counted.
    """

    pixels: int
    changed: int
    outside: int
    changed_outside: int
    ring_pixels: int
    ring_output: float
    ring_raw: float
    regions: int
    nested: int
    flat: int
    black: int
    seams: int = 0
    images: int = 1

    @property
    def changed_share(self) -> float:
        """Share of all pixels changed (NaN without pixels)."""
        return self.changed / self.pixels if self.pixels else float("nan")

    @property
    def changed_outside_share(self) -> float:
        """Share of the pixels outside the padded sensitive boxes changed (NaN when none is outside)."""
        return self.changed_outside / self.outside if self.outside else float("nan")

    @property
    def border_edge_energy(self) -> float:
        """(mean output Sobel on the ring + `EDGE_FLOOR`) / (mean raw Sobel on the ring + `EDGE_FLOOR`);
        NaN when nothing changed (no ring)."""
        if not self.ring_pixels:
            return float("nan")
        n = self.ring_pixels
        return (self.ring_output / n + EDGE_FLOOR) / (self.ring_raw / n + EDGE_FLOOR)

    def as_dict(self) -> dict[str, float]:
        """The counts (JSON-ready); `Appearance(**d)` reads them back."""
        return {k: float(v) if isinstance(v, float) else int(v) for k, v in asdict(self).items()}

    def as_metrics(self, prefix: str = "check_quality/appearance") -> dict[str, float]:
        """`<prefix>_<name>`: the shares, the edge ratio, nested / flat / black regions per image."""
        per = self.images or 1
        return {
            f"{prefix}_changed_share": self.changed_share,
            f"{prefix}_changed_outside": self.changed_outside_share,
            f"{prefix}_border_edge_energy": self.border_edge_energy,
            f"{prefix}_regions_per_image": self.regions / per,
            f"{prefix}_nested_regions": float(self.nested),
            f"{prefix}_flat_regions": float(self.flat),
            f"{prefix}_black_regions": float(self.black),
            f"{prefix}_seam_regions": float(self.seams),
        }


def pooled(parts: Iterable[Appearance]) -> Appearance:
    """The counts of many images summed (shares and the edge ratio are then pixel-weighted).

    Raises:
        InvalidInputError: no parts.
    """
    items = list(parts)
    if not items:
        raise InvalidInputError("pooled: no appearance records to pool")
    total = {f.name: sum(getattr(a, f.name) for a in items) for f in fields(Appearance)}
    return Appearance(**total)


def appearance(raw: Image, out: Image, *, sensitive_boxes: ArrayLike, tolerance: int = 0) -> Appearance:
    """Measure one anonymized image against its raw version.

    Args:
        raw: (H, W, 3) uint8 RGB input (or what the tool writes when it redacts nothing).
        out: (H, W, 3) uint8 RGB anonymized output, same shape.
        sensitive_boxes: (N, 4) int [x0, y0, x1, y1]: the boxes the anonymizer was meant to change,
            already padded (`pad_sensitive`); pixels inside them count as inside.
        tolerance: see `changed_mask` (the shares); the ring, regions, nested and flat ones follow the
            change a person sees (`visible_mask`).
    Raises:
        InvalidInputError: bad images or boxes.
    """
    changed = changed_mask(raw, out, tolerance=tolerance)
    inside = box_mask(as_boxes(sensitive_boxes, name="sensitive_boxes"), changed.shape)
    seen = visible_mask(raw, out)
    ring = border_ring(seen)
    grey_out, grey_raw = _grey(out), _grey(raw)
    g_out, g_raw = sobel_magnitude(grey_out), sobel_magnitude(grey_raw)
    nested = flat = black = seams = 0
    windows = region_windows(seen, pad=RING_WIDTH + 1)  # room for the region's part of the ring
    for win, region in windows:
        is_flat_fill, median = _flat(grey_out[win], region)
        nested += _nested(grey_out[win], region, step=NESTED_STEP, run=SEAM_RUN)
        flat, black = flat + is_flat_fill, black + (is_flat_fill and median < BLACK_LEVEL)
        seams += _edge_ratio(g_out[win], g_raw[win], ring[win] & _near(region)) >= SEAM_RATIO
    return Appearance(
        pixels=int(changed.size),
        changed=int(changed.sum()),
        outside=int((~inside).sum()),
        changed_outside=int((changed & ~inside).sum()),
        ring_pixels=int(ring.sum()),
        ring_output=float(g_out[ring].sum()),
        ring_raw=float(g_raw[ring].sum()),
        regions=len(windows),
        nested=nested,
        flat=flat,
        black=black,
        seams=seams,
    )


def _near(region: NDArray[np.bool_], width: int = RING_WIDTH) -> NDArray[np.bool_]:
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return np.asarray(cv2.dilate(region.astype(np.uint8), kernel) > 0, np.bool_)


def _edge_ratio(g_out: NDArray[np.float32], g_raw: NDArray[np.float32], where: NDArray[np.bool_]) -> float:
    """`Appearance.border_edge_energy` over the pixels `where` (NaN when there are none)."""
    if not where.any():
        return float("nan")
    return (float(g_out[where].mean()) + EDGE_FLOOR) / (float(g_raw[where].mean()) + EDGE_FLOOR)


def flat_boxes(out: Image, boxes: ArrayLike) -> NDArray[np.bool_]:
    """(N,) whether the output inside each box is a solid fill (`is_flat` on the box)."""
    b = as_boxes(boxes, name="boxes")
    grey = _grey(check_image(out, name="out"))
    return np.array(
        [_flat(grey[y0:y1, x0:x1], np.ones((y1 - y0, x1 - x0), np.bool_))[0] for x0, y0, x1, y1 in b],
        np.bool_,
    )

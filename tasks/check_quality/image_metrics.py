"""PSNR and SSIM between a raw image and its anonymized version, whole and outside the sensitive boxes.

Outside the boxes the anonymizer should have changed nothing: a drop there is collateral damage
(a false-positive redaction, a colour or re-encoding change), which the whole-image numbers hide
behind the intended changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from tasks.check_quality._boxes import as_boxes, box_mask
from tasks.errors import InvalidInputError
from tasks.types import Image, check_image

PSNR_CAP_DB = 100.0  # identical pixels give PSNR = inf; reported as this value so means stay finite
SSIM_WIN = 7  # skimage's default window; pixels this close to a box see inside it


@dataclass(frozen=True)
class ImageQuality:
    """Quality of one anonymized image against its raw version.

    Attributes:
        psnr_whole: PSNR in dB over all pixels, capped at `PSNR_CAP_DB`.
        psnr_outside: PSNR in dB over the pixels outside the sensitive boxes, capped; NaN if none.
        ssim_whole: mean SSIM over the image (skimage's mean, borders cropped).
        ssim_outside: mean of the SSIM map over pixels whose whole 7×7 window lies outside the boxes; NaN if none.
        outside_fraction: share of pixels counted by `psnr_outside`.
    """

    psnr_whole: float
    psnr_outside: float
    ssim_whole: float
    ssim_outside: float
    outside_fraction: float


def _psnr(raw: NDArray[np.uint8], anon: NDArray[np.uint8]) -> float:
    """PSNR in dB of two same-shape uint8 arrays, `PSNR_CAP_DB` when they are identical, NaN when empty."""
    if raw.size == 0:
        return float("nan")
    if mean_squared_error(raw, anon) == 0:
        return PSNR_CAP_DB
    psnr = float(peak_signal_noise_ratio(raw, anon, data_range=255))  # type: ignore[no-untyped-call]
    return min(psnr, PSNR_CAP_DB)


def image_quality(raw: Image, anon: Image, *, sensitive_boxes: ArrayLike) -> ImageQuality:
    """Measure PSNR and SSIM of `anon` against `raw`, over the whole image and outside `sensitive_boxes`.

    PSNR of identical pixels is infinite; it is reported as `PSNR_CAP_DB` (100 dB). "Outside" PSNR
    uses the pixels not covered by any box. "Outside" SSIM averages the full SSIM map (7×7 uniform
    window, `channel_axis=2`, `data_range=255`) over pixels at least 3 px from every box, so that no
    window reaches into a box: a change made only inside the boxes leaves it at exactly 1. When
    no pixel is outside, the outside values are NaN (`QualitySummary` skips NaNs).

    Args:
        raw: (H, W, 3) uint8 RGB, the image before anonymization.
        anon: (H, W, 3) uint8 RGB, the same image after anonymization.
        sensitive_boxes: (N, 4) int [x0, y0, x1, y1], x1/y1 exclusive; clipped to the image. May be empty.
    Returns:
        The image's `ImageQuality`.
    Raises:
        InvalidInputError: an image is not (H, W, 3) uint8, the two differ in shape, a box is malformed,
            or the image is smaller than the 7×7 SSIM window.
    """
    raw, anon = check_image(raw, name="raw"), check_image(anon, name="anon")
    if raw.shape != anon.shape:
        raise InvalidInputError(f"anon: shape {anon.shape} differs from raw {raw.shape}")
    if min(raw.shape[:2]) < SSIM_WIN:
        raise InvalidInputError(f"raw: {raw.shape[:2]} is smaller than the {SSIM_WIN}×{SSIM_WIN} SSIM window")
    boxes = as_boxes(sensitive_boxes, name="sensitive_boxes")
    outside = ~box_mask(boxes, raw.shape[:2])
    ssim_outside = ~box_mask(boxes, raw.shape[:2], grow=SSIM_WIN // 2)
    mssim, ssim_map = structural_similarity(  # type: ignore[no-untyped-call]
        raw, anon, channel_axis=2, data_range=255, full=True
    )
    return ImageQuality(
        psnr_whole=_psnr(raw, anon),
        psnr_outside=_psnr(raw[outside], anon[outside]),
        ssim_whole=float(mssim),
        ssim_outside=float(ssim_map[ssim_outside].mean()) if ssim_outside.any() else float("nan"),
        outside_fraction=float(outside.mean()),
    )

"""PSNR, SSIM and MS-SSIM between a raw image and its anonymized version, whole and outside the sensitive boxes.

Outside the boxes the anonymizer should have changed nothing: a drop there is collateral damage
(a false-positive redaction, a colour or re-encoding change), which the whole-image numbers hide
behind the intended changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import peak_signal_noise_ratio

from tasks.boxes import as_boxes, box_mask
from tasks.errors import InvalidInputError
from tasks.types import Image, check_image

PSNR_CAP_DB = 100.0  # identical pixels give PSNR = inf; reported as this value so means stay finite
SSIM_WIN = 7  # skimage's default window; pixels this close to a box see inside it
# MS-SSIM (Wang, Simoncelli & Bovik 2003): 5 scales, 11×11 Gaussian window of sigma 1.5, these weights.
MSSSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_WIN, MSSSIM_SIGMA = 11, 1.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


@dataclass(frozen=True)
class ImageQuality:
    """Quality of one anonymized image against its raw version.

    Attributes:
        psnr_whole: PSNR in dB over all pixels, capped at `PSNR_CAP_DB`.
        psnr_outside: PSNR in dB over the pixels outside the sensitive boxes, capped; NaN if none.
        ssim_whole: mean SSIM over the image (skimage's mean, borders cropped).
        ssim_outside: mean of the SSIM map over pixels whose whole 7×7 window lies outside the boxes; NaN if none.
        outside_fraction: share of pixels counted by `psnr_outside`.
        msssim_whole: MS-SSIM over the image (`ms_ssim`).
        msssim_outside: MS-SSIM of `raw` against `anon` with the boxes restored from `raw`: only changes
            outside the boxes lower it (a window-based multi-scale index cannot be masked exactly).
    """

    psnr_whole: float
    psnr_outside: float
    ssim_whole: float
    ssim_outside: float
    outside_fraction: float
    msssim_whole: float | None = None  # None: not measured (records written before MS-SSIM existed)
    msssim_outside: float | None = None


def psnr_db(raw: Image, anon: Image) -> float:
    """Uncapped PSNR in dB of two same-shape uint8 images: `inf` when they are identical.

    Raises:
        InvalidInputError: shapes differ or the images are empty.
    """
    if raw.shape != anon.shape or raw.size == 0:
        raise InvalidInputError(f"anon: shape {anon.shape} differs from raw {raw.shape} (or is empty)")
    if np.array_equal(raw, anon):  # skimage would divide by a zero MSE (RuntimeWarning, then inf)
        return float("inf")
    return float(peak_signal_noise_ratio(raw, anon, data_range=255))  # type: ignore[no-untyped-call]


def _blur(a: NDArray[np.float64]) -> NDArray[np.float64]:
    out = cv2.GaussianBlur(a, (MSSSIM_WIN, MSSSIM_WIN), MSSSIM_SIGMA, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, np.float64).reshape(a.shape)


def _moments(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The Gaussian-window mean and variance of one (H, W, C) float image (`_ssim_cs`'s per-image terms)."""
    mx = _blur(x)
    return mx, _blur(x * x) - mx * mx


def _ssim_cs(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    x_moments: tuple[NDArray[np.float64], NDArray[np.float64]],
    *,
    with_ssim: bool = True,
) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two (H, W, C) float images, Gaussian window;
    `x_moments`: `_moments(x)`, computed once when `x` is compared with several images; `with_ssim`
    False: the SSIM mean is not computed (NaN), as MS-SSIM uses it at the coarsest scale only."""
    (mx, vx), (my, vy) = x_moments, _moments(y)
    cov = _blur(x * y) - mx * my
    cs = (2 * cov + _C2) / (vx + vy + _C2)
    if not with_ssim:
        return float("nan"), float(cs.mean())
    ssim = (2 * mx * my + _C1) / (mx * mx + my * my + _C1) * cs
    return float(ssim.mean()), float(cs.mean())


def _half(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """2× area downsampling (odd sizes rounded down), as between MS-SSIM's scales."""
    out = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return np.asarray(out, np.float64).reshape(a.shape[0] // 2, a.shape[1] // 2, -1)


# Kept hand-written: pytorch-msssim / torchmetrics differ by 1e-4..1e-2 and refuse <= 160 px (see docstring).
def ms_ssim(raw: Image, anon: Image) -> float:
    """Multi-scale SSIM (Wang et al. 2003) of two same-shape (H, W, 3) uint8 images, in [0, 1].

    Five scales (2× area downsampling between them) with the paper's weights; images too small for
    five scales of an 11-px window use the scales that fit, weights renormalised. Negative
    contrast-structure means are clipped to 0 (as common implementations do) so the product is defined.

    Not a library call: this averages the whole edge-reflected (cv2 BORDER_REFLECT) map, pytorch-msssim
    1.0.0 only the valid interior, torchmetrics 1.9.0 a reflect-101 map for SSIM but the interior for cs;
    pytorch-msssim takes the product per channel before averaging; both pool odd sizes differently
    (zero-padded / cropped, not area-weighted) and refuse images of 160 px or less, where this uses
    fewer scales. Measured on 256–600 px photos:
    |Δ| = 1.2e-4 (light noise) to 1.0e-2 (heavy noise); cropping the border and a per-channel product
    brings pytorch-msssim to 2e-6, so the gap is those choices, not a bug.

    Raises:
        InvalidInputError: bad images, shapes differ, or smaller than 11×11.
    """
    return ms_ssim_many(raw, [anon])[0]


def ms_ssim_many(raw: Image, others: Sequence[Image]) -> list[float]:
    """`ms_ssim(raw, o)` for each of `others`, `raw`'s own Gaussian moments computed once per scale
    (the same numbers as one call each; an image identical to `raw` scores exactly 1, as computed).

    Raises:
        InvalidInputError: as `ms_ssim`.
    """
    x = check_image(raw, name="raw").astype(np.float64)
    ys = [check_image(o, name="anon") for o in others]
    if any(y.shape != x.shape for y in ys) or min(x.shape[:2]) < MSSSIM_WIN:
        shapes = [y.shape for y in ys]
        raise InvalidInputError(f"ms_ssim: shapes {x.shape} / {shapes} differ or are below {MSSSIM_WIN} px")
    # identical pixels: cs = (2 vx + C2) / (vx + vx + C2) and the luminance term are exactly 1 at every
    # pixel and scale, so the index is exactly 1 without computing it
    todo = [i for i, y in enumerate(ys) if not np.array_equal(y, raw)]
    scores = [1.0] * len(ys)
    if not todo:
        return scores
    levels = min(len(MSSSIM_WEIGHTS), 1 + int(np.log2(min(x.shape[:2]) / MSSSIM_WIN)))
    weights = np.asarray(MSSSIM_WEIGHTS[:levels]) / sum(MSSSIM_WEIGHTS[:levels])
    current = [ys[i].astype(np.float64) for i in todo]
    terms: list[list[float]] = [[] for _ in todo]
    for level in range(levels):
        moments = _moments(x)
        for j, y in enumerate(current):
            last = level == levels - 1
            ssim, cs = _ssim_cs(x, y, moments, with_ssim=last)
            terms[j].append(max(ssim if last else cs, 0.0))
        if level < levels - 1:
            x, current = _half(x), [_half(y) for y in current]
    for i, t in zip(todo, terms, strict=True):
        scores[i] = float(np.prod(np.asarray(t) ** weights))
    return scores


def ssim_map(raw: Image, anon: Image) -> tuple[float, NDArray[np.float64]]:
    """skimage's `structural_similarity(raw, anon, channel_axis=2, data_range=255, full=True)`, i.e.
    (mean SSIM, (H, W, 3) SSIM map): a 7×7 uniform window with the sample covariance (N / (N − 1)),
    edges reflected, the mean over each channel's map without its 3-px border, averaged over channels.

    The same formula with OpenCV's box filter (scipy's `uniform_filter` there): ~5× faster on a 256 px
    image; equal to skimage's within 1e-12 (`tests/tasks/test_check_quality_msssim.py`).
    """
    x, y = raw.astype(np.float64), anon.astype(np.float64)

    def mean(a: NDArray[np.float64]) -> NDArray[np.float64]:
        out = cv2.boxFilter(a, -1, (SSIM_WIN, SSIM_WIN), normalize=True, borderType=cv2.BORDER_REFLECT)
        return np.asarray(out, np.float64).reshape(a.shape)

    norm = SSIM_WIN**2 / (SSIM_WIN**2 - 1)
    ux, uy = mean(x), mean(y)
    vx, vy, vxy = (
        norm * (mean(x * x) - ux * ux),
        norm * (mean(y * y) - uy * uy),
        norm * (mean(x * y) - ux * uy),
    )
    s = ((2 * ux * uy + _C1) * (2 * vxy + _C2)) / ((ux**2 + uy**2 + _C1) * (vx + vy + _C2))
    pad = (SSIM_WIN - 1) // 2
    inner = s[pad : s.shape[0] - pad, pad : s.shape[1] - pad]
    return float(np.mean([inner[..., c].mean(dtype=np.float64) for c in range(s.shape[2])])), s


def _psnr(raw: NDArray[np.uint8], anon: NDArray[np.uint8]) -> float:
    """PSNR in dB of two same-shape uint8 arrays, `PSNR_CAP_DB` when they are identical, NaN when empty."""
    return float("nan") if raw.size == 0 else min(psnr_db(raw, anon), PSNR_CAP_DB)


def image_quality(raw: Image, anon: Image, *, sensitive_boxes: ArrayLike) -> ImageQuality:
    """Measure PSNR, SSIM and MS-SSIM of `anon` against `raw`, whole and outside `sensitive_boxes`.

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
    mssim, smap = ssim_map(raw, anon)
    restored = anon.copy()
    restored[~outside] = raw[~outside]
    msssim = ms_ssim_many(raw, [anon, restored] if outside.any() else [anon])
    return ImageQuality(
        psnr_whole=_psnr(raw, anon),
        psnr_outside=_psnr(raw[outside], anon[outside]),
        ssim_whole=float(mssim),
        ssim_outside=float(smap[ssim_outside].mean()) if ssim_outside.any() else float("nan"),
        outside_fraction=float(outside.mean()),
        msssim_whole=msssim[0],
        msssim_outside=msssim[1] if outside.any() else float("nan"),
    )

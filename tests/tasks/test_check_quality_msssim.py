"""Known answers of the image-quality additions: uncapped PSNR, MS-SSIM whole and outside the boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.check_quality.image_metrics import image_quality, ms_ssim, psnr_db
from tasks.errors import InvalidInputError


@pytest.fixture
def photo(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:256, 0:256]
    base = np.stack([xx, yy, (xx + yy) / 2], axis=-1).astype(np.float64)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def test_identical_images_give_psnr_inf_ssim_one_msssim_one(photo: np.ndarray) -> None:
    assert psnr_db(photo, photo.copy()) == math.inf
    assert ms_ssim(photo, photo.copy()) == pytest.approx(1.0, abs=1e-12)
    q = image_quality(photo, photo.copy(), sensitive_boxes=[[10, 10, 60, 60]])
    assert q.ssim_whole == pytest.approx(1.0) and q.msssim_whole == pytest.approx(1.0)
    assert q.msssim_outside == pytest.approx(1.0)


def test_psnr_known_value() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = a + 16  # mse = 256 → 10·log10(255² / 256)
    assert psnr_db(a, b) == pytest.approx(10 * math.log10(255**2 / 256))


def test_msssim_falls_with_noise_and_ignores_changes_inside_boxes(
    photo: np.ndarray, rng: np.random.Generator
) -> None:
    light = np.clip(photo + rng.normal(0, 5, photo.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(photo + rng.normal(0, 40, photo.shape), 0, 255).astype(np.uint8)
    assert 1 > ms_ssim(photo, light) > ms_ssim(photo, heavy) > 0
    inside = photo.copy()
    inside[40:120, 40:120] = 0
    q = image_quality(photo, inside, sensitive_boxes=[[40, 40, 120, 120]])
    assert q.msssim_whole < 0.95
    assert q.msssim_outside == pytest.approx(1.0)


def test_msssim_small_images_use_the_scales_that_fit(rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert ms_ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="below 11"):
        ms_ssim(a[:8, :8], a[:8, :8])


def _reference_msssim(raw: np.ndarray, anon: np.ndarray) -> float:
    """MS-SSIM computed the plain way: every blur of both images at every scale, SSIM at each scale."""
    import cv2

    from tasks.check_quality.image_metrics import MSSSIM_SIGMA, MSSSIM_WEIGHTS, MSSSIM_WIN

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # Wang et al.'s K1, K2 for 8-bit data, stated here on purpose

    def blur(a: np.ndarray) -> np.ndarray:
        return np.asarray(cv2.GaussianBlur(a, (MSSSIM_WIN, MSSSIM_WIN), MSSSIM_SIGMA,
                                           borderType=cv2.BORDER_REFLECT), np.float64).reshape(a.shape)

    x, y = raw.astype(np.float64), anon.astype(np.float64)
    levels = min(len(MSSSIM_WEIGHTS), 1 + int(np.log2(min(x.shape[:2]) / MSSSIM_WIN)))
    weights = np.asarray(MSSSIM_WEIGHTS[:levels]) / sum(MSSSIM_WEIGHTS[:levels])
    terms = []
    for level in range(levels):
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
        terms.append(max(float(ssim.mean()) if level == levels - 1 else float(cs.mean()), 0.0))
        x, y = (np.asarray(cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA),
                           np.float64).reshape(a.shape[0] // 2, a.shape[1] // 2, -1) for a in (x, y))
    return float(np.prod(np.asarray(terms) ** weights))


@pytest.mark.parametrize("shape", [(256, 256), (53, 37), (120, 300)])
def test_ssim_map_is_skimages_structural_similarity(shape: tuple[int, int], rng: np.random.Generator) -> None:
    from skimage.metrics import structural_similarity

    from tasks.check_quality.image_metrics import ssim_map

    a = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    b[5:30, 5:30] = 0
    want, want_map = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    got, got_map = ssim_map(a, b)
    assert got == pytest.approx(want, abs=1e-12)
    assert got_map.shape == want_map.shape and np.abs(got_map - want_map).max() < 1e-12


def test_msssim_many_matches_one_plain_computation_per_image(photo: np.ndarray, rng: np.random.Generator) -> None:
    from tasks.check_quality.image_metrics import ms_ssim_many

    noisy = np.clip(photo + rng.normal(0, 20, photo.shape), 0, 255).astype(np.uint8)
    boxed = photo.copy()
    boxed[30:90, 100:160] = 7
    others = [noisy, photo.copy(), boxed, noisy[::-1].copy()]
    got = ms_ssim_many(photo, others)
    assert got[1] == 1.0  # identical pixels: exactly 1, as the formula gives
    assert got == pytest.approx([_reference_msssim(photo, o) for o in others], abs=1e-12)
    assert _reference_msssim(photo, photo) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(InvalidInputError, match="differ"):
        ms_ssim_many(photo, [noisy, photo[:100]])

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

"""Pins of hand-written formulas replaced by library calls: each library-backed function equals an independent
reference (the formula it replaced, kept here, or published values) to 1e-6 on fixed inputs.

Kept hand-written (no pin here, reasons in the code): `ms_ssim` (pytorch-msssim / torchmetrics choose other
border, channel and pooling rules) and the LPIPS network (the `lpips` package needs torchvision and a download).
`ssim_map` is skimage's `structural_similarity` formula on OpenCV's box filter (~5× faster, the stage's
per-image cost): pinned to skimage itself within 1e-12 in test_check_quality_msssim.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from scipy.stats import binomtest

import tasks.audit.epsilon as epsilon_module
from tasks.audit.epsilon import clopper_pearson, empirical_epsilon
from tasks.audit.mia import cross_entropy
from tasks.check_quality.image_metrics import PSNR_CAP_DB, image_quality, psnr_db

TOL = 1e-6


# --- Clopper–Pearson: kept as beta quantiles, pinned to scipy.stats.binomtest(...).proportion_ci --------
# binomtest solves the same exact interval by root finding (~2 ms a call, 20x beta.ppf): the audit's
# threshold scans call it thousands of times, so the closed form stays and this pins it to the library.


def _cp_binomtest(k: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """scipy's exact (Clopper–Pearson) two-sided interval."""
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


CP_CASES = [(k, n) for n in (1, 2, 7, 10, 100, 1000, 20000) for k in sorted({0, 1, n // 3, n // 2, n - 1, n})]


@pytest.mark.parametrize("alpha", [0.05, 0.0125, 0.5, 1e-6])
def test_clopper_pearson_equals_scipy_binomtest(alpha: float) -> None:
    got = np.array([clopper_pearson(k, n, alpha=alpha) for k, n in CP_CASES])
    ref = np.array([_cp_binomtest(k, n, alpha=alpha) for k, n in CP_CASES])
    assert np.max(np.abs(got - ref)) < TOL


@pytest.mark.parametrize("n", [1, 10, 400])
def test_clopper_pearson_edges_are_two_sided_closed_forms(n: int) -> None:
    # k = 0: upper end solves (1 − p)^n = alpha / 2; k = n: lower end solves p^n = alpha / 2 (two-sided).
    assert clopper_pearson(0, n, alpha=0.05) == pytest.approx((0.0, 1 - 0.025 ** (1 / n)), abs=TOL)
    assert clopper_pearson(n, n, alpha=0.05) == pytest.approx((0.025 ** (1 / n), 1.0), abs=TOL)
    assert clopper_pearson(0, n)[0] == 0.0 and clopper_pearson(n, n)[1] == 1.0


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (5, 10, 0.1870860, 0.8129140),  # R: binom.test(5, 10)$conf.int
        (1, 100, 0.0002531460, 0.0544593854),  # R: binom.test(1, 100)$conf.int
        (3, 20, 0.03207094, 0.37892683),  # R: binom.test(3, 20)$conf.int
    ],
)
def test_clopper_pearson_published_values(k: int, n: int, lo: float, hi: float) -> None:
    assert clopper_pearson(k, n, alpha=0.05) == pytest.approx((lo, hi), abs=TOL)


def test_empirical_epsilon_is_the_same_with_the_library_interval(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    members, nonmembers = rng.normal(2.0, 1.0, 300), rng.normal(0.0, 1.0, 300)
    ours = empirical_epsilon(members, nonmembers, delta=1e-5, alpha=0.05, seed=1)
    monkeypatch.setattr(epsilon_module, "clopper_pearson", _cp_binomtest)
    library = empirical_epsilon(members, nonmembers, delta=1e-5, alpha=0.05, seed=1)
    assert ours.epsilon_lower_bound > 0.5  # a real bound, not the 0 floor
    assert ours.threshold == library.threshold
    assert ours.epsilon_lower_bound == pytest.approx(library.epsilon_lower_bound, abs=TOL)


# --- cross-entropy: scipy.special.log_softmax ------------------------------------------------------------


def _ce_logsumexp(logits: NDArray[np.float64], labels: NDArray[np.int64]) -> NDArray[np.float64]:
    """The replaced formula: max-shifted log-sum-exp minus the label's logit."""
    z = np.asarray(logits, np.float64)
    zy = np.take_along_axis(z, np.broadcast_to(labels[:, None], z.shape[:-1] + (1,)), -1)[..., 0]
    zmax = z.max(-1)
    out: NDArray[np.float64] = np.log(np.exp(z - zmax[..., None]).sum(-1)) + zmax - zy
    return out


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])  # 1000: exp overflows without the max shift
def test_cross_entropy_equals_logsumexp_form_and_torch(rng: np.random.Generator, scale: float) -> None:
    logits = rng.normal(0.0, scale, (5, 64, 10))  # (K shadows, N samples, C classes)
    labels = rng.integers(0, 10, 64)
    got = cross_entropy(logits, labels)
    assert got.shape == (5, 64)
    assert np.max(np.abs(got - _ce_logsumexp(logits, labels))) < TOL
    torch_ce = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits[0]), torch.from_numpy(labels), reduction="none"
    ).numpy()
    assert np.max(np.abs(got[0] - torch_ce)) < TOL * scale  # float64 both; scale: relative rounding


def test_cross_entropy_known_values() -> None:
    logits = np.array([[math.log(3.0), 0.0], [0.0, 0.0], [0.0, -1e4]])  # p_y = 3/4, 1/2, ~1
    assert cross_entropy(logits, np.array([0, 1, 0])) == pytest.approx(
        [-math.log(0.75), math.log(2), 0], abs=TOL
    )


# --- PSNR: skimage.metrics.peak_signal_noise_ratio (data_range=255) ----------------------------------------


def _psnr_formula(raw: NDArray[np.uint8], anon: NDArray[np.uint8]) -> float:
    """The replaced formula: 10 log10(255² / MSE), inf at MSE = 0."""
    mse = float(np.mean((raw.astype(np.float64) - anon.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("sd", [0.6, 3.0, 20.0, 90.0])
def test_psnr_db_equals_formula(rng: np.random.Generator, sd: float) -> None:
    raw = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    anon = np.clip(raw + rng.normal(0, sd, raw.shape), 0, 255).astype(np.uint8)
    assert not np.array_equal(raw, anon)
    assert abs(psnr_db(raw, anon) - _psnr_formula(raw, anon)) < TOL


def test_psnr_db_extremes_and_identical_images() -> None:
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    assert psnr_db(black, white) == pytest.approx(0.0, abs=TOL)  # MSE = 255²
    one = black.copy()
    one[0, 0, 0] = 1  # MSE = 1 / 192
    assert psnr_db(black, one) == pytest.approx(10 * math.log10(255**2 * 192), abs=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero warning on the way to inf
        assert psnr_db(black, black.copy()) == math.inf
        big = np.full((16, 16, 3), 200, np.uint8)  # image_quality also runs MS-SSIM: >= 11 px
        q = image_quality(big, big.copy(), sensitive_boxes=np.zeros((0, 4), np.int64))
    assert q.psnr_whole == PSNR_CAP_DB and q.psnr_outside == PSNR_CAP_DB

"""Obfuscators: pixels outside boxes never change, pixels inside do, bad input raises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.anonymize.obfuscate import OBFUSCATORS, blur_regions, obfuscate, pixelate_regions, soft_extent
from tasks.anonymize.replace import lfw_pool
from tasks.errors import InvalidInputError

OPTIONS = {
    "pixelate": {"block": 4},
    "blur": {"strength": 0.5},
    "mask": {},
    "dp_pixelate": {"block": 4, "epsilon": 1.0, "neighbourhood": 1, "rng": np.random.default_rng(0)},
    "inpaint": {"radius": 3, "algorithm": "telea"},
    "inpaint_soft": {"radius": 3, "rng": np.random.default_rng(0)},
    "replace": {"pool": lfw_pool(k=10)},
    "silhouette": {},
}
# Methods that smooth the box (its std at least halves on noise); dp_pixelate adds noise, replace draws a face.
SMOOTHING = ("pixelate", "blur", "mask", "inpaint")


@st.composite
def image_and_boxes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(8, 48)), draw(st.integers(8, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    boxes = []
    for _ in range(draw(st.integers(0, 4))):
        x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        boxes.append([x0, y0, draw(st.integers(x0 + 1, w)), draw(st.integers(y0 + 1, h))])
    return image, np.asarray(boxes, np.int64).reshape(-1, 4)


@pytest.mark.parametrize("method", sorted(OBFUSCATORS))
@settings(max_examples=60, deadline=None)
@given(case=image_and_boxes())
def test_pixels_outside_boxes_unchanged(method: str, case: tuple[np.ndarray, np.ndarray]) -> None:
    image, boxes = case
    before = image.copy()
    out = OBFUSCATORS[method](image, boxes, **OPTIONS[method])
    inside = np.zeros(image.shape[:2], bool)
    h, w = image.shape[:2]
    # inpaint_soft's fade reaches past the box by design (no side of the box shows): up to its soft_extent
    reach = soft_extent(boxes, core=1.1, feather=0.25, width=w, height=h) if method == "inpaint_soft" else boxes
    for x0, y0, x1, y1 in reach:
        inside[y0:y1, x0:x1] = True
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~inside], image[~inside])
    np.testing.assert_array_equal(image, before)  # a copy, never in place


@pytest.mark.parametrize("method", sorted(OBFUSCATORS))
def test_pixels_inside_boxes_change(method: str) -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = OBFUSCATORS[method](image, np.array([[8, 8, 40, 40]]), **OPTIONS[method])
    changed = (out[8:40, 8:40] != image[8:40, 8:40]).any(axis=-1).mean()
    assert changed > 0.9
    if method in SMOOTHING:
        assert out[8:40, 8:40].astype(float).std() < image[8:40, 8:40].astype(float).std() / 2


def test_pixelate_makes_uniform_cells() -> None:
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = pixelate_regions(image, np.array([[0, 0, 32, 32]]), block=8)
    cell = out[8:16, 16:24].reshape(-1, 3)
    assert (cell == cell[0]).all()
    np.testing.assert_allclose(cell[0], image[8:16, 16:24].reshape(-1, 3).mean(axis=0), atol=1)


def test_blur_sigma_scales_with_box() -> None:
    """A stronger blur leaves less contrast; the default strength 0.5 leaves a flat blob."""
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    box = np.array([[0, 0, 64, 64]])
    contrast = [blur_regions(image, box, strength=s).astype(float).std() for s in (0.01, 0.05, 0.5)]
    assert contrast[0] > contrast[1] > contrast[2]
    assert contrast[2] < 2.0 < 70 < image.std()  # sigma 32 px on a 64 px box
    edges = np.abs(np.diff(blur_regions(image, box, strength=0.5).astype(float), axis=1)).mean()
    assert edges < 1.0


@pytest.mark.parametrize(
    "boxes",
    [
        np.array([[0, 0, 70, 10]]),  # beyond the right edge
        np.array([[-1, 0, 10, 10]]),  # negative
        np.array([[10, 10, 10, 20]]),  # empty
        np.array([[20, 10, 10, 20]]),  # inverted
        np.array([0, 0, 10, 10]),  # not (N, 4)
        np.array([[0.5, 0, 10, 10]]),  # not integer
        [[0, 0, 10, 10]],  # not an array
    ],
)
@pytest.mark.parametrize("method", sorted(OBFUSCATORS))
def test_bad_boxes_raise(method: str, boxes: object) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(InvalidInputError, match="boxes"):
        OBFUSCATORS[method](image, boxes, **OPTIONS[method])


@pytest.mark.parametrize("image", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), "img"])
def test_bad_image_raises(image: object) -> None:
    with pytest.raises(InvalidInputError, match="image"):
        pixelate_regions(image, np.zeros((0, 4), np.int64), block=4)  # type: ignore[arg-type]


def test_obfuscate_dispatches_and_rejects_unknown_method() -> None:
    image = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    boxes = np.array([[4, 4, 20, 20]])
    np.testing.assert_array_equal(
        obfuscate(image, boxes, method="pixelate", block=4, blur_strength=0.5),
        pixelate_regions(image, boxes, block=4),
    )
    assert (obfuscate(image, boxes, method="mask", block=4, blur_strength=0.5)[4:20, 4:20] == 0).all()
    with pytest.raises(InvalidInputError, match="unknown obfuscator 'swirl'"):
        obfuscate(image, boxes, method="swirl", block=4, blur_strength=0.5)
    with pytest.raises(InvalidInputError, match="block"):
        pixelate_regions(image, boxes, block=0)

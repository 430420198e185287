"""The per-method grid of sample anonymized images: what the comparison obfuscated, never a clear image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.anonymize.obfuscate import OBFUSCATORS
from tasks.check_quality.compare import (
    Sample,
    context_region,
    crop_resized,
    method_options,
    method_samples,
    obfuscate_sample,
)
from tasks.check_quality.plots import method_grid_figure
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.params import AnonymizeParams, CheckQualityParams
from tests.tasks.test_check_quality_compare import compare_samples

METHODS = CheckQualityParams().compare_methods  # blur, pixelate, mask, dp_pixelate, inpaint, replace


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return compare_samples(6)  # 4 of them have faces (the first, 4th, 5th and 6th)


def _with_faces(samples: list[Sample], n: int = 3) -> list[Sample]:
    return [s for s in samples if len(s.boxes.get("face", ()))][:n]


def _tile(value: int) -> np.ndarray:
    return np.full((20, 30, 3), value, np.uint8)


@pytest.mark.parametrize("label", ["none", "clear", "raw", "melt"])
def test_grid_refuses_a_clear_or_unknown_row(label: str) -> None:
    with pytest.raises(InvalidInputError, match="not an anonymization method"):
        method_grid_figure([("blur", [_tile(1)]), (label, [_tile(2)])], title="t")


def test_grid_refuses_ragged_rows_bad_images_and_nothing() -> None:
    with pytest.raises(InvalidInputError, match="images"):
        method_grid_figure([("blur", [_tile(1), _tile(2)]), ("mask", [_tile(3)])], title="t")
    with pytest.raises(InvalidInputError, match="uint8"):
        method_grid_figure([("blur", [np.zeros((4, 4), np.uint8)])], title="t")
    with pytest.raises(InvalidInputError, match="no images"):
        method_grid_figure([], title="t")


def test_grid_one_row_per_method_one_column_per_image() -> None:
    fig = method_grid_figure([("blur", [_tile(1), _tile(2)]), ("mask", [_tile(3), _tile(4)])], title="T")
    assert len(fig.axes) == 4
    assert [ax.get_ylabel() for ax in fig.axes] == ["blur", "", "mask", ""]
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert [int(np.asarray(a)[0, 0, 0]) for a in shown] == [1, 2, 3, 4]  # shown as given
    assert fig.get_suptitle() == "T"


def test_method_samples_refuses_the_clear_row(samples: list[Sample]) -> None:
    with pytest.raises(InvalidInputError, match="clear image"):
        method_samples(samples, methods=["blur", "none"], anonymize_params=AnonymizeParams(), seed=0)


def test_uncropped_samples_are_the_comparisons_own_output(samples: list[Sample]) -> None:
    a = AnonymizeParams()
    rows = method_samples(samples, methods=METHODS, anonymize_params=a, seed=3, n=2, crop=False)
    opts = method_options(a)
    for method, images in rows:
        for s, img in zip(_with_faces(samples, 2), images, strict=True):
            assert np.array_equal(img, obfuscate_sample(s, method=method, options=opts, anonymize=a, seed=3))


def test_cropped_samples_hide_every_face(samples: list[Sample]) -> None:
    rows = method_samples(samples, methods=METHODS, anonymize_params=AnonymizeParams(), seed=0)
    assert [m for m, _ in rows] == list(METHODS) and "none" not in dict(rows)
    shown = _with_faces(samples)
    assert len(shown) == 3
    for method, images in rows:
        assert len(images) == 3
        for s, img in zip(shown, images, strict=True):
            h, w = s.image.shape[:2]
            region = context_region(s.boxes["face"], width=w, height=h)
            raw = crop_resized(s.image, region, height=160)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape == raw.shape and img.shape[0] == 160
            fx0, fy0, fx1, fy1 = _face_in_crop(s, region, raw.shape[1])
            inside = np.abs(img[fy0:fy1, fx0:fx1].astype(int) - raw[fy0:fy1, fx0:fx1])
            assert inside.size and inside.mean() > 10, (method, s.image_id, inside.mean())


def _face_in_crop(s: Sample, region: tuple[int, int, int, int], crop_w: int) -> tuple[int, int, int, int]:
    """The largest face box in the crop's pixels, shrunk to whole output pixels inside it."""
    b = s.boxes["face"]
    x0, y0, x1, y1 = b[np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))]
    sx, sy = crop_w / (region[2] - region[0]), 160 / (region[3] - region[1])
    return (
        math.ceil((x0 - region[0]) * sx),
        math.ceil((y0 - region[1]) * sy),
        math.floor((x1 - region[0]) * sx),
        math.floor((y1 - region[1]) * sy),
    )


def test_context_region_grows_the_largest_face_by_its_size_clipped() -> None:
    faces = np.array([[10, 10, 20, 20], [100, 50, 140, 70]], np.int64)  # second: 40 x 20
    assert context_region(faces, width=200, height=100) == (60, 30, 180, 90)
    assert context_region(faces, width=150, height=80) == (60, 30, 150, 80)
    with pytest.raises(InvalidInputError):
        context_region(np.zeros((0, 4), np.int64), width=10, height=10)


def test_a_method_that_leaves_a_face_clear_fails_closed(
    samples: list[Sample], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(OBFUSCATORS, "blur", lambda image, boxes, **_: image.copy())
    with pytest.raises(AnonymizationError, match="unchanged"):
        method_samples(samples, methods=["blur"], anonymize_params=AnonymizeParams(), seed=0)

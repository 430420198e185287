"""check_quality appearance measures: changed share outside the boxes, border edge energy, nested / flat regions."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from tasks.check_quality.appearance import (
    Appearance,
    appearance,
    border_ring,
    changed_mask,
    flat_boxes,
    pad_sensitive,
    pooled,
)
from tasks.check_quality.compare import CompareConfig, CompareTools, MethodRow, compare_method, method_options
from tasks.check_quality.reid import AttackConfig
from tasks.check_quality.summary import ImageRecord, image_record, summarize
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams, TrainParams
from tasks.report.definitions import undefined
from tasks.types import Detections
from tests.conftest import FakeDetector
from tests.tasks.test_check_quality_compare import compare_samples

BOX = np.array([[40, 30, 80, 70]])  # x0, y0, x1, y1


@pytest.fixture
def light(rng: np.random.Generator) -> np.ndarray:
    """A 120×120 light, mildly textured RGB image (grey ~200, noise std 3)."""
    return np.clip(200 + rng.normal(0, 3, (120, 120, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def photo(rng: np.random.Generator) -> np.ndarray:
    """A 120×120 photo-like RGB image: smooth gradients, blobs of texture, noise."""
    yy, xx = np.mgrid[0:120, 0:120].astype(np.float64)
    base = np.stack([xx * 1.5, yy * 1.5, 128 + 60 * np.sin(xx / 9) * np.cos(yy / 7)], axis=-1)
    tex = cv2.GaussianBlur(rng.normal(0, 40, (120, 120, 3)), (0, 0), 2)
    return np.clip(base + tex + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def _fill(image: np.ndarray, box: np.ndarray, value: int) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = value
    return out


def _feathered_blur(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Blur inside `box`, blended in through a Gaussian-feathered elliptical weight (as deface-like tools do)."""
    x0, y0, x1, y1 = box
    weight = np.zeros(image.shape[:2], np.float32)
    centre, axes = (int(x0 + x1) // 2, int(y0 + y1) // 2), (int(x1 - x0) * 2 // 5, int(y1 - y0) * 2 // 5)
    cv2.ellipse(weight, centre, axes, 0, 0, 360, 1.0, -1)
    weight = cv2.GaussianBlur(weight, (0, 0), 4)[..., None]
    blurred = cv2.GaussianBlur(image, (0, 0), 6).astype(np.float32)
    return np.clip(np.rint(weight * blurred + (1 - weight) * image), 0, 255).astype(np.uint8)


def test_black_box_on_a_light_image_has_a_border_edge_energy_far_above_one(light: np.ndarray) -> None:
    a = appearance(light, _fill(light, BOX[0], 0), sensitive_boxes=BOX)
    assert a.border_edge_energy > 10
    assert a.flat == a.black == a.regions == a.seams == 1 and a.nested == 0


def test_feathered_blur_has_no_seam(photo: np.ndarray) -> None:
    a = appearance(photo, _feathered_blur(photo, BOX[0]), sensitive_boxes=BOX)
    # at most the photo's own gradient on the ring (a blur's ring is a little smoother: < 1)
    assert 0.5 < a.border_edge_energy < 1.2
    assert a.flat == a.black == a.nested == a.seams == 0
    # the same box filled flat grey on the same photo: a visible seam
    assert appearance(photo, _fill(photo, BOX[0], 128), sensitive_boxes=BOX).border_edge_energy > 2


def test_one_outlined_redaction_among_soft_ones_counts_as_a_seam(photo: np.ndarray) -> None:
    soft = appearance(photo, _feathered_blur(photo, BOX[0]), sensitive_boxes=BOX)
    both = appearance(photo, _fill(_feathered_blur(photo, BOX[0]), np.array([5, 90, 15, 100]), 0),
                      sensitive_boxes=BOX)
    alone = appearance(photo, _fill(photo, np.array([5, 90, 15, 100]), 0), sensitive_boxes=BOX)
    assert (both.regions, both.seams, soft.seams) == (2, 1, 0)
    assert both.border_edge_energy < alone.border_edge_energy  # the pooled ratio dilutes the outlined one


def test_changed_share_counts_the_pixels_outside_the_boxes(light: np.ndarray) -> None:
    out = _fill(_fill(light, BOX[0], 0), np.array([0, 0, 10, 5]), 0)  # the box, and 50 px outside it
    a = appearance(light, out, sensitive_boxes=BOX)
    assert (a.pixels, a.changed, a.outside, a.changed_outside) == (14400, 1650, 14400 - 1600, 50)
    assert a.changed_share == pytest.approx(1650 / 14400)
    assert a.changed_outside_share == pytest.approx(50 / (14400 - 1600))
    assert a.regions == 2


def test_a_change_inside_the_padded_box_counts_as_inside(light: np.ndarray) -> None:
    padded = pad_sensitive({"face": BOX, "body": BOX}, pads={"face": 0.25}, shape=light.shape[:2])
    assert padded.tolist() == [[30, 20, 90, 80]]  # 0.25 × 40 px per side; body is not padded in
    out = _fill(light, np.array([30, 20, 90, 80]), 0)
    assert appearance(light, out, sensitive_boxes=padded).changed_outside == 0
    assert appearance(light, out, sensitive_boxes=BOX).changed_outside == 60 * 60 - 40 * 40


def test_identical_images_have_no_ring_and_nan_edge_energy(light: np.ndarray) -> None:
    a = appearance(light, light.copy(), sensitive_boxes=BOX)
    assert (a.changed, a.ring_pixels, a.regions) == (0, 0, 0)
    assert math.isnan(a.border_edge_energy)
    assert a.changed_outside_share == 0.0


def test_a_whole_image_change_has_no_ring(light: np.ndarray) -> None:
    a = appearance(light, 255 - light, sensitive_boxes=np.zeros((0, 4), np.int64))
    assert a.changed == a.pixels and a.ring_pixels == 0 and math.isnan(a.border_edge_energy)


def test_border_ring_is_the_pixels_within_width_of_the_boundary_on_both_sides() -> None:
    mask = np.zeros((12, 12), bool)
    mask[4:8, 4:8] = True
    ring = border_ring(mask, width=1)
    assert ring.sum() == 6 * 6 - 2 * 2  # one px out (6×6) less the 2×2 core
    assert not ring[5:7, 5:7].any() and ring[3, 3] and ring[4, 4] and not ring[2, 2]
    assert border_ring(np.zeros((5, 5), bool)).sum() == 0
    edge = np.zeros((6, 6), bool)
    edge[:, :3] = True  # the image's edge is no boundary: only the column pair around x = 2.5
    assert border_ring(edge, width=1).sum() == 6 * 2


def test_a_darker_shape_inside_a_fill_is_nested(rng: np.random.Generator, photo: np.ndarray) -> None:
    out = photo.copy()
    out[30:90, 30:90] = np.clip(150 + rng.normal(0, 4, (60, 60, 3)), 0, 255).astype(np.uint8)
    single = appearance(photo, out, sensitive_boxes=BOX)
    assert (single.regions, single.nested) == (1, 0)
    out[45:75, 45:75] = np.clip(out[45:75, 45:75].astype(int) - 40, 0, 255).astype(np.uint8)
    assert appearance(photo, out, sensitive_boxes=BOX).nested == 1


def test_flat_boxes_finds_solid_fills_only(photo: np.ndarray) -> None:
    out = _feathered_blur(_fill(photo, np.array([5, 5, 35, 35]), 0), BOX[0])
    assert flat_boxes(out, np.array([[5, 5, 35, 35], BOX[0]])).tolist() == [True, False]


def test_pooled_sums_counts_and_weights_by_pixels(light: np.ndarray) -> None:
    a = appearance(light, _fill(light, BOX[0], 0), sensitive_boxes=BOX)
    b = appearance(light, light.copy(), sensitive_boxes=BOX)
    p = pooled([a, b])
    assert (p.images, p.pixels, p.changed, p.regions) == (2, 28800, 1600, 1)
    assert p.border_edge_energy == pytest.approx(a.border_edge_energy)
    m = p.as_metrics()
    assert m["check_quality/appearance_changed_share"] == pytest.approx(1600 / 28800)
    assert m["check_quality/appearance_regions_per_image"] == 0.5
    assert Appearance(**a.as_dict()) == a
    with pytest.raises(InvalidInputError, match="no appearance"):
        pooled([])


def test_changed_mask_refuses_different_shapes_and_honours_tolerance(light: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="differs"):
        changed_mask(light, light[:10])
    nudged = light.copy()
    nudged[0, 0, 1] ^= 1
    assert changed_mask(light, nudged).sum() == 1 and changed_mask(light, nudged, tolerance=1).sum() == 0


# --- wiring: the per-method table (compare.py) and the per-image records (summary.py) ---------------------------


class _RawOnly:
    """A people detector that finds one person on the raw images only (any change loses them)."""

    def __init__(self, raws: list[np.ndarray]) -> None:
        self.raws = {r.tobytes() for r in raws}

    def __call__(self, image: np.ndarray) -> Detections:
        n = int(image.tobytes() in self.raws)
        return Detections(np.tile(np.array([[0, 0, 30, 60]], np.int64), (n, 1)), np.ones(n, np.float32), ("body",) * n)


def _compare_row(method: str, body: object | None) -> MethodRow:
    samples = compare_samples(4)
    a = AnonymizeParams()
    tools = CompareTools(detector=FakeDetector([]), embed=lambda c: np.zeros((len(c), 3)),
                         clear_gallery=np.zeros((100, 3)), model=None, train=TrainParams(), body=body)  # type: ignore[arg-type]
    attack = AttackConfig(method="x", options=method_options(a), pad=0.2, gallery_side=48, train_per_identity=2,
                          face_sizes=(24, 72), feature_side=12, seed=0)
    cfg = CompareConfig(anonymize=a, attack=attack, probes=0, residual_images=50, text_images=0,
                        text_min_similarity=0.8, seed=0, match_iou=0.3, people_images=20)
    return compare_method(samples, method=method, config=cfg, tools=tools)


def test_the_method_table_carries_the_appearance_columns() -> None:
    raws = [s.image for s in compare_samples(4)]
    clear, mask, blur = (_compare_row(m, _RawOnly(raws)) for m in ("none", "mask", "blur"))
    assert clear.changed_share == 0.0 and math.isnan(clear.border_edge_energy) and clear.body_preserved == 1.0
    assert mask.changed_outside == blur.changed_outside == 0.0  # every method stays inside the padded boxes
    assert mask.changed_share > 0 and mask.flat_regions > blur.flat_regions  # (a blurred plain sign is flat too)
    assert mask.border_edge_energy > 1.5 * blur.border_edge_energy
    assert mask.body_preserved == 0.0  # the fake finds people on unchanged images only
    assert math.isnan(_compare_row("mask", None).body_preserved)  # no people detector: not measured
    keys = mask.as_metrics()
    assert mask.seam_regions >= 1  # (a hard-edged box blur shows outlines too: not compared)
    for col in ("changed_share", "changed_outside", "border_edge_energy", "seam_regions", "nested_regions",
                "flat_regions", "body_preserved"):
        assert f"check_quality/compare_mask_{col}" in keys
    assert undefined(list(keys)) == []  # the report can name every column


def test_image_records_carry_appearance_to_the_summary_metrics(light: np.ndarray) -> None:
    out = _fill(light, BOX[0], 0)
    rec = image_record(light, out, image_id="a", gt_boxes_by_category={"face": BOX}, redacted_boxes=BOX,
                       detector=FakeDetector([]), match_iou=0.3, calibrate=False)
    padded = image_record(light, out, image_id="a", gt_boxes_by_category={"face": BOX}, redacted_boxes=BOX,
                          detector=FakeDetector([]), match_iou=0.3, calibrate=False,
                          appearance_boxes=np.array([[0, 0, 120, 120]]))
    assert rec.appearance is not None and rec.appearance.changed == 1600 and rec.appearance.outside == 12800
    assert padded.appearance is not None and padded.appearance.outside == 0
    back = ImageRecord.from_dict(json.loads(json.dumps(rec.as_dict())))
    assert back == rec
    m = summarize([back, rec]).as_metrics()
    assert m["check_quality/appearance_changed_share"] == pytest.approx(1600 / 14400)
    assert m["check_quality/appearance_changed_outside"] == 0.0
    assert m["check_quality/appearance_border_edge_energy"] > 10
    assert m["check_quality/appearance_flat_regions"] == m["check_quality/appearance_black_regions"] == 2.0
    assert undefined([k for k in m if "appearance" in k]) == []
    old = {k: v for k, v in rec.as_dict().items() if k != "appearance"}  # a record written before appearance
    assert "check_quality/appearance_changed_share" not in summarize([ImageRecord.from_dict(old)]).as_metrics()

"""dp_pixelate, inpaint, replace and per-category methods: each method's own invariants."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options, summarize
from tasks.anonymize.obfuscate import (
    dp_noise_scale,
    dp_pixelate_regions,
    inpaint_regions,
    replace_regions,
    soft_core,
    soft_extent,
    soft_inpaint_regions,
)
from tasks.anonymize.records import image_record, summarize_records
from tasks.anonymize.replace import build_pool, lfw_pool, surrogate
from tasks.boxes import pad_boxes
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams
from tasks.types import Detections
from tests.tasks._anonymize_scenes import face_scene


class Fixed:
    """A fake detector that always reports the same boxes (it never stops firing)."""

    def __init__(self, boxes: list[list[int]], category: str) -> None:
        self.boxes, self.category = np.asarray(boxes, np.int64).reshape(-1, 4), category

    def __call__(self, image: np.ndarray) -> Detections:
        n = len(self.boxes)
        return Detections(self.boxes.copy(), np.ones(n, np.float32), (self.category,) * n)


@pytest.fixture(scope="module")
def pool():
    return lfw_pool(k=10)


# --- dp_pixelate -------------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "m", "eps"), [(8, 16, 6.375), (16, 4, 0.5), (4, 1, 2.0)])
def test_dp_noise_scale_matches_epsilon(block: int, m: int, eps: float) -> None:
    """On a flat grey box every cell is 128 + Laplace noise: its mean |deviation| estimates the scale."""
    image = np.full((512, 512, 3), 128, np.uint8)
    out = dp_pixelate_regions(
        image,
        np.array([[0, 0, 512, 512]]),
        block=block,
        epsilon=eps,
        neighbourhood=m,
        rng=np.random.default_rng(1),
    )
    cells = out[::block, ::block, 0].astype(float)
    expected = 255 * m / (block * block * eps)
    assert dp_noise_scale(cell_pixels=block * block, epsilon=eps, neighbourhood=m) == pytest.approx(expected)
    if expected < 20:  # no clipping at 0 / 255: the mean absolute deviation of a Laplace is its scale
        assert np.abs(cells - 128).mean() == pytest.approx(expected, rel=0.06)
    else:  # heavy noise clips; the median absolute deviation (b·ln 2) is still unaffected
        assert np.median(np.abs(cells - 128)) == pytest.approx(expected * np.log(2), rel=0.08)


def test_dp_cells_are_uniform_grey_and_edge_cells_absorb_the_remainder() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    out = dp_pixelate_regions(
        image, np.array([[0, 0, 20, 12]]), block=8, epsilon=1e6, neighbourhood=1, rng=np.random.default_rng(0)
    )
    region = out[:12, :20]
    assert (region[..., 0] == region[..., 1]).all() and (region[..., 1] == region[..., 2]).all()  # grey
    # 20 px wide with block 8 → cells of 8 and 12 px; 12 high → one cell: exactly two distinct values.
    assert len(np.unique(region[..., 0])) == 2
    assert (region[:, :8, 0] == region[0, 0, 0]).all() and (region[:, 8:, 0] == region[0, 8, 0]).all()


def test_dp_smallest_cell_sets_the_scale_for_tiny_boxes() -> None:
    """A 5×5 box with block 8 is one 25-pixel cell: the noise must grow to 255·m/(25·ε), not 255·m/(64·ε)."""
    image = np.full((5, 5, 3), 128, np.uint8)
    box = np.array([[0, 0, 5, 5]])
    draws = [
        dp_pixelate_regions(image, box, block=8, epsilon=10.0, neighbourhood=1, rng=np.random.default_rng(s))[
            0, 0, 0
        ]
        for s in range(3000)
    ]
    assert np.abs(np.asarray(draws, float) - 128).mean() == pytest.approx(255 / 250, rel=0.1)


def test_dp_noise_is_seeded_per_image() -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    box = np.array([[0, 0, 32, 32]])

    def run(seed: int, image_id: str) -> np.ndarray:
        rng = image_rng(seed, image_id)
        return dp_pixelate_regions(image, box, block=8, epsilon=1.0, neighbourhood=16, rng=rng)

    np.testing.assert_array_equal(run(1, "img-1"), run(1, "img-1"))
    assert (run(1, "img-1") != run(1, "img-2")).any()
    assert (run(1, "img-1") != run(2, "img-1")).any()


def test_dp_epsilon_is_recorded_and_summarised() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    opts = obfuscation_options(AnonymizeParams(dp_epsilon=0.5))
    kw = {"options": opts, "rng": np.random.default_rng(0), "verify": False}
    dp = anonymize_image(image, detectors={"t": Fixed([[0, 0, 32, 32]], "text")}, method="dp_pixelate", **kw)
    plain = anonymize_image(image, detectors={"t": Fixed([[0, 0, 32, 32]], "text")}, method="mask", **kw)
    none = anonymize_image(image, detectors={}, method="dp_pixelate", **kw)
    assert dp.dp_epsilon == 0.5 and dp.methods == ("dp_pixelate",)
    assert plain.dp_epsilon is None and none.dp_epsilon is None
    metrics = summarize([dp, plain, none]).as_metrics()
    assert metrics["anonymize/dp_images"] == 1 and metrics["anonymize/dp_epsilon_max"] == 0.5
    row = {"id": "a", "path": "a.png", "split": "train", "label": 1}
    records = [image_record(row, r) for r in (dp, plain, none)]
    assert records[0]["dp_epsilon"] == 0.5 and records[1]["dp_epsilon"] is None
    assert summarize_records(records) == summarize([dp, plain, none])
    assert "anonymize/dp_images" not in summarize([plain]).as_metrics()  # no ε to report


def test_dp_needs_rng_and_options() -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(InvalidInputError, match="rng"):
        anonymize_image(
            image, detectors={}, method="dp_pixelate", options=obfuscation_options(AnonymizeParams())
        )
    with pytest.raises(InvalidInputError, match="dp_pixelate"):
        dp_pixelate_regions(
            image,
            np.zeros((0, 4), np.int64),
            block=8,
            epsilon=0.0,
            neighbourhood=1,
            rng=np.random.default_rng(0),
        )


# --- inpaint -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["telea", "ns"])
def test_inpaint_removes_the_object(algorithm: str) -> None:
    image = np.full((64, 64, 3), (40, 90, 160), np.uint8)
    image[20:40, 20:44] = 255  # a bright object on a flat background
    out = inpaint_regions(image, np.array([[18, 18, 46, 42]]), radius=3, algorithm=algorithm)
    assert np.abs(out[18:42, 18:46].astype(int) - [40, 90, 160]).max() <= 5  # Telea rounds a little
    assert (out[18:42, 18:46] == 255).all(axis=-1).sum() == 0  # nothing of the object is left
    with pytest.raises(InvalidInputError, match="algorithm"):
        inpaint_regions(image, np.array([[0, 0, 8, 8]]), algorithm="magic")


# --- replace (k-Same) ----------------------------------------------------------------------------


def test_pool_is_a_partition_into_groups_of_at_least_k(pool) -> None:
    members = sorted(i for g in pool.groups for i in g)
    assert members == list(range(100))
    assert min(map(len, pool.groups)) >= 10 and len(pool.groups) == 10
    faces = skimage.data.lfw_subset()[:100]
    for g, mean in zip(pool.groups, pool.means, strict=True):
        np.testing.assert_allclose(mean, faces[list(g)].mean(axis=0), atol=1e-6)
    uneven = build_pool(faces[:23], k=5)  # 23 = 4 groups of 5, 3 leftovers join groups
    assert len(uneven.groups) == 4 and min(map(len, uneven.groups)) >= 5
    assert sum(map(len, uneven.groups)) == 23
    with pytest.raises(InvalidInputError, match="k"):
        build_pool(faces, k=1)


def test_replace_never_returns_a_pool_face(pool) -> None:
    """Every surrogate is a mean of >= k faces: far from each single pool face it averages."""
    faces = skimage.data.lfw_subset()[:100].astype(np.float32)
    for mean in pool.means:
        assert np.abs(faces - mean).max(axis=(1, 2)).min() > 0.1  # no pool face is (nearly) the surrogate


def test_replace_puts_the_surrogate_in_the_box(pool) -> None:
    img, boxes = face_scene(np.random.default_rng(3), [48, 40])
    out = replace_regions(img, boxes, pool=pool)
    for x0, y0, x1, y1 in boxes:
        region = img[y0:y1, x0:x1]
        got = out[y0:y1, x0:x1, 0].astype(float).ravel()
        sur = surrogate(pool, region)[..., 0].astype(float).ravel()
        orig = region.mean(axis=-1).ravel()
        assert np.corrcoef(got, sur)[0, 1] > 0.8  # Poisson blending keeps the surrogate's structure
        assert np.corrcoef(got, sur)[0, 1] > np.corrcoef(got, orig)[0, 1]
        assert (out[y0:y1, x0:x1] != region).any(axis=-1).mean() > 0.95


def test_replace_is_for_faces_other_categories_are_inpainted(pool) -> None:
    img = np.full((64, 64, 3), 100, np.uint8)
    img[10:20, 10:40] = 0  # "text"
    opts = {"replace": {"pool": pool}}
    result = anonymize_image(
        img, detectors={"t": Fixed([[8, 8, 42, 22]], "text")}, method="replace", options=opts, verify=False
    )
    assert result.methods == ("inpaint",) and result.image is not None
    assert np.abs(result.image[8:22, 8:42].astype(int) - 100).max() <= 5  # the dark "text" is gone
    with pytest.raises(InvalidInputError, match="pool"):
        anonymize_image(img, detectors={}, method="replace")


def test_verification_accepts_the_surrogate_face_but_not_a_real_one(pool) -> None:
    """A face detector fires on a k-Same surrogate by design; only residuals outside replaced boxes count."""
    img, boxes = face_scene(np.random.default_rng(4), [48])
    face = Fixed(boxes.tolist(), "face")  # keeps firing on the same box whatever it holds
    # whole: a fixed box means nothing on a crop (region verification: tests/tasks/test_anonymize_regions.py)
    kw = {"options": {"replace": {"pool": pool}, "pixelate": {"block": 8}}, "verify": "whole"}
    replaced = anonymize_image(img, detectors={"face": face}, method="replace", **kw)
    assert replaced.image is not None and replaced.quarantine_reason is None and len(replaced.residual) == 0
    pixelated = anonymize_image(img, detectors={"face": face}, method="pixelate", **kw)
    assert pixelated.image is None and pixelated.quarantine_reason == "sensitive content survived: 1 face"


# --- inpaint_soft ----------------------------------------------------------------------------------


def _soft_scene(seed: int, face: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A textured picture (skimage's astronaut, resized) and one face box padded as the detector pads it."""
    import cv2

    img = cv2.resize(skimage.data.astronaut(), (160, 120), interpolation=cv2.INTER_AREA)
    padded = pad_boxes(np.asarray([face], np.float64), pad=0.2, width=160, height=120)
    return img, padded


@pytest.mark.parametrize("face", [[60, 30, 100, 80], [0, 40, 36, 84], [120, 0, 160, 44], [10, 10, 130, 110]])
def test_inpaint_soft_output_does_not_depend_on_the_detected_box(face: list[int]) -> None:
    """Whatever the detected face box held (the core ellipse contains it, for the pad it was padded with),
    the output is the same; pixels outside the ellipse's reach (`soft_extent`) never change. Also at the
    image border."""
    img, padded = _soft_scene(0, face)
    other = img.copy()
    x0, y0, x1, y1 = face
    other[y0:y1, x0:x1] = np.random.default_rng(1).integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    kw = {"core": soft_core(0.2), "rng": np.random.default_rng(5)}
    a = soft_inpaint_regions(img, padded, **kw)
    b = soft_inpaint_regions(other, padded, **{**kw, "rng": np.random.default_rng(5)})
    np.testing.assert_array_equal(a, b)
    outside = np.ones(img.shape[:2], bool)
    px0, py0, px1, py1 = soft_extent(padded, core=soft_core(0.2), feather=0.25, width=160, height=120)[0]
    outside[py0:py1, px0:px1] = False
    np.testing.assert_array_equal(a[outside], img[outside])
    assert (a[y0:y1, x0:x1] != img[y0:y1, x0:x1]).any()


def test_inpaint_soft_keeps_the_box_corners_and_fades_its_edge() -> None:
    """Unlike `inpaint`, the corners of the padded box keep their pixels and the change fades out: no outline."""
    img = np.full((120, 160, 3), 255, np.uint8)
    padded = np.array([[52, 20, 108, 90]])
    img[20:90, 52:108] = 0  # a dark box on white: the fill is white, the kept corners dark
    out = soft_inpaint_regions(img, padded, core=soft_core(0.2), feather=0.25, grain=0)
    np.testing.assert_array_equal(out[20, 52], img[20, 52])  # corner: outside the ellipse and its fade
    assert out[55, 80].min() > 200  # the centre: the white surroundings continued
    diagonal = np.array([out[20 + i * 70 // 56, 52 + i, 0] for i in range(28)], int)
    assert ((diagonal > 5) & (diagonal < 250)).sum() >= 3  # a gradual fade, not a step
    assert (np.diff(diagonal) >= -2).all()  # rising from the dark corner to the white centre


def test_inpaint_soft_shows_no_box_edge_and_nests_no_shape() -> None:
    """Issue 36: the fade reaches past the box, so no side of it shows, and two overlapping detections of one
    face get one fill: on the changed region's rim the output differs from the picture by a few grey levels
    only (the old box-clipped fill: 41 on average, up to 173), the changed pixels form one region, and none
    lies beyond `soft_extent`."""
    import cv2

    img = cv2.resize(skimage.data.astronaut(), (160, 120), interpolation=cv2.INTER_AREA)
    boxes = np.array([[48, 10, 108, 74], [58, 18, 114, 78]])  # two overlapping detections of her face
    out = soft_inpaint_regions(img, boxes, core=soft_core(0.2), feather=0.25, rng=np.random.default_rng(0))
    changed = np.any(out != img, axis=2)
    rim = changed & ~cv2.erode(changed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    step = np.abs(out.astype(np.int64) - img.astype(np.int64)).max(axis=2)[rim]
    assert step.mean() <= 8 and np.percentile(step, 95) <= 20, (step.mean(), np.percentile(step, 95))
    assert cv2.connectedComponents(changed.astype(np.uint8))[0] == 2  # background + one region
    inside = np.zeros_like(changed)
    for x0, y0, x1, y1 in soft_extent(boxes, core=soft_core(0.2), feather=0.25, width=160, height=120):
        inside[y0:y1, x0:x1] = True
    assert not (changed & ~inside).any()


def test_inpaint_soft_never_reads_boxes_it_must_avoid() -> None:
    img, padded = _soft_scene(0, [60, 30, 100, 80])
    text = np.array([[20, 40, 55, 60]])  # a personal text line next to the face, obfuscated after it
    other = img.copy()
    other[40:60, 20:55] = 255
    a = soft_inpaint_regions(img, padded, avoid=text, rng=np.random.default_rng(0))
    b = soft_inpaint_regions(other, padded, avoid=text, rng=np.random.default_rng(0))
    x0, y0, x1, y1 = padded[0]
    np.testing.assert_array_equal(a[y0:y1, x0:x1], b[y0:y1, x0:x1])


def test_inpaint_soft_is_for_faces_and_validates_its_options() -> None:
    img = np.full((64, 64, 3), 100, np.uint8)
    img[10:20, 10:40] = 0
    result = anonymize_image(img, detectors={"t": Fixed([[8, 8, 42, 22]], "text")}, method="inpaint_soft",
                             verify=False)  # fmt: skip
    assert result.methods == ("inpaint",)  # a text line is removed whole, not under an ellipse
    for bad in ({"core": 0.9}, {"feather": 1.5}, {"fill_side": 2}, {"grain": -1.0}, {"radius": 0}):
        with pytest.raises(InvalidInputError, match="inpaint_soft"):
            soft_inpaint_regions(img, np.array([[8, 8, 42, 22]]), **bad)
    assert soft_core(0.2) == pytest.approx(2**0.5 / 1.4 * 1.02) and soft_core(0.5) == pytest.approx(1.02)


def test_inpaint_soft_in_the_engine_hides_a_real_face() -> None:
    """The default face method on a real face: re-detection by the face detector finds nothing."""
    img, boxes = face_scene(np.random.default_rng(4), [48])
    p = AnonymizeParams(targets=("face",))
    from tasks.anonymize.detectors import build_detectors

    det = build_detectors(targets=p.targets, face=p.face.model_dump(), text=p.text.model_dump(),
                          body=p.body.model_dump(), plate=p.plate.model_dump())  # fmt: skip
    result = anonymize_image(img, detectors=det, method=p.method, methods=p.methods, options=obfuscation_options(p),
                             rng=image_rng(0, "x"))  # fmt: skip
    assert result.image is not None and result.methods == ("inpaint_soft",) and result.escalated == 0
    assert len(det["face"](result.image)) == 0


# --- per-category methods ------------------------------------------------------------------------


def test_each_category_gets_its_own_method() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    detectors = {"f": Fixed([[0, 0, 24, 24]], "face"), "t": Fixed([[32, 32, 64, 48]], "text")}
    result = anonymize_image(
        image, detectors=detectors, method="pixelate", methods={"text": "mask"}, block=8, verify=False
    )
    assert result.methods == ("pixelate", "mask") and result.image is not None
    assert (result.image[32:48, 32:64] == 0).all()  # text masked
    cell = result.image[0:8, 0:8].reshape(-1, 3)
    assert (cell == cell[0]).all() and (result.image[0:24, 0:24] != 0).any()  # face pixelated, not masked
    np.testing.assert_array_equal(result.image[48:, :32], image[48:, :32])


def test_params_keep_the_old_single_method_and_validate_the_mapping() -> None:
    p = AnonymizeParams(method="blur")
    assert p.methods == {"face": "inpaint_soft", "body": "silhouette"} and p.method == "blur"  # the defaults
    assert AnonymizeParams(methods={"text": "mask", "body": "blur"}).methods["body"] == "blur"
    with pytest.raises(ValueError, match="txt"):
        AnonymizeParams(methods={"txt": "mask"})
    assert "replace" not in obfuscation_options(p)  # the pool is built only when replace is used
    assert (
        obfuscation_options(AnonymizeParams(methods={"face": "replace"}, replace_k=20))["replace"]["pool"].k
        == 20
    )

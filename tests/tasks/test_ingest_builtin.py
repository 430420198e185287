"""The built-in dataset: determinism, shapes, labels, and ground truth that matches the pixels."""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from tasks.errors import InvalidInputError
from tasks.ingest import assets, strings
from tasks.ingest.builtin import Sample, generate_builtin, text_alpha
from tasks.types import CATEGORY_ID

SIZE = 256
FACE_SIZE = (24, 72)


def _generate(n: int, seed: int, **overrides: object) -> list[Sample]:
    kwargs: dict[str, object] = {
        "n_images": n,
        "image_size": SIZE,
        "max_faces": 3,
        "face_size": FACE_SIZE,
        "seed": seed,
    }
    kwargs.update(overrides)
    return list(generate_builtin(**kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return _generate(120, seed=7)


def _zscore(values: NDArray[np.generic]) -> NDArray[np.float64]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return np.asarray((flat - flat.mean()) / (flat.std() + 1e-9), dtype=np.float64)


def test_same_seed_gives_identical_bytes_and_annotations() -> None:
    a, b = _generate(8, seed=3), _generate(8, seed=3)
    assert [s.image.tobytes() for s in a] == [s.image.tobytes() for s in b]
    assert [(s.id, s.label, s.annotations) for s in a] == [(s.id, s.label, s.annotations) for s in b]


def test_different_seed_gives_different_images() -> None:
    a, b = _generate(4, seed=3), _generate(4, seed=4)
    assert all(x.image.tobytes() != y.image.tobytes() for x, y in zip(a, b, strict=True))


def test_first_images_do_not_depend_on_n_images() -> None:
    short, long = _generate(3, seed=11), _generate(6, seed=11)
    assert [s.image.tobytes() for s in short] == [s.image.tobytes() for s in long[:3]]


def test_shapes_dtypes_and_ids(samples: list[Sample]) -> None:
    assert [s.id for s in samples[:3]] == ["img_000000", "img_000001", "img_000002"]
    for s in samples:
        assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.uint8
        assert not s.image.flags.writeable
        assert 0 <= s.label <= 9
    other = _generate(2, seed=1, image_size=128, face_size=(12, 30))
    assert all(s.image.shape == (128, 128, 3) for s in other)


def test_one_placard_per_image_carrying_the_label(samples: list[Sample]) -> None:
    for s in samples:
        placards = [a for a in s.annotations if a.category == "placard"]
        assert len(placards) == 1 and placards[0].text == str(s.label)


def test_labels_walk_all_1797_digits_before_reusing_one() -> None:
    # One full pass over the digit samples: the labels are exactly sklearn's class counts.
    labels = [s.label for s in _generate(1797, seed=0, image_size=64, max_faces=0, face_size=(8, 16))]
    expected = np.bincount(assets.digits()[1], minlength=10)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), expected)
    assert expected.min() >= 170


def test_boxes_inside_image_nondegenerate_and_known_categories(samples: list[Sample]) -> None:
    for s in samples:
        for a in s.annotations:
            x0, y0, x1, y1 = a.box
            assert a.category in CATEGORY_ID
            assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE, (s.id, a)
            assert min(x1 - x0, y1 - y0) >= 6, (s.id, a)


def test_elements_do_not_overlap(samples: list[Sample]) -> None:
    for s in samples:
        boxes = [a.box for a in s.annotations]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                assert not overlap, (s.id, a, b)


def test_mix_of_elements_is_realistic(samples: list[Sample]) -> None:
    counts = {c: sum(a.category == c for s in samples for a in s.annotations) for c in CATEGORY_ID}
    n = len(samples)
    assert 1.0 <= counts["face"] / n <= 2.0  # 0..3 faces, uniform, a few rejected for lack of room
    assert 0.3 <= counts["plate"] / n <= 0.7
    assert counts["text_pii"] >= 0.25 * n and counts["text_nonpii"] >= 0.25 * n
    assert counts["body"] == 0
    per_image = [sum(a.category == "plate" for a in s.annotations) for s in samples]
    assert max(per_image) <= 1
    assert max(sum(a.category.startswith("text") for a in s.annotations) for s in samples) <= 2


def test_face_sizes_identities_and_pixels_match_lfw(samples: list[Sample]) -> None:
    faces = assets.lfw()[: assets.N_FACES]
    refs = np.stack([_zscore(f[4:21, 4:21]) for f in faces])  # inner part: edges are feathered
    n, top1, corr = 0, 0, []
    for s in samples:
        ids = [a.identity for a in s.annotations if a.category == "face"]
        assert len(ids) == len(set(ids)) and len(ids) <= 3
        for a in (a for a in s.annotations if a.category == "face"):
            x0, y0, x1, y1 = a.box
            assert a.identity is not None and 0 <= a.identity < 100
            assert x1 - x0 == y1 - y0 and FACE_SIZE[0] <= x1 - x0 <= FACE_SIZE[1]
            gray = cv2.cvtColor(s.image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
            small = cv2.resize(gray, (25, 25), interpolation=cv2.INTER_AREA)[4:21, 4:21]
            scores = np.asarray(refs @ _zscore(small)) / small.size
            corr.append(scores[a.identity])
            top1 += int(np.argmax(scores) == a.identity)
            n += 1
    assert n >= 100
    assert min(corr) > 0.9 and top1 / n > 0.95


def test_identities_are_reused_across_images() -> None:
    ids = [a.identity for s in _generate(150, seed=2) for a in s.annotations if a.category == "face"]
    assert len(set(ids)) < len(ids)  # the same person appears in several images
    assert len(set(ids)) > 80  # and most of the 100 people appear


def test_plate_boxes_are_tight_around_the_dark_border(samples: list[Sample]) -> None:
    plates = [(s, a) for s in samples for a in s.annotations if a.category == "plate"]
    assert len(plates) >= 30
    for s, a in plates:
        x0, y0, x1, y1 = a.box
        crop = s.image[y0:y1, x0:x1].astype(np.int64).max(axis=2)
        edges = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
        assert edges.max() <= 55, (s.id, a)  # the border is drawn in ink (10..50)
        assert crop[crop.shape[0] // 2, 3:-3].max() >= 150  # plate background is light
        assert y1 - y0 <= 0.2 * SIZE and x1 - x0 <= 0.7 * SIZE


def test_plate_and_text_strings_match_their_categories(samples: list[Sample]) -> None:
    plate = re.compile(r"[A-Z0-9 -]{6,10}")
    names = {f"{f} {last}" for f in strings._FIRST for last in strings._LAST}
    pii = re.compile(r"(\+1 555 01\d \d{4}|\(555\) 01\d-\d{4}|[a-z]\.[a-z]+@[a-z.]+)")
    for a in (a for s in samples for a in s.annotations):
        if a.category == "plate":
            assert a.text and plate.fullmatch(a.text), a
        elif a.category == "text_pii":
            assert a.text in names or pii.fullmatch(a.text or ""), a
        elif a.category == "text_nonpii":
            assert a.text in strings.NONPII_WORDS, a


def test_text_height_is_readable_but_not_huge(samples: list[Sample]) -> None:
    heights = [a.box[3] - a.box[1] for s in samples for a in s.annotations if a.category.startswith("text")]
    assert len(heights) >= 60
    assert min(heights) >= 6 and max(heights) <= 30
    assert 10 <= float(np.median(heights)) <= 20


def test_rendered_text_alpha_is_cropped_tight() -> None:
    alpha = text_alpha("Nina Ivanova", cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    assert alpha.min() >= 0 and alpha.max() > 0.9
    for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
        assert edge.max() > 0  # ink on every edge: nothing to trim


def test_placard_is_light_and_holds_dark_ink(samples: list[Sample]) -> None:
    for s in samples:
        (a,) = [a for a in s.annotations if a.category == "placard"]
        x0, y0, x1, y1 = a.box
        gray = cv2.cvtColor(s.image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        centre = gray[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
        assert 28 * 1.2 <= max(h, w) <= 56 * 1.8 * 1.2
        assert np.percentile(centre, 90) > 150 and centre.min() < 110, s.id


def test_backgrounds_avoid_photos_with_faces_or_text() -> None:
    assert not {"astronaut", "camera", "text", "page", "coins"} & set(assets.BACKGROUND_NAMES)
    assert len(assets.backgrounds()) == len(assets.BACKGROUND_NAMES) >= 8
    assert all(b.dtype == np.uint8 and b.ndim == 3 and b.shape[2] == 3 for b in assets.backgrounds())


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_size": 16},
        {"face_size": (4, 10)},
        {"face_size": (40, 30)},
        {"max_faces": -1},
        {"n_images": -1},
    ],
)
def test_invalid_arguments_raise(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="generate_builtin"):
        _generate(1, seed=0, **overrides)


@pytest.mark.slow
def test_default_size_dataset_generates_in_under_a_minute() -> None:
    start = time.perf_counter()
    n = sum(
        1 for _ in generate_builtin(n_images=2000, image_size=256, max_faces=3, face_size=FACE_SIZE, seed=0)
    )
    assert n == 2000 and time.perf_counter() - start < 60

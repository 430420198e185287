"""Tests of the placard front end (tasks/train/placard.py), `prepare_inputs` and the HOG model.

Scenes are generated at run time with the built-in generator and "anonymized" the way the
anonymize stage does (pixelated faces, plates and personal text; sometimes a black mask box).
The ground-truth placard box is used only to score the localiser.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage.feature import hog

from tasks.anonymize.obfuscate import mask_regions, pixelate_regions
from tasks.errors import InvalidInputError
from tasks.ingest.assets import digits
from tasks.ingest.builtin import generate_builtin
from tasks.train.models import Hog
from tasks.train.placard import locate_placard, placard_crop
from tasks.train.preprocess import FEATURES, prepare_inputs

Box = tuple[int, int, int, int]


def box_iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def placard_scenes(n: int, *, seed: int) -> tuple[list[np.ndarray], np.ndarray, list[Box]]:
    """n anonymized built-in scenes, their labels and their ground-truth placard boxes."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for s in generate_builtin(n_images=n, image_size=256, max_faces=3, face_size=(24, 72), seed=seed):
        sensitive = [a.box for a in s.annotations if a.category in ("face", "plate", "text_pii")]
        sens = np.array(sensitive, np.int64).reshape(-1, 4)
        img = pixelate_regions(s.image, sens, block=8)
        if len(sens) and rng.random() < 0.25:  # the anonymizer's escalation: a black box
            k = int(rng.integers(len(sens)))
            img = mask_regions(img, sens[k : k + 1])
        images.append(img)
        labels.append(s.label)
        boxes.append(next(a.box for a in s.annotations if a.category == "placard"))
    return images, np.array(labels), boxes


@pytest.fixture(scope="module")
def scenes() -> tuple[list[np.ndarray], np.ndarray, list[Box]]:
    return placard_scenes(300, seed=99)


def _card(digit: int, *, side: int, angle: float, background: int = 90) -> np.ndarray:
    """A 256-px grey scene with one light card holding load_digits sample `digit`, rotated by `angle`."""
    img8 = digits()[0][digit]
    ink = cv2.resize(img8, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    m = side // 3
    card = np.full((side + 2 * m, side + 2 * m), 230.0, np.float32)
    card[m : m + side, m : m + side] -= 200 * ink
    canvas = np.full((256, 256), float(background), np.float32)
    y0 = x0 = 128 - card.shape[0] // 2
    canvas[y0 : y0 + card.shape[0], x0 : x0 + card.shape[1]] = card
    rot = cv2.warpAffine(canvas, cv2.getRotationMatrix2D((128, 128), angle, 1.0), (256, 256),
                         borderValue=float(background))  # fmt: skip
    return np.repeat(np.clip(rot, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


# --- localisation -----------------------------------------------------------------------------


def test_locates_the_placard_in_anonymized_scenes(scenes: tuple) -> None:
    images, _, truth = scenes
    ious = np.array([box_iou(locate_placard(img), box) for img, box in zip(images, truth, strict=True)])
    # Measured on 2,000 scenes (seed 1234): IoU >= 0.5 for 99.95 %, >= 0.8 for 99.1 %.
    assert np.mean(ious >= 0.5) >= 0.98
    assert np.mean(ious >= 0.8) >= 0.95


def test_prefers_the_card_over_a_white_plate_and_a_black_box() -> None:
    img = _card(3, side=40, angle=5.0)
    img[5:25, 10:85] = 240  # a white 3.75:1 plate with dark text
    cv2.putText(img, "AB 123", (14, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1)
    img[100:125, 2:40] = 0  # a black mask box
    x0, y0, x1, y1 = locate_placard(img)
    assert box_iou((x0, y0, x1, y1), (90, 90, 166, 166)) >= 0.8


@pytest.mark.parametrize(
    "image",
    [
        np.full((64, 64, 3), 128, np.uint8),
        np.zeros((50, 80, 3), np.uint8),
        np.full((64, 64, 3), 255, np.uint8),
    ],
)
def test_falls_back_to_a_centred_box_when_there_is_no_placard(image: np.ndarray) -> None:
    x0, y0, x1, y1 = locate_placard(image)
    h, w = image.shape[:2]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert abs((x0 + x1) / 2 - w / 2) <= 1 and abs((y0 + y1) / 2 - h / 2) <= 1
    crop = placard_crop(image, size=28)
    assert crop.shape == (28, 28) and np.isfinite(crop).all()


@pytest.mark.parametrize(
    "bad",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32), np.zeros((8, 8, 3), np.uint8), [1, 2]],
)
def test_rejects_bad_images(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="locate_placard"):
        locate_placard(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="placard_crop"):
        placard_crop(bad, size=28)  # type: ignore[arg-type]


# --- crop -------------------------------------------------------------------------------------


def test_crop_is_a_normalised_ink_map() -> None:
    crop = placard_crop(_card(0, side=48, angle=0.0), size=28)
    assert crop.shape == (28, 28) and crop.dtype == np.float32
    assert crop.min() >= 0.0 and crop.max() <= 1.0 and crop.max() > 0.8
    assert crop[:2].max() < 0.05 and crop[:, :2].max() < 0.05  # margin around the ink, no card edge
    assert crop[10:18, 10:18].mean() < 0.3  # a zero is hollow


def test_crop_undoes_rotation_and_scale() -> None:
    # The same digit, small and upright vs large and rotated, gives nearly the same crop.
    a = placard_crop(_card(5, side=36, angle=0.0), size=28)
    b = placard_crop(_card(5, side=56, angle=8.0), size=28)
    c = placard_crop(_card(5, side=56, angle=-8.0), size=28)
    other = placard_crop(_card(1, side=36, angle=0.0), size=28)
    corr = lambda u, v: float(np.corrcoef(u.ravel(), v.ravel())[0, 1])  # noqa: E731
    assert corr(a, b) > 0.85 and corr(a, c) > 0.85
    assert corr(a, other) < corr(a, b) - 0.2


def test_crops_separate_the_digits(scenes: tuple) -> None:
    # A plain nearest-centroid rule on the crops: far above chance (0.1) only if the crops hold the digit.
    images, labels, _ = scenes
    crops = np.stack([placard_crop(img, size=16) for img in images]).reshape(len(images), -1)
    train, test = np.arange(len(images)) < 200, np.arange(len(images)) >= 200
    centroids = np.stack([crops[train & (labels == k)].mean(0) for k in range(10)])
    pred = np.argmin(((crops[test, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == labels[test]) >= 0.7


# --- prepare_inputs and HOG -------------------------------------------------------------------


def test_prepare_inputs_dispatches_on_features(scenes: tuple) -> None:
    images = scenes[0][:3]
    placard = prepare_inputs(images, features="placard", input_size=28)
    full = prepare_inputs(np.stack(images), features="full", input_size=32)
    assert placard.shape == (3, 1, 28, 28) and placard.dtype == torch.float32
    assert full.shape == (3, 3, 32, 32)
    assert torch.equal(placard[1, 0], torch.from_numpy(placard_crop(images[1], size=28)))
    assert set(FEATURES) == {"placard", "full"}


@pytest.mark.parametrize(("features", "match"), [("edges", "features"), ("placard", "placard_tensor")])
def test_prepare_inputs_rejects_bad_input(features: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        prepare_inputs([np.zeros((32, 32), np.uint8)], features=features, input_size=28)


def test_hog_is_fixed_and_matches_skimage() -> None:
    layer = Hog()
    assert not any(p.requires_grad for p in layer.parameters()) and list(layer.parameters()) == []
    crop = placard_crop(_card(2, side=48, angle=3.0), size=28)
    ours = layer(torch.from_numpy(crop)[None, None])
    assert ours.shape == (1, 36, 3, 3)
    ref = hog(crop, orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2), block_norm="L2-Hys")
    # Same 324 numbers up to the soft binning: (block row, block col, cell, orientation) order.
    flat = ours[0].permute(1, 2, 0).reshape(-1).numpy()
    assert float(np.corrcoef(flat, ref)[0, 1]) > 0.8

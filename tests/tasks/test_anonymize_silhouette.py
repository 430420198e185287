"""The `silhouette` body method: a flat, person-shaped figure; no clothing colour or texture; nothing outside
the boxes read or changed; deterministic; the default for bodies, `inpaint` still selectable."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks.anonymize.engine import anonymize_image, method_for, obfuscate_detections
from tasks.anonymize.obfuscate import OBFUSCATORS, inpaint_regions, obfuscate
from tasks.anonymize.silhouette import person_mask, silhouette_regions
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams
from tasks.types import Detections

TONE = 72  # silhouette_regions' default figure grey


def _person(h: int, w: int) -> np.ndarray:
    """(h, w) bool: a standing pedestrian (head, torso, two legs) filling most of an h × w box."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, h // 10), (w // 8, h // 12), 0, 0, 360, 1, -1)
    cv2.rectangle(m, (w // 4, h // 6), (3 * w // 4, h // 2), 1, -1)
    cv2.rectangle(m, (w // 4 + 2, h // 2), (w // 2 - 2, 19 * h // 20), 1, -1)
    cv2.rectangle(m, (w // 2 + 2, h // 2), (3 * w // 4 - 2, 19 * h // 20), 1, -1)
    return m.astype(bool)


def _scene(
    seed: int = 0, colours: tuple[tuple[int, int, int], ...] = ((200, 30, 40),)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, boxes, person masks): a grey textured pavement with one striped, coloured person per colour,
    each in a box with a few pixels of margin."""
    rng = np.random.default_rng(seed)
    img = np.clip(150 + rng.normal(0, 6, (160, 80 * len(colours), 3)), 0, 255).astype(np.uint8)
    boxes, masks = [], np.zeros(img.shape[:2], bool)
    for i, colour in enumerate(colours):
        x0, y0, h, w = 80 * i + 14, 20, 120, 52
        person = _person(h, w)
        stripes = (np.arange(h)[:, None] // 4 % 2).astype(bool)  # a striped shirt: texture to hide
        cloth = np.where(stripes[..., None], np.asarray(colour), np.asarray(colour) // 2)
        region = img[y0 : y0 + h, x0 : x0 + w]
        region[person] = np.broadcast_to(cloth, (h, w, 3))[person]
        masks[y0 : y0 + h, x0 : x0 + w] = person
        boxes.append([x0 - 6, y0 - 6, x0 + w + 6, y0 + h + 6])
    return img, np.asarray(boxes, np.int64), masks


def _figure(out: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels nearer the figure's grey than the pavement's (150), its soft edge halved."""
    return np.asarray(out.astype(int).mean(-1) < (TONE + 150) / 2, bool)


def test_the_figure_keeps_the_persons_shape() -> None:
    img, boxes, person = _scene()
    fig = _figure(silhouette_regions(img, boxes))
    iou = (fig & person).sum() / (fig | person).sum()
    assert iou >= 0.7, iou  # head, torso and legs are where the person was, little else


def test_clothing_colour_and_texture_are_gone() -> None:
    img, boxes, person = _scene()
    out = silhouette_regions(img, boxes)
    ((x0, y0, x1, y1),) = boxes
    hsv = cv2.cvtColor(out[y0:y1, x0:x1], cv2.COLOR_RGB2HSV)
    assert hsv[..., 1].max() < 40  # the red shirt's saturation (> 150) appears nowhere in the box
    torso = (slice(20 + 120 // 6 + 2, 20 + 120 // 2 - 2), slice(14 + 52 // 4 + 4, 14 + 3 * 52 // 4 - 4))
    rows = np.arange(160)[torso[0]]
    light = (rows - 20) // 4 % 2 == 1  # the shirt's light stripes

    def stripes(im: np.ndarray) -> float:
        t = im[torso].astype(float).mean(axis=(1, 2))
        return float(t[light].mean() - t[~light].mean())

    assert stripes(img) > 40 and abs(stripes(out)) < 1.0  # the shirt's stripes are flat now


def test_two_people_in_different_clothes_get_the_same_figure_colour() -> None:
    img, boxes, _ = _scene(colours=((200, 30, 40), (30, 60, 200)))
    out = silhouette_regions(img, boxes)
    for x0 in (14, 94):  # each torso's core: one flat grey, the same for both, whatever they wore
        core = out[20 + 120 // 6 + 4 : 20 + 120 // 2 - 4, x0 + 52 // 4 + 6 : x0 + 3 * 52 // 4 - 6]
        assert (core == TONE).all()


def test_pixels_outside_the_boxes_never_change_nor_matter() -> None:
    img, boxes, _ = _scene(colours=((200, 30, 40), (30, 60, 200)))
    out = silhouette_regions(img, boxes)
    inside = np.zeros(img.shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(out[~inside], img[~inside])
    other = img.copy()
    other[~inside] = np.random.default_rng(9).integers(0, 256, (int((~inside).sum()), 3))
    np.testing.assert_array_equal(silhouette_regions(other, boxes)[inside], out[inside])  # reads only inside


def test_deterministic_and_registered() -> None:
    img, boxes, _ = _scene(3)
    first = silhouette_regions(img, boxes)
    np.testing.assert_array_equal(silhouette_regions(img.copy(), boxes.copy()), first)
    np.testing.assert_array_equal(obfuscate(img, boxes, method="silhouette"), first)
    assert OBFUSCATORS["silhouette"] is silhouette_regions
    np.testing.assert_array_equal(silhouette_regions(img, np.zeros((0, 4), np.int64)), img)


def test_a_box_of_plain_background_gets_no_figure() -> None:
    img = np.full((100, 60, 3), 140, np.uint8)
    out = silhouette_regions(img, np.array([[10, 10, 50, 90]]))
    assert not _figure(out).any() and not person_mask(img[10:90, 10:50]).any()


@pytest.mark.parametrize(
    ("boxes", "options"),
    [
        (np.array([[0, 0, 200, 10]]), {}),  # outside the image
        (np.array([[10, 10, 10, 20]]), {}),  # empty
        (np.array([[0.5, 0, 10, 10]]), {}),  # not whole pixels
        ([[0, 0, 10, 10]], {}),  # not an array
        (np.array([[0, 0, 10, 10]]), {"tone": 300}),
        (np.array([[0, 0, 10, 10]]), {"feather": -0.1}),
        (np.array([[0, 0, 10, 10]]), {"side": 4}),
        (np.array([[0, 0, 10, 10]]), {"contrast": 0}),
    ],
)
def test_bad_input_is_refused(boxes: object, options: dict[str, float]) -> None:
    img, _, _ = _scene()
    with pytest.raises(InvalidInputError):
        silhouette_regions(img, boxes, **options)  # type: ignore[arg-type]


def test_a_bad_image_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        silhouette_regions(np.zeros((20, 20), np.uint8), np.array([[0, 0, 5, 5]]))
    with pytest.raises(InvalidInputError):
        silhouette_regions(np.zeros((20, 20, 3), np.float32), np.array([[0, 0, 5, 5]]))  # type: ignore[arg-type]


def test_bodies_default_to_silhouette_and_inpaint_stays_selectable() -> None:
    assert AnonymizeParams().methods["body"] == "silhouette"
    assert method_for("body", method="inpaint", methods=AnonymizeParams().methods) == "silhouette"
    assert AnonymizeParams(methods={"body": "inpaint"}).methods["body"] == "inpaint"


class _Fixed:
    def __init__(self, boxes: list[list[int]], category: str) -> None:
        self.boxes, self.category = np.asarray(boxes, np.int64), category

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections(
            self.boxes, np.ones(len(self.boxes), np.float32), (self.category,) * len(self.boxes)
        )


def test_the_engine_silhouettes_bodies_before_it_inpaints_their_neighbours() -> None:
    """Inpainting reads around its box: it must see the figure, never the raw body next to it."""
    img, boxes, _ = _scene()
    text = np.array([[boxes[0, 2], 60, boxes[0, 2] + 8, 80]])  # a text box touching the body box
    found = Detections(np.concatenate([boxes, text]), np.ones(2, np.float32), ("body", "text"))
    out, chosen = obfuscate_detections(img, found, method="inpaint", methods={"body": "silhouette"}, block=8,
                                       blur_strength=0.5, options={})  # fmt: skip
    assert chosen == ("silhouette", "inpaint")
    np.testing.assert_array_equal(out, inpaint_regions(silhouette_regions(img, boxes), text))
    result = anonymize_image(img, detectors={"b": _Fixed(boxes.tolist(), "body")}, method="inpaint",
                             methods=AnonymizeParams().methods, verify="off")  # fmt: skip
    assert result.methods == ("silhouette",) and result.image is not None
    np.testing.assert_array_equal(result.image, silhouette_regions(img, boxes))

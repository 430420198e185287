"""Body detector (HOG people + Haar full/upper-body): mechanics and its false positives on the builtin scenes.

No image of people ships offline except scikit-image's astronaut, so recall is not measured here;
the builtin scenes contain no bodies, so every detection on them is a false positive.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import skimage.data

from tasks.anonymize.detectors import DETECTORS, BodyDetector, build_detectors
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import generate_builtin


@pytest.fixture(scope="module")
def scenes() -> list[np.ndarray]:
    samples = generate_builtin(n_images=12, image_size=256, max_faces=3, face_size=(24, 72), seed=7)
    return [s.image for s in samples]


def test_few_false_positives_on_scenes_without_people(scenes: list[np.ndarray]) -> None:
    detector = DETECTORS["body"]()
    found = [detector(img) for img in scenes]
    assert sum(map(len, found)) <= 1, [d.boxes.tolist() for d in found]  # measured: 0 on 30 scenes


def test_boxes_are_bodies_inside_the_image() -> None:
    img = skimage.data.astronaut()  # (512, 512, 3): a person, upper body
    dets = BodyDetector()(img)
    assert len(dets) >= 1 and set(dets.category) == {"body"}
    assert (dets.boxes[:, :2] >= 0).all() and (dets.boxes[:, 2:] <= 512).all()
    assert ((dets.scores > 0) & (dets.scores < 1)).all()


def test_options_are_checked_and_the_detector_pickles(scenes: list[np.ndarray]) -> None:
    with pytest.raises(InvalidInputError, match="body detector"):
        BodyDetector(cascades=("lowerbody",))
    with pytest.raises(InvalidInputError, match="body detector"):
        BodyDetector(hog=False, cascades=())
    detector = BodyDetector()
    detector(scenes[0])
    clone = pickle.loads(pickle.dumps(detector))
    assert clone._models is None
    np.testing.assert_array_equal(clone(scenes[1]).boxes, detector(scenes[1]).boxes)
    with pytest.raises(InvalidInputError, match="uint8"):
        detector(np.zeros((32, 32, 3), np.float32))
    assert list(build_detectors(targets=("face", "body"), face={}, text={}, body={"hog": False})) == [
        "face",
        "body",
    ]

"""Real detectors on scenes built at run time: pasted LFW faces, rendered plates / PII / shop text, a digit placard.

Measured (180 faces of 24–72 px, seeds 11 and 12): the default face detector covers 91 % of faces ≥ 90 %
with one padded box (24 px: 88 %, 72 px: 88 %); CenterFace alone 60 % (24 px: 22 %). The 16-scene sample
below measured 83 %; floors sit under that so a regression fails and noise does not.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tasks.anonymize.detectors import DETECTORS, FaceDetector, OcrTextDetector, build_detectors
from tasks.anonymize.engine import anonymize_image
from tasks.anonymize.obfuscate import pixelate_regions
from tasks.errors import InvalidInputError
from tests.tasks._anonymize_scenes import coverage, face_scene, put_placard, put_text

SIDES = [24, 32, 40, 48, 56, 72]


@pytest.fixture(scope="module")
def face_detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def text_detector() -> OcrTextDetector:
    return OcrTextDetector()


@pytest.fixture(scope="module")
def face_scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [face_scene(rng, [SIDES[(i + k) % 6] for k in range(3)]) for i in range(16)]


def _recall(detector: FaceDetector, scenes: list[tuple[np.ndarray, np.ndarray]]) -> float:
    hits = [coverage(gt, detector(img).boxes) >= 0.9 for img, boxes in scenes for gt in boxes]
    return float(np.mean(hits))


def test_face_recall_on_pasted_lfw_faces(face_detector: FaceDetector, face_scenes: list) -> None:
    recall = _recall(face_detector, face_scenes)
    assert recall >= 0.78, f"face recall {recall:.2f} on 48 faces of 24-72 px"


@pytest.mark.slow
def test_face_recall_on_180_faces(face_detector: FaceDetector) -> None:
    rng = np.random.default_rng(12)
    scenes = [face_scene(rng, [SIDES[(i + k) % 6] for k in range(3)]) for i in range(60)]
    recall = _recall(face_detector, scenes)
    assert recall >= 0.88, f"face recall {recall:.2f} on 180 faces of 24-72 px"


def test_cascade_adds_small_faces(face_scenes: list) -> None:
    """CenterFace alone misses many tight 24-40 px faces; the default union must do clearly better."""
    small = [(img, boxes[(boxes[:, 2] - boxes[:, 0]) <= 40]) for img, boxes in face_scenes]
    alone = _recall(FaceDetector(cascades={}), small)
    union = _recall(FaceDetector(), small)
    assert union >= alone + 0.1, (alone, union)


def test_pixelated_faces_are_rarely_found_again(face_detector: FaceDetector, face_scenes: list) -> None:
    """Block-8 mosaics mostly stop looking like faces; the `default` cascade still fires on some (7 of 50
    measured with alt2 + default; 0 with alt2 alone), which the engine escalates to masking."""
    found = residual = 0
    for img, _ in face_scenes:
        dets = face_detector(img)
        found += len(dets)
        residual += len(face_detector(pixelate_regions(img, dets.boxes, block=8)))
    assert found >= 40
    assert residual <= 0.2 * found, f"{residual} of {found} faces found again after pixelation"


def test_anonymize_leaves_no_face(face_detector: FaceDetector, face_scenes: list) -> None:
    for img, _ in face_scenes[:6]:
        result = anonymize_image(
            img, detectors={"face": face_detector}, method="pixelate", block=8, blur_strength=0.5
        )
        assert result.image is not None, result.quarantine_reason
        assert len(face_detector(result.image)) == 0


def test_face_detector_pickles_and_rebuilds(face_detector: FaceDetector, face_scenes: list) -> None:
    img = face_scenes[0][0]
    clone = pickle.loads(pickle.dumps(face_detector))
    assert clone._sess is None
    np.testing.assert_array_equal(clone(img).boxes, face_detector(img).boxes)


@pytest.fixture(scope="module")
def street_scene() -> tuple[np.ndarray, dict[str, list[int]], int]:
    rng = np.random.default_rng(5)
    img, _ = face_scene(rng, [])
    boxes = {
        "plate": put_text(
            img, "AB 123 CD", x=10, y=40, scale=0.6, fg=(0, 0, 0), bg=(255, 255, 255), thickness=2
        ),
        "phone": put_text(img, "+1 555 014 2231", x=10, y=90, scale=0.5, fg=(255, 255, 255), bg=(40, 40, 40)),
        "shop": put_text(
            img, "BAKERY", x=10, y=140, scale=0.7, fg=(0, 0, 0), bg=(200, 230, 255), thickness=2
        ),
    }
    boxes["placard"], label = put_placard(img, index=3, x=180, y=180, side=40)
    return img, boxes, label


def _inside(box: np.ndarray, outer: list[int]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return bool(outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3])


def test_ocr_reads_the_scene(text_detector: OcrTextDetector, street_scene: tuple) -> None:
    img, boxes, label = street_scene
    rects, texts, _ = text_detector.read(img)
    by_text = {"".join(t.split()): r for t, r in zip(texts, rects, strict=True)}
    assert {"AB123CD", "+15550142231", "BAKERY"} <= set(by_text), texts
    assert coverage(np.asarray(boxes["plate"]) + [4, 4, -4, -4], by_text["AB123CD"][None].astype(int)) > 0.9
    placard = [t for t, r in zip(texts, rects, strict=True) if _inside(r, boxes["placard"])]
    assert placard and all(len(t) <= 2 for t in placard), texts  # the lone digit is found (as itself or glyphs)


def test_pii_policy_redacts_plate_and_phone_keeps_digit_and_shop_word(
    text_detector: OcrTextDetector, street_scene: tuple
) -> None:
    img, boxes, _ = street_scene
    dets = text_detector(img)
    assert sorted(dets.category) == ["plate", "text"]
    assert {"".join(t.split()) for t in dets.text} == {"AB123CD", "+15550142231"}
    for name in ("placard", "shop"):
        assert coverage(np.asarray(boxes[name]), dets.boxes) < 0.2, name


def test_all_policy_redacts_every_text(street_scene: tuple) -> None:
    img, boxes, _ = street_scene
    dets = OcrTextDetector(policy="all")(img)
    assert "BAKERY" in dets.text and len(dets) >= 4
    assert coverage(np.asarray(boxes["shop"]), dets.boxes) > 0.5
    assert any(_inside(b, boxes["placard"]) for b in dets.boxes)  # the placard's digit is redacted too


def test_plate_only_detector_reports_plates(street_scene: tuple) -> None:
    dets = DETECTORS["plate"]()(street_scene[0])
    assert dets.category == ("plate",)


def test_build_detectors_shares_one_ocr_pass() -> None:
    built = build_detectors(
        targets=("face", "plate", "text"),
        face={"threshold": 0.2, "pad": 0.2, "cascades": {"alt2": 2.0}},
        text={"box_threshold": 0.3, "pad": 0.1, "policy": "pii"},
    )
    assert sorted(built) == ["face", "plate+text"]
    assert sorted(build_detectors(targets=("body",), face={}, text={})) == ["body"]
    with pytest.raises(InvalidInputError, match="car"):
        build_detectors(targets=("car",), face={}, text={})


def test_detectors_reject_bad_images(face_detector: FaceDetector, text_detector: OcrTextDetector) -> None:
    for detector in (face_detector, text_detector):
        with pytest.raises(InvalidInputError, match="uint8"):
            detector(np.zeros((32, 32, 3), np.float32))

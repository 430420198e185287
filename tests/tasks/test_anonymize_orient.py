"""Orientation (`tasks/anonymize/detectors/orient.py`): exact box mapping, the wrapper, the cues, the wiring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from tasks.anonymize.detectors import FaceDetector, OcrTextDetector, Oriented, build_detectors
from tasks.anonymize.detectors.orient import TextTurnCue, rotate, rotate_boxes, turned_shape, unrotate_boxes
from tasks.anonymize.engine import anonymize_image, image_rng, obfuscation_options
from tasks.params import AnonymizeParams
from tasks.types import Detections

ASTRONAUT_FACE = [181, 78, 267, 176]  # tests/data/real_photos_gt.json


@pytest.mark.parametrize("shape", [(7, 11), (11, 7), (9, 9), (480, 640)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_boxes_found_on_a_turned_copy_map_back_to_the_same_pixels(shape: tuple[int, int], k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, shape[1] - 1)), int(rng.integers(0, shape[0] - 1))
        box = np.array([[x0, y0, int(rng.integers(x0 + 1, shape[1] + 1)), int(rng.integers(y0 + 1, shape[0] + 1))]])
        mask = np.zeros((*shape, 3), np.uint8)
        mask[box[0, 1]:box[0, 3], box[0, 0]:box[0, 2]] = 255
        turned = rotate(mask, k)
        assert turned.shape[:2] == turned_shape(shape, k)
        ys, xs = np.nonzero(turned[..., 0])
        seen = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]])  # the box as found on the turned copy
        assert unrotate_boxes(seen, k, shape=shape).tolist() == box.tolist()
        assert rotate_boxes(box, k, shape=shape).tolist() == seen.tolist()


def _pattern_finder(calls: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    """A fake detector that sees only an upright pattern: a red 4x4 block with a green one right of it."""

    def detect(image: np.ndarray) -> Detections:
        calls.append(image.shape[:2])
        red = (image[..., 0] == 255) & (image[..., 1] == 0)
        green = (image[..., 1] == 255) & (image[..., 0] == 0)
        hits = red[:, :-4] & green[:, 4:]
        if not hits.any():
            return Detections.empty()
        ys, xs = np.nonzero(hits)
        box = [[int(xs.min()), int(ys.min()), int(xs.min()) + 8, int(ys.max()) + 1]]
        return Detections(np.array(box, np.int64), np.ones(1, np.float32), ("face",))

    return detect


def _pattern_image() -> tuple[np.ndarray, list[int]]:
    image = np.zeros((37, 53, 3), np.uint8)
    image[10:14, 20:24] = (255, 0, 0)
    image[10:14, 24:28] = (0, 255, 0)
    return image, [20, 10, 28, 14]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_wrapper_finds_turned_content_and_maps_it_back(k: int) -> None:
    upright, box = _pattern_image()
    image = rotate(upright, k)  # the content turned by k: turn 4 - k makes it upright again
    calls: list[tuple[int, int]] = []
    plain = _pattern_finder(calls)
    assert not len(plain(image))
    found, kept = Oriented(plain, mode="all").detect_and_keep(image)
    assert found.boxes.tolist() == rotate_boxes(np.array([box]), k, shape=upright.shape[:2]).tolist()
    assert not len(kept)
    turns = Oriented(plain, mode="cue", cue=lambda im, f, kp: (4 - k,))
    assert turns(image).boxes.tolist() == found.boxes.tolist()


def test_with_no_cue_the_wrapper_runs_the_detector_once() -> None:
    image, _ = _pattern_image()
    calls: list[tuple[int, int]] = []
    wrapped = Oriented(_pattern_finder(calls), mode="cue", cue=lambda im, f, kp: ())
    assert wrapped(image).boxes.tolist() == [[20, 10, 28, 14]]
    assert calls == [image.shape[:2]]


def test_verification_crops_look_at_the_turn_the_first_pass_chose() -> None:
    upright, box = _pattern_image()
    image = rotate(upright, 1)
    cue_calls: list[int] = []

    def cue(im: np.ndarray, found: Detections, kept: Detections) -> tuple[int, ...]:
        cue_calls.append(1)
        return (3,) if len(cue_calls) == 1 else ()  # fires on the first pass only (as on a redacted output)

    wrapped = Oriented(_pattern_finder([]), mode="cue", cue=cue)
    found, _ = wrapped.detect_and_keep(image)
    assert len(found) == 1
    x0, y0, x1, y1 = (int(v) for v in found.boxes[0])
    crop = np.ascontiguousarray(image[max(0, y0 - 5):y1 + 5, max(0, x0 - 5):x1 + 5])
    seen = wrapped.detect_crop(crop, full_shape=image.shape[:2])  # what the engine's region verification calls
    assert seen.boxes.tolist() == [[x0 - max(0, x0 - 5), y0 - max(0, y0 - 5), x1 - max(0, x0 - 5), y1 - max(0, y0 - 5)]]
    assert len(wrapped(image)) == 1  # the whole-image verification too


def test_replace_drops_upright_reads_of_lines_a_turned_pass_read() -> None:
    garbage = Detections(np.array([[10, 10, 20, 40], [30, 0, 40, 5]], np.int64), np.ones(2, np.float32), ("text", "text"))
    read = Detections(np.array([[9, 9, 21, 41]], np.int64), np.ones(1, np.float32), ("text",))

    class Fake:
        def detect_and_keep(self, image: np.ndarray) -> tuple[Detections, Detections]:
            return (garbage, Detections.empty()) if image.shape == (50, 60, 3) else (
                Detections.empty(), Detections(rotate_boxes(read.boxes, 1, shape=(50, 60)), read.scores, read.category))

        def __call__(self, image: np.ndarray) -> Detections:
            return self.detect_and_keep(image)[0]

    found, kept = Oriented(Fake(), mode="cue", cue=lambda im, f, k: (1,), combine="replace").detect_and_keep(
        np.zeros((50, 60, 3), np.uint8))
    assert found.boxes.tolist() == [[30, 0, 40, 5]]  # the line the turned pass read is its to judge; the other stays
    assert kept.boxes.tolist() == read.boxes.tolist()


def _text_page() -> np.ndarray:
    page = np.full((480, 640, 3), 255, np.uint8)
    for i, line in enumerate(("OPENING HOURS MONDAY TO FRIDAY", "PLEASE KEEP THIS DOOR CLOSED")):
        cv2.putText(page, line, (30, 120 + 90 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 0, 0), 3, cv2.LINE_AA)
    return page


@pytest.fixture(scope="module")
def ocr() -> OcrTextDetector:
    return OcrTextDetector(categories=("text",))


@pytest.mark.parametrize(("k", "expected"), [(0, ()), (3, (1,)), (1, (3,)), (2, (2,))])
def test_the_text_cue_finds_the_turn_that_makes_lines_readable(ocr: OcrTextDetector, k: int, expected: tuple[int, ...]) -> None:
    image = rotate(_text_page(), k)
    found, kept = ocr.detect_and_keep(image)
    assert TextTurnCue(ocr)(image, found, kept) == expected


def test_a_sideways_line_triggers_the_90_degree_pass_and_an_upright_one_does_not(ocr: OcrTextDetector) -> None:
    seen: list[tuple[int, int]] = []

    class Recording:
        context = "row"

        def detect_and_keep(self, image: np.ndarray) -> tuple[Detections, Detections]:
            seen.append(image.shape[:2])
            return ocr.detect_and_keep(image)

        def __call__(self, image: np.ndarray) -> Detections:
            return self.detect_and_keep(image)[0]

    wrapped = Oriented(Recording(), mode="cue", cue=TextTurnCue(ocr), combine="replace")
    wrapped.detect_and_keep(_text_page())
    assert seen == [(480, 640)]
    seen.clear()
    wrapped.detect_and_keep(rotate(_text_page(), 3))
    assert seen == [(640, 480), (480, 640)]  # the upright pass, then the page turned back


def _rotated_astronaut(k: int) -> tuple[np.ndarray, list[int]]:
    image = np.ascontiguousarray(skimage.data.astronaut())
    return rotate(image, k), rotate_boxes(np.array([ASTRONAUT_FACE]), k, shape=image.shape[:2])[0].tolist()


def _covered(boxes: np.ndarray, face: list[int]) -> float:
    mask = np.zeros((1024, 1024), bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return float(mask[face[1]:face[3], face[0]:face[2]].mean())


@pytest.mark.parametrize("k", [1, 2])
def test_a_turned_real_face_is_redacted_and_verification_passes(k: int) -> None:
    image, face = _rotated_astronaut(k)
    p = AnonymizeParams(targets=("face",))
    plain = build_detectors(targets=("face",), face=p.face.model_dump(), text={}, orientation="off")
    if k == 2:  # upside down, the upright-only detectors miss it (on its side, YuNet on a 2x copy still sees it)
        assert _covered(plain["face"](image).boxes, face) < 0.5
    detectors = build_detectors(targets=("face",), face=p.face.model_dump(), text={}, orientation=p.orientation)
    result = anonymize_image(image, detectors=detectors, options=obfuscation_options(p), rng=image_rng(0, "a"),
                             method=p.method, methods=p.methods, verify=p.verify)
    assert result.image is not None, result  # not quarantined: the verification saw the redacted face turned
    assert _covered(result.detections.boxes, face) >= 0.9
    x0, y0, x1, y1 = face
    assert (result.image[y0:y1, x0:x1] != image[y0:y1, x0:x1]).any(axis=-1).mean() >= 0.7


def test_presets_wire_the_orientation_mode() -> None:
    assert AnonymizeParams().orientation == "cue"
    assert AnonymizeParams(preset="fast").orientation == "cue"
    assert AnonymizeParams(preset="thorough").orientation == "all"
    assert AnonymizeParams(preset="thorough", orientation="off").orientation == "off"
    built = build_detectors(targets=("face", "text"), face={}, text={}, orientation="all")
    assert isinstance(built["face"], Oriented) and built["face"].mode == "all"
    assert isinstance(built["text"], Oriented) and built["text"].mode == "cue" and built["text"].combine == "replace"
    assert isinstance(built["face"].inner, FaceDetector) and built["face"].pad == built["face"].inner.pad
    off = build_detectors(targets=("face", "text"), face={}, text={}, orientation="off")
    assert isinstance(off["face"], FaceDetector) and isinstance(off["text"], OcrTextDetector)


def test_the_face_cue_fires_the_turn_that_stands_a_lying_face_up_and_not_on_an_upright_one() -> None:
    from tasks.anonymize.detectors import FaceTurnCue

    p = AnonymizeParams(targets=("face",))
    face = build_detectors(targets=("face",), face=p.face.model_dump(), text={}, orientation="off")["face"]
    cue = FaceTurnCue()
    upright = np.ascontiguousarray(skimage.data.astronaut())
    assert cue(upright, face(upright), Detections.empty()) == ()
    for k in (1, 2):  # on its side YuNet finds the face (scored lower): its crop decides; upside down, the thumbnail
        turned, _ = _rotated_astronaut(k)
        assert 4 - k in cue(turned, face(turned), Detections.empty())


def test_wrapped_detectors_travel_to_worker_processes() -> None:
    import pickle

    built = build_detectors(targets=("face", "text"), face={}, text={}, orientation="cue")
    copy = pickle.loads(pickle.dumps(built))
    assert isinstance(copy["face"], Oriented) and copy["face"].mode == "cue"
    assert copy["text"].cue.ocr is copy["text"].inner  # the cue reads lines with the detector's own models

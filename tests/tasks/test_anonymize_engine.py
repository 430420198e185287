"""anonymize_image with fake detectors: redaction, fail-closed quarantine, verification, escalation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tasks.anonymize.detectors.common import DetectorSet
from tasks.anonymize.engine import AnonymizedImage, alike, anonymize_image, drop_rereads, summarize
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections

BOX = [10, 10, 40, 40]


class Fake:
    """Returns `boxes` while the pixels under them still have detail (std > `flat`); counts calls."""

    def __init__(self, boxes: list[list[int]], category: str = "face", *, flat: float | None = None) -> None:
        self.boxes, self.category, self.flat, self.calls = (
            np.asarray(boxes, np.int64).reshape(-1, 4),
            category,
            flat,
            0,
        )

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        keep = [
            b for b in self.boxes if self.flat is None or image[b[1] : b[3], b[0] : b[2]].std() > self.flat
        ]
        boxes = np.asarray(keep, np.int64).reshape(-1, 4)
        return Detections(boxes, np.ones(len(boxes), np.float32), (self.category,) * len(boxes))


class Raises:
    def __call__(self, image: np.ndarray) -> Detections:
        raise AnonymizationError("onnxruntime: Fail: bad input")


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def run(image: np.ndarray, method: str = "pixelate", **detectors: object) -> AnonymizedImage:
    return anonymize_image(image, detectors=detectors, method=method, block=8, blur_strength=0.5)  # type: ignore[arg-type]


def test_boxes_are_redacted_and_verified(image: np.ndarray) -> None:
    face = Fake([BOX], flat=20.0)  # stops firing once the region is pixelated
    result = run(image, face=face)
    assert result.quarantine_reason is None and result.image is not None
    assert len(result.detections) == 1 and len(result.residual) == 0 and result.escalated == 0
    assert (result.image[10:40, 10:40] != image[10:40, 10:40]).any()
    np.testing.assert_array_equal(result.image[40:], image[40:])
    assert face.calls == 2  # detect + verify


def test_detector_failure_quarantines(image: np.ndarray) -> None:
    result = run(image, face=Fake([BOX]), text=Raises())
    assert result.image is None
    assert result.quarantine_reason == "detection failed: text: onnxruntime: Fail: bad input"


def test_bugs_in_our_code_are_not_swallowed(image: np.ndarray) -> None:
    def buggy(img: np.ndarray) -> Detections:
        raise IndexError("a bug")

    with pytest.raises(IndexError):
        run(image, face=buggy)


def test_obfuscation_failure_quarantines(image: np.ndarray) -> None:
    result = run(image, face=Fake([[0, 0, 99, 99]]))  # box outside the 64x64 image
    assert result.image is None
    assert result.quarantine_reason is not None and result.quarantine_reason.startswith(
        "anonymization failed: "
    )
    assert len(result.detections) == 1


def test_invalid_image_quarantines() -> None:
    result = run(np.zeros((8, 8), np.uint8), face=Fake([]))
    assert result.image is None and "expected an (H, W, 3) uint8" in str(result.quarantine_reason)


def test_verifier_that_still_fires_quarantines(image: np.ndarray) -> None:
    result = run(image, face=Fake([BOX]), text=Fake([[45, 45, 60, 60]], "text"))  # fire on any pixels
    assert result.image is None
    assert result.quarantine_reason == "sensitive content survived: 1 face, 1 text"
    assert len(result.residual) == 2 and result.escalated == 2


def test_new_detection_after_pixelation_is_escalated_to_mask(image: np.ndarray) -> None:
    """A detector that fires only on the pixelated output (not on the input) gets masked, then passes."""

    class FiresOnMosaic:
        def __call__(self, img: np.ndarray) -> Detections:
            region = img[10:40, 10:40]
            mosaic = region.std() > 0 and (region[:8, :8] == region[0, 0]).all()
            boxes = np.array([[12, 12, 30, 30]] if mosaic else [], np.int64).reshape(-1, 4)
            return Detections(boxes, np.ones(len(boxes), np.float32), ("face",) * len(boxes))

    result = run(image, face=Fake([BOX], flat=20.0), mosaic=FiresOnMosaic())
    assert result.quarantine_reason is None and result.image is not None
    assert result.escalated == 2  # the residual box and the earlier box it overlaps
    assert (result.image[10:40, 10:40] == 0).all()


def _texts(rows: list[tuple[list[int], str, str]]) -> Detections:
    boxes = np.asarray([r[0] for r in rows], np.int64).reshape(-1, 4)
    return Detections(boxes, np.ones(len(rows), np.float32), tuple(r[1] for r in rows), tuple(r[2] for r in rows))


def test_a_damaged_reread_of_a_kept_line_is_no_residual() -> None:
    kept = _texts([([10, 10, 110, 30], "text", "Sports Centre"), ([10, 60, 110, 80], "text", "copy centre")])
    residual = _texts([
        ([8, 12, 112, 34], "text", "SportsCantra"),  # the kept line, bitten by a redaction below it
        ([12, 58, 100, 82], "text", "centi"),  # a piece of the other one
        ([8, 12, 112, 34], "text", "Jane Doe"),  # unlike the kept line: new content
        ([8, 12, 112, 34], "text", "Sports 0123 456789"),  # a pattern recogniser fires (phone)
        ([8, 12, 112, 34], "face", ""),  # never a re-read
        ([10, 100, 110, 120], "text", "Sports Centre"),  # alike, but where no line was kept
        ([8, 12, 112, 34], "plate", "SP0RTS1"),
    ])  # fmt: skip
    left = drop_rereads(residual, kept)
    assert left.text == ("Jane Doe", "Sports 0123 456789", "", "Sports Centre", "SP0RTS1")
    assert drop_rereads(residual, Detections.empty()) is residual
    assert alike("sportscantra", "sportscentre") > 0.8 and alike("centi", "copycentre") == 0.8
    assert alike("janedoe", "sportscentre") < 0.5


def test_verification_ignores_a_kept_line_the_redaction_damaged(image: np.ndarray) -> None:
    """The first pass keeps an ordinary line next to a personal one; redacting the personal one damages
    it, and the verification reads it as an unknown word: the image is written without escalation. A
    re-read unlike the kept line is escalated as before."""

    class Ocr:
        def __init__(self, reread: str) -> None:
            self.reread, self.calls = reread, 0

        def detect_and_keep(self, img: np.ndarray) -> tuple[Detections, Detections]:
            self.calls += 1
            if self.calls == 1:
                return _texts([([10, 30, 60, 45], "text", "Wiveniioe Fark")]), _texts(
                    [([10, 10, 60, 28], "text", "Sports Centre")]
                )
            return _texts([([10, 10, 60, 30], "text", self.reread)]), Detections.empty()

        def __call__(self, img: np.ndarray) -> Detections:
            return self.detect_and_keep(img)[0]

    damaged = run(image, text=Ocr("SportsCantra"))
    assert damaged.image is not None and damaged.escalated == 0
    assert (damaged.image[10:28, 10:60] == image[10:28, 10:60]).all()
    other = run(image, text=Ocr("Jane Doe"))
    assert other.escalated > 0  # new content where the kept line was: masked (and fires again: quarantined)


def test_nothing_found_skips_verification(image: np.ndarray) -> None:
    face = Fake([])
    result = run(image, face=face)
    assert face.calls == 1 and result.image is not None
    np.testing.assert_array_equal(result.image, image)


def test_verify_false_runs_detectors_once(image: np.ndarray) -> None:
    face = Fake([BOX])
    result = anonymize_image(
        image, detectors={"face": face}, method="blur", block=8, blur_strength=0.5, verify=False
    )
    assert face.calls == 1 and result.image is not None and result.quarantine_reason is None


def test_summarize_counts_add_up(image: np.ndarray) -> None:
    results = [
        run(image, face=Fake([BOX], flat=20.0)),
        run(image, face=Fake([BOX], flat=20.0), plate=Fake([[40, 40, 60, 50]], "plate", flat=20.0)),
        run(image, face=Raises()),
        run(image, face=Fake([BOX])),
    ]
    summary = summarize(results)
    assert (summary.images, summary.processed, summary.quarantined) == (4, 2, 2)
    assert summary.detections == {"face": 3, "plate": 1}
    assert summary.escalated_images == 1
    assert summary.reasons == {
        "detection failed: face: onnxruntime: Fail: bad input": 1,
        "sensitive content survived: 1 face": 1,
    }
    metrics = summary.as_metrics()
    assert metrics["anonymize/quarantine_fraction"] == 0.5
    assert metrics["anonymize/detections_face"] == 3.0
    assert all(k.startswith("anonymize/") for k in metrics)


class Waits:
    """Returns its box once every Waits of the set has been entered: on one thread this would block."""

    def __init__(self, box: list[int], barrier: threading.Barrier) -> None:
        self.fake, self.barrier, self.threads = Fake([box], flat=20.0), barrier, set()

    def __call__(self, image: np.ndarray) -> Detections:
        self.threads.add(threading.get_ident())
        self.barrier.wait(timeout=10)
        return self.fake(image)


def test_a_detector_set_runs_its_members_at_once_and_keeps_their_order(image: np.ndarray) -> None:
    barrier = threading.Barrier(2)
    face, text = Waits(BOX, barrier), Waits([44, 44, 60, 60], barrier)
    threaded = anonymize_image(image, detectors=DetectorSet({"face": face, "text": text}, threads=2),
                               method="pixelate", verify="whole")
    plain = anonymize_image(image, detectors={"face": Fake([BOX], flat=20.0), "text": Fake([[44, 44, 60, 60]], flat=20.0)},
                            method="pixelate", verify="whole")
    assert threaded.quarantine_reason is None and threaded.image is not None
    np.testing.assert_array_equal(threaded.image, plain.image)
    assert threaded.detections.boxes.tolist() == plain.detections.boxes.tolist()  # face first, as ordered
    assert len(face.threads | text.threads) == 2  # the barrier let both through: they ran at once


def test_a_detector_set_names_the_first_member_that_failed(image: np.ndarray) -> None:
    dets = DetectorSet({"face": Fake([BOX]), "plate": Raises(), "text": Raises()}, threads=2)
    result = anonymize_image(image, detectors=dets, method="pixelate")
    assert result.image is None
    assert result.quarantine_reason == "detection failed: plate: onnxruntime: Fail: bad input"
    with pytest.raises(InvalidInputError):
        DetectorSet({}, threads=0)


# --- issue 36: one region per overlapping group, proportionate escalation -------------------------------


def test_overlapping_boxes_of_one_category_are_obfuscated_once_as_one_region(image: np.ndarray) -> None:
    """Two detections of one face, pixelated: one mosaic over their bounding box, not a mosaic inside another
    (whose cells would not line up); a box of another category beside them keeps its own mosaic."""
    from tasks.anonymize.obfuscate import pixelate_regions

    result = anonymize_image(image, detectors={"a": Fake([[10, 10, 40, 40], [20, 14, 50, 44]]),
                                               "b": Fake([[30, 46, 60, 60]], "plate")},
                             method="pixelate", block=8, verify=False)  # type: ignore[dict-item]  # fmt: skip
    expected = pixelate_regions(pixelate_regions(image, np.array([[10, 10, 50, 44]]), block=8),
                                np.array([[30, 46, 60, 60]]), block=8)  # fmt: skip
    np.testing.assert_array_equal(result.image, expected)
    assert len(result.detections) == 3 and result.methods == ("pixelate",) * 3  # what was found is kept whole


class FiresUntil:
    """A face detector that fires on its box while the pixels there vary by more than `flat` (std)."""

    def __init__(self, box: list[int], flat: float) -> None:
        self.box, self.flat = box, flat

    def __call__(self, img: np.ndarray) -> Detections:
        x0, y0, x1, y1 = self.box
        hit = img[y0:y1, x0:x1].astype(np.float64).std() > self.flat
        boxes = np.asarray([self.box] if hit else [], np.int64).reshape(-1, 4)
        return Detections(boxes, np.ones(len(boxes), np.float32), ("face",) * len(boxes))


def test_escalation_first_redoes_the_own_method_on_a_slightly_larger_region() -> None:
    """A residual that a stronger mosaic removes is redone with the category's own method on its box grown by
    `ESCALATE_GROW`: no black box, nothing masked, nothing changed beyond the grown box."""
    from tasks.anonymize.engine import ESCALATE_GROW, grow
    from tasks.anonymize.obfuscate import pixelate_regions

    img = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    first = pixelate_regions(img, np.array([[30, 30, 62, 62]]), block=8)
    flat = float(first[30:62, 30:62].astype(np.float64).std()) - 1  # block 8 still fires, 16 does not
    result = anonymize_image(img, detectors={"f": FiresUntil([30, 30, 62, 62], flat=flat)}, method="pixelate",
                             block=8)  # fmt: skip
    assert result.image is not None and result.escalated == 1 and result.masked == 0
    assert not (result.image == 0).all(axis=2).any()  # no solid black anywhere
    x0, y0, x1, y1 = grow(np.array([[30, 30, 62, 62]]), ESCALATE_GROW, width=96, height=96)[0]
    outside = np.ones((96, 96), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(result.image[outside], img[outside])
    assert (result.image[y0:30, 30:62] != img[y0:30, 30:62]).any()  # the growth was used


def test_a_mask_is_the_last_round_and_is_counted(image: np.ndarray) -> None:
    """When the own method never suffices, the boxes are masked (and only they), counted in the result, the
    record and the summary; a residual that survives even the mask quarantines the image."""
    from tasks.anonymize.records import image_record

    result = run(image, face=Fake([BOX], flat=0.5))  # fires on anything but a flat region
    assert result.image is not None and result.masked == 1 and result.escalated == 1
    assert (result.image[10:40, 10:40] == 0).all()
    changed = (result.image != image).any(axis=2)
    assert not changed[:, 50:].any() and not changed[50:].any()  # within BOX grown by the own rounds
    record = image_record({"id": "x", "path": "x.png", "split": "train", "label": 0}, result)
    assert record["masked"] == 1
    summary = summarize([result, run(image, face=Fake([BOX], flat=20.0)), run(image, face=Fake([BOX]))])
    assert summary.masked_images == 1 and summary.quarantined == 1
    assert summary.as_metrics()["anonymize/masked_images"] == 1.0


def test_a_silhouette_found_again_by_the_body_detector_is_no_residual_but_a_face_in_it_is() -> None:
    """`silhouette` keeps a person-shaped figure on purpose: the body detector finding it again is expected,
    not a leak; a face detector firing inside it still escalates; asked for text, silhouette inpaints."""
    from tasks.anonymize.engine import drop_kept_shapes, method_for

    body, face = [[10, 10, 40, 60]], [[15, 12, 30, 27]]
    residual = Detections(np.array(body + face + [[50, 50, 60, 60]], np.int64), np.ones(3, np.float32),
                          ("body", "face", "body"))  # fmt: skip
    left = drop_kept_shapes(residual, {"body": np.array(body, np.int64)})
    assert left.category == ("face", "body") and left.boxes[1].tolist() == [50, 50, 60, 60]
    assert method_for("text", method="inpaint", methods={"text": "silhouette"}) == "inpaint"
    assert method_for("body", method="silhouette", methods={}) == "silhouette"
    img = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    result = anonymize_image(img, detectors={"b": Fake(body, "body")}, method="silhouette")  # type: ignore[dict-item]
    assert result.image is not None and result.escalated == 0 and result.methods == ("silhouette",)

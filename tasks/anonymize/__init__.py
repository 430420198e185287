"""anonymize stage: find faces, plates and personal text; obfuscate them; verify; fail closed."""

from tasks.anonymize.detectors import DETECTORS, BodyDetector, FaceDetector, OcrTextDetector, build_detectors
from tasks.anonymize.engine import (
    AnonymizedImage,
    AnonymizeSummary,
    anonymize_image,
    image_rng,
    obfuscation_options,
    summarize,
)
from tasks.anonymize.obfuscate import OBFUSCATORS, obfuscate
from tasks.anonymize.pii import classify_text
from tasks.anonymize.replace import FacePool, build_pool, lfw_pool

__all__ = [
    "DETECTORS",
    "OBFUSCATORS",
    "AnonymizeSummary",
    "AnonymizedImage",
    "BodyDetector",
    "FacePool",
    "FaceDetector",
    "OcrTextDetector",
    "anonymize_image",
    "build_detectors",
    "build_pool",
    "classify_text",
    "image_rng",
    "lfw_pool",
    "obfuscate",
    "obfuscation_options",
    "summarize",
]

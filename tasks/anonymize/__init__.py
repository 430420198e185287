"""anonymize stage: find faces, plates and personal text; obfuscate them; verify; fail closed."""

from tasks.anonymize.detectors import DETECTORS, FaceDetector, OcrTextDetector, build_detectors
from tasks.anonymize.engine import AnonymizedImage, AnonymizeSummary, anonymize_image, summarize
from tasks.anonymize.obfuscate import OBFUSCATORS, obfuscate
from tasks.anonymize.pii import classify_text

__all__ = [
    "DETECTORS",
    "OBFUSCATORS",
    "AnonymizeSummary",
    "AnonymizedImage",
    "FaceDetector",
    "OcrTextDetector",
    "anonymize_image",
    "build_detectors",
    "classify_text",
    "obfuscate",
    "summarize",
]

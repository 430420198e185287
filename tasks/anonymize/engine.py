"""Anonymize one image: detect, obfuscate, verify; fail closed.

Verification re-runs every detector on the obfuscated image. Detectors only report sensitive content
(faces, plates, personal text), so anything they still report is a residual. A residual is escalated
once: its box and every earlier box it overlaps are masked (filled black), and the detectors run again.
If anything is still reported, the image is quarantined (`image is None`) with the reason. A properly
pixelated face (block 8 on ≥ 24 px faces) does not fire the face detector, so escalation is rare; it
exists because a pixelated or blurred line of text can still look like "text" to the OCR detector and
a coarse mosaic can, by chance, look like a face to the Haar cascade.

Skipped for speed: when the first pass finds nothing, the output equals the input, and the
(deterministic) detectors would find nothing again, so no verification pass runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tasks.anonymize.obfuscate import mask_regions, obfuscate
from tasks.errors import AnonymizationError, InvalidInputError
from tasks.types import Detections, Detector, Image, check_image

# What a detector or an obfuscator raises on purpose for a bad input or a failed backend.
# Anything else (TypeError, IndexError, ...) is a bug in our code and must not become a quarantine.
_EXPECTED = (AnonymizationError, InvalidInputError)


@dataclass(frozen=True)
class AnonymizedImage:
    """Outcome for one image.

    Attributes:
        image: (H, W, 3) uint8 anonymized copy, or None when quarantined (fail closed).
        detections: what the first pass found and redacted.
        residual: what the last verification pass still found (empty unless quarantined).
        quarantine_reason: why the image was quarantined, or None.
        escalated: boxes masked in the escalation retry (0 when the first obfuscation sufficed).
    """

    image: NDArray[np.uint8] | None
    detections: Detections
    residual: Detections
    quarantine_reason: str | None
    escalated: int = 0


def detect(image: Image, detectors: Mapping[str, Detector]) -> Detections:
    """Run every detector on `image` and concatenate what they found.

    Raises:
        AnonymizationError: a detector failed; the message names it.
    """
    parts = []
    for name, detector in detectors.items():
        try:
            parts.append(detector(image))
        except _EXPECTED as err:
            raise AnonymizationError(f"{name}: {err}") from err
    return Detections.concat(parts)


def describe(dets: Detections) -> str:
    """'2 face, 1 text' — counts per category, in a stable order."""
    return ", ".join(f"{n} {cat}" for cat, n in sorted(Counter(dets.category).items()))


def overlaps(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
    """(len(a), len(b)) bool: does box a_i intersect box b_j with a positive area."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (ix > 0) & (iy > 0)


def _quarantine(
    found: Detections, reason: str, residual: Detections | None = None, escalated: int = 0
) -> AnonymizedImage:
    return AnonymizedImage(
        None, found, residual if residual is not None else Detections.empty(), reason, escalated
    )


def _escalate(output: Image, found: Detections, residual: Detections) -> tuple[Image, int]:
    """Mask the residual boxes and every earlier box they overlap; return the output and how many boxes."""
    hit = overlaps(found.boxes, residual.boxes).any(axis=1)
    boxes = np.unique(np.concatenate([residual.boxes, found.boxes[hit]]), axis=0)
    return mask_regions(output, boxes), len(boxes)


def anonymize_image(
    image: Image,
    *,
    detectors: Mapping[str, Detector],
    method: str,
    block: int,
    blur_strength: float,
    verify: bool = True,
) -> AnonymizedImage:
    """Detect sensitive content, obfuscate it, verify that nothing survived; quarantine otherwise.

    Args:
        image: (H, W, 3) uint8 RGB.
        detectors: name → detector; each returns only what must be redacted.
        method: an `OBFUSCATORS` key (blur / pixelate / mask).
        block: pixelation cell side in pixels.
        blur_strength: blur sigma as a fraction of the box's short side.
        verify: re-run the detectors on the output (and escalate once to masking).
    Returns:
        An `AnonymizedImage`; `image` is None and `quarantine_reason` says why when it failed.
    """
    try:
        check_image(image)
        found = detect(image, detectors)
    except _EXPECTED as err:
        return _quarantine(Detections.empty(), f"detection failed: {err}")
    try:
        output = obfuscate(image, found.boxes, method=method, block=block, blur_strength=blur_strength)
    except _EXPECTED as err:
        return _quarantine(found, f"anonymization failed: {err}")
    if not verify or not len(found):
        return AnonymizedImage(output, found, Detections.empty(), None)
    return _verify(output, found, detectors)


def _verify(output: Image, found: Detections, detectors: Mapping[str, Detector]) -> AnonymizedImage:
    escalated = 0
    for attempt in range(2):
        try:
            residual = detect(output, detectors)
        except _EXPECTED as err:
            return _quarantine(found, f"verification failed: {err}", escalated=escalated)
        if not len(residual):
            return AnonymizedImage(output, found, residual, None, escalated)
        if attempt == 0:
            output, escalated = _escalate(output, found, residual)
    return _quarantine(found, f"sensitive content survived: {describe(residual)}", residual, escalated)


@dataclass(frozen=True)
class AnonymizeSummary:
    """Counts over many `AnonymizedImage`s.

    Attributes:
        images: inputs seen; processed + quarantined == images.
        processed: images written to the anonymized output.
        quarantined: images withheld.
        detections: redacted boxes per category (first pass).
        escalated_images: images that needed the masking retry.
        reasons: quarantine reason → count.
    """

    images: int
    processed: int
    quarantined: int
    detections: Mapping[str, int] = field(default_factory=dict)
    escalated_images: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics keyed "anonymize/<metric>"."""
        metrics = {
            "anonymize/images": float(self.images),
            "anonymize/processed": float(self.processed),
            "anonymize/quarantined": float(self.quarantined),
            "anonymize/quarantine_fraction": self.quarantined / self.images if self.images else 0.0,
            "anonymize/escalated_images": float(self.escalated_images),
        }
        metrics |= {f"anonymize/detections_{cat}": float(n) for cat, n in sorted(self.detections.items())}
        return metrics


def summarize(results: Iterable[AnonymizedImage]) -> AnonymizeSummary:
    """Aggregate per-image results into counts per category and quarantine reasons."""
    images = quarantined = escalated = 0
    detections: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for r in results:
        images += 1
        detections.update(r.detections.category)
        escalated += r.escalated > 0
        if r.quarantine_reason is not None:
            quarantined += 1
            reasons[r.quarantine_reason] += 1
    return AnonymizeSummary(
        images, images - quarantined, quarantined, dict(detections), escalated, dict(reasons)
    )

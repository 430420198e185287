"""Is the ground-truth text still readable? Per category, counts of ground-truth strings read on the raw and
on the anonymized images, and the rule that says a reading matches.

Personal text and plates (an anonymizer verdict) are read by an independent engine, Tesseract
(`tasks.check_quality.tesseract`); non-personal signage (a utility measure) by the anonymizer's own OCR
(rapidocr PP-OCRv4, `ocr_reader`): each string counts as read when an OCR line overlapping its box matches it.

Matching ignores case, spaces and punctuation and accepts a `difflib` similarity of at least
`min_similarity` (OCR drops or confuses a character now and then). Run on the raw image it measures
the reader (calibration); on the anonymized image, what survived: personal text and plates should
not be readable, non-personal signage should stay readable (utility).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tasks.boxes import as_boxes
from tasks.errors import InvalidInputError

TEXT_CATEGORIES: tuple[str, ...] = ("text_pii", "plate", "text_nonpii")


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two strings after lower-casing and dropping everything but [0-9a-z]."""
    na, nb = _norm(a), _norm(b)
    if not na and not nb:
        return 1.0
    return difflib.SequenceMatcher(None, na, nb).ratio()


def _overlaps(box: NDArray[np.int64], others: NDArray[np.float64]) -> NDArray[np.bool_]:
    ix = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    iy = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return np.asarray((ix > 0) & (iy > 0), bool)


def read_strings(
    gt_boxes: ArrayLike,
    gt_texts: Sequence[str],
    ocr_boxes: ArrayLike,
    ocr_texts: Sequence[str],
    *,
    min_similarity: float,
) -> NDArray[np.bool_]:
    """For each ground-truth string, whether an overlapping OCR line reads it.

    A GT line may be read as several OCR pieces: the overlapping pieces are also tried joined left to right.

    Args:
        gt_boxes: (N, 4) int [x0, y0, x1, y1] ground-truth text boxes; gt_texts: their N strings.
        ocr_boxes: (M, 4) [x0, y0, x1, y1] OCR line boxes (float allowed); ocr_texts: their M strings.
        min_similarity: `similarity` at which a string counts as read, in (0, 1].
    Returns:
        (N,) bool.
    Raises:
        InvalidInputError: lengths disagree or `min_similarity` outside (0, 1].
    """
    if not 0 < min_similarity <= 1:
        raise InvalidInputError(f"min_similarity: must be in (0, 1], got {min_similarity}")
    gt = as_boxes(gt_boxes, name="gt_boxes")
    ocr = np.asarray(ocr_boxes, np.float64).reshape(-1, 4)
    if len(gt) != len(gt_texts) or len(ocr) != len(ocr_texts):
        raise InvalidInputError(
            f"read_strings: {len(gt)} boxes / {len(gt_texts)} texts, {len(ocr)} / {len(ocr_texts)}"
        )
    out = np.zeros(len(gt), bool)
    for i, (box, text) in enumerate(zip(gt, gt_texts, strict=True)):
        hits = (np.flatnonzero(_overlaps(box, ocr)) if len(ocr) else np.zeros(0, np.int64)).tolist()
        joined = " ".join(ocr_texts[j] for j in sorted(hits, key=lambda j: float(ocr[j, 0])))
        candidates = [ocr_texts[j] for j in hits] + ([joined] if len(hits) > 1 else [])
        out[i] = any(similarity(c, text) >= min_similarity for c in candidates)
    return out


@dataclass(frozen=True)
class TextReadability:
    """Per text category: strings read on the raw images, on the anonymized ones, and in total.

    Attributes:
        counts: category → (read on raw, read on anonymized, total ground-truth strings).
        n_images: images read.
        unread: categories whose reader could not run: their shares are NaN (never a pass), totals kept.
    """

    counts: dict[str, tuple[int, int, int]]
    n_images: int
    unread: frozenset[str] = frozenset()

    def as_metrics(self) -> dict[str, float]:
        """`check_quality/<cat>_readable_{raw,anon}` shares, `<cat>_preserved` (anon / raw), `<cat>_text_total`."""
        m: dict[str, float] = {"check_quality/text_n_images": float(self.n_images)}
        for cat, (raw, anon, total) in sorted(self.counts.items()):
            ok = cat not in self.unread
            m[f"check_quality/{cat}_readable_raw"] = raw / total if total and ok else float("nan")
            m[f"check_quality/{cat}_readable_anon"] = anon / total if total and ok else float("nan")
            m[f"check_quality/{cat}_preserved"] = anon / raw if raw and ok else float("nan")
            m[f"check_quality/{cat}_text_total"] = float(total)
        return m


def readability(
    per_image: Sequence[dict[str, tuple[int, int, int]]], *, unread: Sequence[str] = ()
) -> TextReadability:
    """Sum per-image counts (category → (read raw, read anonymized, total)) into a `TextReadability`;
    `unread`: categories whose reader could not run (their counts of read strings mean nothing)."""
    counts = {c: (0, 0, 0) for c in TEXT_CATEGORIES}
    for image in per_image:
        for cat, (raw, anon, total) in image.items():
            a, b, c = counts.get(cat, (0, 0, 0))
            counts[cat] = (a + raw, b + anon, c + total)
    return TextReadability(counts, len(per_image), frozenset(unread))


def ocr_reader() -> Callable[[NDArray[np.uint8]], tuple[NDArray[np.float64], tuple[str, ...]]]:
    """The anonymizer's OCR (rapidocr PP-OCRv4, `OcrTextDetector.read`, no policy): image → (boxes, strings),
    with rapidocr's own recognition batches (6 lines): the measuring reader stays what it was when the
    anonymizer's `rec_batch` changed.

    The returned callable loads its ONNX models on first use and can be pickled to workers.
    """
    from tasks.anonymize.detectors import OcrTextDetector

    return _Reader(OcrTextDetector(rec_batch=6))


@dataclass(frozen=True)
class _Reader:
    detector: Any

    def __call__(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float64], tuple[str, ...]]:
        boxes, texts, _ = self.detector.read(image)
        return boxes, texts

"""What check_quality's text measure counts per image: ground-truth strings still read on the raw and the
anonymized image (personal text and plates by the independent auditor, non-personal signage by the anonymizer's
own OCR), detections of the people categories the anonymizer did not target, and the stage metrics from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tasks.check_quality.tesseract import (
    AUDITED_CATEGORIES,
    Items,
    LineReader,
    audit_text,
    auditor_calibration,
)
from tasks.check_quality.text import TEXT_CATEGORIES, read_strings, readability
from tasks.check_quality.utility import preserved
from tasks.types import Detector, Image

CHUNK = 16  # images per Tesseract run: its start-up is paid once per chunk
Ocr = Callable[[Image], tuple[NDArray[np.float64], tuple[str, ...]]]  # image → (boxes, strings), `ocr_reader`
Counts = tuple[int, int, int]  # (read on raw, read on anonymized, total)


def text_items(truth: Mapping[str, Sequence[Any]]) -> dict[str, list[tuple[Any, str]]]:
    """An image's ground-truth strings per text category (`TEXT_CATEGORIES`): (box, string) pairs, from
    its (box, identity, text) triples."""
    return {c: [(item[0], str(item[2])) for item in truth.get(c, [])] for c in TEXT_CATEGORIES}


def unaudited(items: Items) -> dict[str, Counts]:
    """The audited categories' counts when no auditor can run: nothing read, every string counted."""
    return {c: (0, 0, len(items.get(c, ()))) for c in AUDITED_CATEGORIES}


def nonpii_counts(
    raw: Image,
    anon: Image,
    items: Sequence[tuple[Any, str]],
    *,
    ocr: Callable[[], Ocr],
    min_similarity: float,
) -> Counts:
    """Non-personal strings read by the anonymizer's OCR on the raw and the anonymized image (a utility measure);
    `ocr` is built and run only for images that have such strings."""
    if not items:
        return 0, 0, 0
    boxes, texts = [b for b, _ in items], [t for _, t in items]
    reader = ocr()
    hits = [read_strings(boxes, texts, *reader(img), min_similarity=min_similarity) for img in (raw, anon)]
    return int(hits[0].sum()), int(hits[1].sum()), len(items)


@dataclass
class TextTally:
    """Counts over the images read so far: per image its text counts, per untargeted category (kept, raw)."""

    per_image: list[dict[str, Counts]] = field(default_factory=list)
    kept: dict[str, tuple[int, int]] = field(default_factory=dict)


def tally_chunk(
    chunk: Sequence[tuple[Image, Image, dict[str, list[tuple[Any, str]]]]],
    tally: TextTally,
    *,
    auditor: LineReader | None,
    ocr: Callable[[], Ocr],
    untargeted: Mapping[str, Detector],
    min_similarity: float,
    match_iou: float,
) -> None:
    """Add one chunk of (raw, anonymized, `text_items`) images to `tally`.

    Args:
        chunk: at most `CHUNK` images; all go to the auditor together.
        tally: updated in place.
        auditor: the personal-text reader (`tesseract_reader()`), None when it cannot run (`unaudited`).
        ocr: builds the non-personal text reader (`ocr_reader`).
        untargeted: category → the detector of a people category the anonymizer did not target.
        min_similarity: `check_quality.text_min_similarity`.
        match_iou: IoU at which an anonymized detection is the raw one.
    """
    audited = (
        audit_text(chunk, reader=auditor, min_similarity=min_similarity)
        if auditor is not None
        else [unaudited(items) for _, _, items in chunk]
    )
    for (raw, anon, items), counts in zip(chunk, audited, strict=True):
        nonpii = nonpii_counts(raw, anon, items["text_nonpii"], ocr=ocr, min_similarity=min_similarity)
        tally.per_image.append(counts | {"text_nonpii": nonpii})
        for c, detect in untargeted.items():
            k, t = preserved(detect(raw), detect(anon), match_iou=match_iou)
            before = tally.kept.get(c, (0, 0))
            tally.kept[c] = (before[0] + k, before[1] + t)


def text_metrics(tally: TextTally, *, untargeted: Iterable[str], audited: bool) -> dict[str, float]:
    """Readability per category and the auditor's calibration (NaN where the auditor could not run), and per
    untargeted category `<c>_preserved` (share of raw detections still found; NaN with none) and `<c>_raw_detections`."""
    text = readability(tally.per_image, unread=() if audited else AUDITED_CATEGORIES)
    m = text.as_metrics() | auditor_calibration(text).as_metrics()
    for c in untargeted:
        k, t = tally.kept.get(c, (0, 0))
        m |= {
            f"check_quality/{c}_preserved": k / t if t else float("nan"),
            f"check_quality/{c}_raw_detections": float(t),
        }
    return m


def text_skipped() -> dict[str, Any]:
    """The text measure's result when `check_quality.text_images` is 0: no metrics, the reason."""
    return {
        "metrics": {},
        "auditors": {},
        "unavailable": {"text_readability": "check_quality.text_images is 0"},
    }

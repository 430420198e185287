"""The anonymize stage scored against ground truth (the builtin dataset, or COCO boxes a user brings).

Per image: which ground-truth boxes the redactions cover (`redaction_recall`'s rule: >= 70 % of the
box's area), and which pixels changed outside the sensitive boxes (faces, plates, personal text).
Only images that were written count (a quarantined image leaks nothing and is counted apart).

"Outside" is measured two ways, because a redaction is padded on purpose (a face's hair and chin,
a plate's board reach beyond the tight box): outside the tight ground-truth boxes, and outside them
grown by `margin` × their size per side. The first is the strict number; the second is collateral
damage — false-positive redactions, colour or re-encoding changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tasks.boxes import box_mask
from tasks.coverage import redaction_recall, residual_faces
from tasks.errors import InvalidInputError
from tasks.types import Detector, Image, check_image

SENSITIVE = ("face", "plate", "text_pii")
SCORED = ("face", "plate", "text_pii", "text_nonpii")
GtBox = tuple[str, tuple[int, int, int, int], str | None]  # category, [x0, y0, x1, y1], text


@dataclass(frozen=True)
class ImageEval:
    """One image scored against its ground truth.

    Attributes:
        written: the image was written (not quarantined).
        covered: category → (covered, total) ground-truth boxes (zeros when not written).
        changed_outside: pixels changed outside the tight sensitive boxes, and how many pixels that is.
        changed_outside_margin: the same outside the boxes grown by the margin.
        residual_faces: (ground-truth faces an independent auditor still finds, faces); (0, 0) without one.
        missed: (category, box, text) of every sensitive box not covered, for diagnosis.
    """

    written: bool
    covered: dict[str, tuple[int, int]]
    changed_outside: tuple[int, int]
    changed_outside_margin: tuple[int, int]
    residual_faces: tuple[int, int] = (0, 0)
    missed: tuple[GtBox, ...] = ()

    def as_record(self) -> dict[str, Any]:
        """JSON-ready counts (no boxes, no text): what the stage keeps per image."""
        return {
            "covered": {c: list(v) for c, v in self.covered.items()},
            "outside": list(self.changed_outside),
            "outside_margin": list(self.changed_outside_margin),
            "residual_faces": list(self.residual_faces),
        }

    @staticmethod
    def from_record(rec: Mapping[str, Any]) -> ImageEval:
        """Inverse of `as_record` (written=True: only written images carry a record)."""
        return ImageEval(
            True,
            {c: (int(v[0]), int(v[1])) for c, v in rec["covered"].items()},
            (int(rec["outside"][0]), int(rec["outside"][1])),
            (int(rec["outside_margin"][0]), int(rec["outside_margin"][1])),
            (int(rec["residual_faces"][0]), int(rec["residual_faces"][1])),
        )


def _grow(boxes: NDArray[np.int64], margin: float) -> NDArray[np.int64]:
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    return np.asarray(np.round(boxes + np.array([-1, -1, 1, 1]) * margin * size), np.int64)


def _changed(raw: Image, anon: Image, sensitive: NDArray[np.bool_]) -> tuple[int, int]:
    moved = (raw != anon).any(axis=2) & ~sensitive
    return int(moved.sum()), int((~sensitive).sum())


def evaluate_image(
    raw: Image,
    anon: Image | None,
    gt: Sequence[GtBox],
    redacted: NDArray[np.int64],
    *,
    margin: float = 0.2,
    min_coverage: float = 0.7,
    auditor: Detector | None = None,
    match_iou: float = 0.3,
) -> ImageEval:
    """Score one image: coverage of each ground-truth category, pixels changed outside the sensitive boxes.

    Args:
        raw: (H, W, 3) uint8 RGB input.
        anon: the anonymized image (same shape), or None when it was quarantined.
        gt: (category, box, text) ground truth of `raw`.
        redacted: (M, 4) int boxes the anonymizer redacted.
        margin: the sensitive boxes grow by this fraction of their size per side for the margin count.
        min_coverage: fraction of a box's area the redactions must cover.
        auditor: an independent face detector (not one the anonymizer uses, e.g. dlib HOG) run on the
            written image; a detection at `match_iou` with a ground-truth face is a residual face.
        match_iou: IoU at which an auditor detection matches a ground-truth face.
    Raises:
        InvalidInputError: images of different shapes, malformed boxes.
    """
    shape = check_image(raw, name="raw").shape[:2]
    by_cat: dict[str, list[tuple[int, int, int, int]]] = {c: [] for c in SCORED}
    for cat, box, _ in gt:
        if cat in by_cat:
            by_cat[cat].append(tuple(box))  # type: ignore[arg-type]
    if anon is None:
        return ImageEval(False, {c: (0, 0) for c in SCORED}, (0, 0), (0, 0))
    if check_image(anon, name="anon").shape != raw.shape:
        raise InvalidInputError(f"anon: shape {anon.shape} differs from raw {raw.shape}")
    boxes = {c: np.asarray(v, np.int64).reshape(-1, 4) for c, v in by_cat.items()}
    covered = redaction_recall(
        boxes, redacted, min_coverage=min_coverage, categories=SCORED, image_shape=shape
    )
    sensitive = np.concatenate([boxes[c] for c in SENSITIVE])
    missed = []
    union = box_mask(np.asarray(redacted, np.int64).reshape(-1, 4), shape)
    for cat, box, text in gt:
        if cat in SENSITIVE:
            x0, y0, x1, y1 = box
            cell = union[max(y0, 0) : y1, max(x0, 0) : x1]
            if cell.size and cell.mean() < min_coverage:
                missed.append((cat, box, text))
    residual = (0, 0)
    if auditor is not None:
        residual = (residual_faces(auditor(anon), boxes["face"], match_iou=match_iou)[0], len(boxes["face"]))
    return ImageEval(
        True,
        covered,
        _changed(raw, anon, box_mask(sensitive, shape)),
        _changed(raw, anon, box_mask(_grow(sensitive, margin), shape)),
        residual,
        tuple(missed),
    )


@dataclass
class GtTally:
    """Sums of `ImageEval`s; `metrics()` gives the stage's ground-truth metrics."""

    images: int = 0
    written: int = 0
    covered: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in SCORED})
    outside: list[int] = field(default_factory=lambda: [0, 0])
    outside_margin: list[int] = field(default_factory=lambda: [0, 0])
    residual: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, ev: ImageEval) -> None:
        self.images += 1
        self.written += ev.written
        for cat, (hit, total) in ev.covered.items():
            self.covered[cat][0] += hit
            self.covered[cat][1] += total
        pairs = (
            (self.outside, ev.changed_outside),
            (self.outside_margin, ev.changed_outside_margin),
            (self.residual, ev.residual_faces),
        )
        for acc, (part, total) in pairs:
            acc[0] += part
            acc[1] += total

    def metrics(self) -> dict[str, float]:
        """Recall per sensitive category, non-PII text kept (not redacted), changed fractions, residual
        faces (when an auditor ran), keyed "gt_<metric>"; NaN: no boxes of that kind."""

        def ratio(a: int, b: int) -> float:
            return a / b if b else float("nan")

        m = {f"gt_{c}_recall": ratio(*self.covered[c]) for c in SENSITIVE}
        m |= {f"gt_{c}_boxes": float(self.covered[c][1]) for c in SCORED}
        hit, total = self.covered["text_nonpii"]
        m["gt_text_nonpii_kept"] = ratio(total - hit, total)
        m["gt_changed_outside_fraction"] = ratio(*self.outside)
        m["gt_changed_outside_margin_fraction"] = ratio(*self.outside_margin)
        m["gt_images_scored"] = float(self.written)
        if self.residual[1]:
            m["gt_residual_face_rate"] = ratio(*self.residual)
        return m

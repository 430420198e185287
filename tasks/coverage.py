"""Boxes scored against ground truth (anonymize and check_quality): redaction coverage, auditor matches.

Redaction recall: which ground-truth boxes the anonymizer's redacted boxes cover.

Coverage is geometric: the fraction of a ground-truth box's area inside the union of the redacted
boxes (a boolean mask, so overlapping redactions count once). It is computed on the raw image's
frame, from the boxes alone; whether the pixels in a redacted box really changed is the job of
`image_metrics` and of the residual detector.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tasks.boxes import as_boxes, box_mask, iou_matrix
from tasks.errors import InvalidInputError
from tasks.types import CATEGORY_ID, Detections

# Categories whose redaction recall is reported. text_nonpii is here for completeness (under text
# policy `all` it should be redacted too); summaries report it as over-redaction, not as recall.
RECALL_CATEGORIES: tuple[str, ...] = ("face", "plate", "text_pii", "text_nonpii")
# Non-sensitive categories: covering them is a utility loss, not a privacy win.
OVERREDACTION_CATEGORIES: tuple[str, ...] = ("text_nonpii", "placard")


def _covered(gt: NDArray[np.int64], union: NDArray[np.bool_], min_coverage: float) -> int:
    """Count boxes of `gt` whose clipped area is covered by `union` at `min_coverage` or more."""
    height, width = union.shape
    count = 0
    for x0, y0, x1, y1 in gt:
        cell = union[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        # An empty (or fully off-image) box has nothing left to hide: it counts as covered.
        count += int(cell.size == 0 or cell.mean() >= min_coverage)
    return count


def _coverage_counts(
    gt_boxes_by_category: Mapping[str, ArrayLike],
    redacted_boxes: ArrayLike,
    *,
    categories: tuple[str, ...],
    image_shape: tuple[int, int] | None,
    min_coverage: float,
) -> dict[str, tuple[int, int]]:
    if not 0 < min_coverage <= 1:
        raise InvalidInputError(f"min_coverage: must be in (0, 1], got {min_coverage}")
    unknown = sorted((set(gt_boxes_by_category) | set(categories)) - set(CATEGORY_ID))
    if unknown:
        raise InvalidInputError(
            f"gt_boxes_by_category: unknown categories {unknown}, expected {sorted(CATEGORY_ID)}"
        )
    gt = {
        c: as_boxes(gt_boxes_by_category.get(c, ()), name=f"gt_boxes_by_category[{c!r}]") for c in categories
    }
    redacted = as_boxes(redacted_boxes, name="redacted_boxes")
    if image_shape is None:  # the frame only needs to hold every box
        stacked = np.concatenate([redacted, *gt.values()])
        image_shape = (int(stacked[:, 3].max(initial=0)), int(stacked[:, 2].max(initial=0)))
    union = box_mask(redacted, image_shape)
    return {c: (_covered(b, union, min_coverage), len(b)) for c, b in gt.items()}


def redaction_recall(
    gt_boxes_by_category: Mapping[str, ArrayLike],
    redacted_boxes: ArrayLike,
    *,
    min_coverage: float = 0.7,
    categories: tuple[str, ...] = RECALL_CATEGORIES,
    image_shape: tuple[int, int] | None = None,
) -> dict[str, tuple[int, int]]:
    """Count, per category, the ground-truth boxes covered by the redacted boxes.

    A box is covered when at least `min_coverage` of its area (clipped to the image) lies inside
    the union of `redacted_boxes`. Two redactions that each cover half of a face together cover it.

    Args:
        gt_boxes_by_category: category name → (N, 4) int [x0, y0, x1, y1] ground-truth boxes, x1/y1
            exclusive; a missing category has no boxes.
        redacted_boxes: (M, 4) int [x0, y0, x1, y1], every box the anonymizer redacted, any category.
        min_coverage: fraction of a box's area that must be redacted, in (0, 1].
        categories: the categories to report.
        image_shape: (H, W) to clip boxes to; default: just large enough for every box (no clipping).
    Returns:
        category → (covered, total), for every name in `categories`.
    Raises:
        InvalidInputError: unknown category, malformed boxes, `min_coverage` outside (0, 1].
    """
    return _coverage_counts(
        gt_boxes_by_category,
        redacted_boxes,
        categories=categories,
        image_shape=image_shape,
        min_coverage=min_coverage,
    )


def overredaction(
    gt_boxes_by_category: Mapping[str, ArrayLike],
    redacted_boxes: ArrayLike,
    *,
    min_coverage: float = 0.7,
    image_shape: tuple[int, int] | None = None,
) -> dict[str, tuple[int, int]]:
    """Count the non-sensitive boxes (non-PII text, the task's placard) that were redacted anyway.

    Same coverage rule and arguments as `redaction_recall`; a high count is lost utility (the
    placard holds the label the model trains on), not extra privacy.

    Returns:
        category → (covered, total) for each of `OVERREDACTION_CATEGORIES`.
    Raises:
        InvalidInputError: unknown category, malformed boxes, `min_coverage` outside (0, 1].
    """
    return _coverage_counts(
        gt_boxes_by_category,
        redacted_boxes,
        categories=OVERREDACTION_CATEGORIES,
        image_shape=image_shape,
        min_coverage=min_coverage,
    )


def residual_faces(detections: Detections, gt_face_boxes: ArrayLike, *, match_iou: float) -> tuple[int, int]:
    """Count the ground-truth faces an auditor's detections land on, and the face detections.

    Args:
        detections: the auditor's detections on one image; only category "face" counts.
        gt_face_boxes: (N, 4) int [x0, y0, x1, y1] ground-truth face boxes, x1/y1 exclusive.
        match_iou: a ground-truth face is matched when some detection overlaps it at this IoU or more.
    Returns:
        (n_matched_gt, n_detections): ground-truth faces matched (each at most once), face detections.
    Raises:
        InvalidInputError: malformed boxes or `match_iou` outside (0, 1].
    """
    if not 0 < match_iou <= 1:
        raise InvalidInputError(f"match_iou: must be in (0, 1], got {match_iou}")
    gt = as_boxes(gt_face_boxes, name="gt_face_boxes")
    faces = detections.boxes[np.array([c == "face" for c in detections.category], bool)]
    if len(gt) == 0 or len(faces) == 0:
        return 0, len(faces)
    return int((iou_matrix(gt, faces).max(axis=1) >= match_iou).sum()), len(faces)

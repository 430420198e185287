"""check_quality's per-image check and what the stage sums from it: one record per anonymized image (quality,
redaction coverage, residual faces, appearance) with the facts read back from the written file's bytes for the
Great Expectations suite, then the stage summary and the suite's inputs and verdict.

Records hold numbers and file facts only: no pixels leave `check_image`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tasks.check_quality.appearance import pad_sensitive
from tasks.check_quality.manifest import FileFacts, file_facts
from tasks.check_quality.summary import ImageRecord, QualitySummary, image_record, summarize
from tasks.codec import decode_image
from tasks.types import Detector, Image

GX = "gx"  # a record's key for the file facts the GX suite reads (not part of `ImageRecord`)


def check_image(
    row: Mapping[str, Any],
    raw: Image,
    written: bytes,
    truth: Mapping[str, ArrayLike],
    *,
    detector: Detector,
    match_iou: float,
    pads: Mapping[str, float] | None,
) -> dict[str, Any]:
    """One image's record (`ImageRecord.as_dict()`) plus, under `GX`, its path and the `FileFacts` of `written`.

    Args:
        row: the anonymize record: `id`, `path`, `boxes` (the redacted boxes), `calibrate` (run the auditor on
            the raw image too).
        raw: (H, W, 3) uint8 RGB, the raw image.
        written: the bytes of the file anonymize wrote (decoded here, and hashed and read for metadata).
        truth: category → (N, 4) ground-truth boxes of the raw image.
        detector: the residual-face auditor.
        match_iou: IoU at which an auditor detection matches a ground-truth face.
        pads: the appearance measures' sensitive boxes are `truth` padded by these (category → share per
            side); None: the redacted boxes.
    """
    anon = decode_image(written, name=row["path"])
    rec = image_record(
        raw,
        anon,
        image_id=row["id"],
        gt_boxes_by_category=truth,
        redacted_boxes=np.asarray(row["boxes"], np.int64).reshape(-1, 4),
        detector=detector,
        match_iou=match_iou,
        calibrate=row["calibrate"],
        appearance_boxes=None if pads is None else pad_sensitive(truth, pads=pads, shape=anon.shape[:2]),
    )
    facts = asdict(file_facts(written, name=row["path"]))
    return rec.as_dict() | {GX: {"path": row["path"]} | facts}


def summarize_records(records: Sequence[Mapping[str, Any]]) -> QualitySummary:
    """The stage summary of `check_image` records."""
    return summarize([ImageRecord.from_dict({k: v for k, v in r.items() if k != GX}) for r in records])


def written_facts(records: Sequence[Mapping[str, Any]]) -> dict[str, FileFacts]:
    """Relative path → the facts `check_image` read back from that file."""
    return {r[GX]["path"]: FileFacts(**{k: v for k, v in r[GX].items() if k != "path"}) for r in records}


def residual_faces(records: Sequence[Mapping[str, Any]], *, use_gt: bool) -> dict[str, int]:
    """Image id → faces the auditor still finds: those matched to ground truth, or without face ground truth
    every face it detects."""
    key = "residual_faces_matched" if use_gt else "residual_face_detections"
    return {r["image_id"]: int(r[key]) for r in records}


def gx_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """`check_quality/gx_success` (0/1) and `check_quality/gx_failed_expectations` of the suite's result."""
    return {
        "check_quality/gx_success": float(result["success"]),
        "check_quality/gx_failed_expectations": result["n_failed"],
    }

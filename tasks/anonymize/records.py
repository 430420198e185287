"""Per-image anonymization records (what the stage writes to records.jsonl) and their summary.

A record carries boxes, categories and scores only — never recognised text, which may itself be
personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tasks.anonymize.engine import AnonymizedImage, AnonymizeSummary, summarize_outcomes
from tasks.anonymize.gt_eval import GtTally, ImageEval


def image_record(row: Mapping[str, Any], result: AnonymizedImage) -> dict[str, Any]:
    """JSON-ready record of one image's outcome.

    Args:
        row: its manifest row (id, path, split, label).
        result: what `anonymize_image` returned.
    """
    det = result.detections
    return {
        "id": row["id"],
        "path": row["path"],
        "split": row["split"],
        "label": int(row["label"]),
        "status": "quarantined" if result.image is None else "anonymized",
        "reason": result.quarantine_reason,
        "escalated": int(result.escalated),
        "masked": int(result.masked),
        "boxes": det.boxes.tolist(),
        "categories": list(det.category),
        "scores": [round(float(s), 4) for s in det.scores],
        "residual_categories": list(result.residual.category),
        "methods": list(result.methods),
        "dp_epsilon": result.dp_epsilon,
    }


def unreadable_record(row: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """Record of an image that could not even be read: quarantined, nothing detected."""
    return {
        "id": row["id"],
        "path": row["path"],
        "split": row["split"],
        "label": int(row["label"]),
        "status": "quarantined",
        "reason": f"unreadable: {reason}",
        "escalated": 0,
        "masked": 0,
        "boxes": [],
        "categories": [],
        "scores": [],
        "residual_categories": [],
        "methods": [],
        "dp_epsilon": None,
    }


def summarize_records(records: Iterable[Mapping[str, Any]]) -> AnonymizeSummary:
    """The same summary as `engine.summarize`, from records (e.g. gathered from many shards)."""
    return summarize_outcomes(
        (
            r["categories"],
            r["escalated"],
            str(r["reason"]) if r["status"] == "quarantined" else None,
            r.get("dp_epsilon"),
            int(r.get("masked", 0)),
        )
        for r in records
    )


def gt_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Ground-truth metrics keyed "anonymize/gt_<metric>" over the records that carry a "gt" score
    (written images of data with ground truth); {} when none do."""
    tally = GtTally()
    for r in records:
        if "gt" in r:
            tally.add(ImageEval.from_record(r["gt"]))
    return {f"anonymize/{k}": v for k, v in tally.metrics().items()} if tally.images else {}

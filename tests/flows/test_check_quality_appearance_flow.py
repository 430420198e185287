"""The appearance measures reach check_quality's outputs: per-image records → stage metrics, the recall of
categories that were not targeted, and the report's method table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flows.check_quality_tasks as cqt
from flows import io
from tasks.boxes import box_mask
from tasks.check_quality.appearance import pad_sensitive
from tasks.check_quality.compare import sensitive_pads
from tasks.check_quality.plan import untargeted_people
from tasks.check_quality.summary import ImageRecord, summarize
from tasks.check_quality.tesseract import TesseractStatus
from tasks.params import Params, parse_params
from tasks.report.html import render_html
from tests.conftest import FakeDetector
from tests.tasks.test_report import build_report, report_metrics


def _write_pair(root: Path, params: Params) -> np.ndarray:
    """A light 64×96 raw image and its anonymized copy: a black 16×16 box at (8, 8), 4 px changed beyond it."""
    raw = np.full((64, 96, 3), 210, np.uint8)
    raw[::4] = 190  # some texture, so the raw ring has a gradient
    anon = raw.copy()
    anon[8:24, 8:24] = 0
    anon[40:44, 60:64] = 0  # outside every box: collateral damage
    io.write_png(root / params.paths.raw / "images/a.png", raw)
    io.write_png(root / params.paths.anonymized / "images/a.png", anon)
    return raw


def test_check_shard_records_appearance_and_the_summary_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: Params
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    _write_pair(tmp_path, params)
    rows = [{"id": "a", "path": "images/a.png", "boxes": [[8, 8, 24, 24]], "calibrate": False}]
    monkeypatch.setattr(cqt, "_auditor", lambda p: FakeDetector([]))
    kw = {"raw": str(tmp_path / params.paths.raw), "anon": str(tmp_path / params.paths.anonymized),
          "p": params.check_quality}
    gt = {"a": {"face": np.array([[10, 10, 22, 22]])}}  # tight: padded by face.pad it covers the black box
    by_gt = cqt.check_shard.fn(rows, gt, **kw, pads=sensitive_pads(params.anonymize))
    by_redaction = cqt.check_shard.fn(rows, gt, **kw)
    # inside: the ground truth padded by face.pad (0.2 × 12 px per side, rounded outwards: 18 × 18), or the redaction
    padded = pad_sensitive(gt["a"], pads=sensitive_pads(params.anonymize), shape=(64, 96))
    for records, inside in ((by_gt, int(box_mask(padded, (64, 96)).sum())), (by_redaction, 16 * 16)):
        m = summarize([ImageRecord.from_dict({k: v for k, v in r.items() if k != "gx"}) for r in records]).as_metrics()
        assert m["check_quality/appearance_changed_share"] == pytest.approx((256 + 16) / (64 * 96))
        assert m["check_quality/appearance_changed_outside"] == pytest.approx(16 / (64 * 96 - inside))
        assert m["check_quality/appearance_black_regions"] == 2.0 and m["check_quality/appearance_regions_per_image"] == 2
        assert m["check_quality/appearance_border_edge_energy"] > 5


def test_faces_not_targeted_are_counted_as_preserved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw_params: dict
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    raw_params["anonymize"]["targets"] = ["plate", "text"]
    params = parse_params(raw_params)
    _write_pair(tmp_path, params)
    monkeypatch.setattr(cqt, "tesseract_status", lambda: TesseractStatus(False, "tesseract", "not on PATH"))
    # a face on the untouched part is found on both images, the one under the black box on the raw image only
    found = {"raw": [[40, 30, 60, 50], [8, 8, 24, 24]], "anon": [[40, 30, 60, 50]]}
    auditor = lambda image: FakeDetector(found["anon" if (image[8:24, 8:24] == 0).all() else "raw"])(image)  # noqa: E731
    monkeypatch.setattr(cqt, "_auditor", lambda p: auditor)
    monkeypatch.setattr(cqt, "_body", lambda p: FakeDetector([[0, 0, 30, 60]], category="body"))
    m = cqt.text_task.fn([{"id": "a", "path": "images/a.png"}], {}, params=params)["metrics"]
    assert m["check_quality/face_preserved"] == 0.5 and m["check_quality/face_raw_detections"] == 2.0
    assert m["check_quality/body_preserved"] == 1.0  # bodies are not targeted either
    raw_params["anonymize"]["targets"] = ["face", "body"]
    targeted = parse_params(raw_params)
    assert untargeted_people(targeted.check_quality, targeted.anonymize) == ()


def test_the_report_method_table_shows_the_appearance_columns() -> None:
    rows = [{"method": "mask", "ssim_whole": 0.8, "changed_outside": 0.0123, "border_edge_energy": 7.25,
             "nested_regions": 0.0, "flat_regions": 12.0, "body_preserved": 0.875}]
    c = build_report(report_metrics(), methods=rows)
    assert c["method_comparison"][0]["border_edge_energy"] == 7.25
    html = render_html(c, title="T", figures={}, reproduce="make pipeline")
    table = html[html.index('id="method-comparison"'):]
    table = table[: table.index("</table>")]
    assert "edge energy on borders" in table and "people still detected" in table
    for value in ("0.0123", "7.25", "12", "0.875"):
        assert value in table

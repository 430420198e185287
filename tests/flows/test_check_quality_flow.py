"""check_quality flow helpers without a Prefect server: ground truth with identities, the GX suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.expectations import validate_anonymized_manifest
from tasks.check_quality.samples import even_sample
from tasks.groundtruth import gt_boxes, gt_details

COCO = {
    "categories": [{"id": 1, "name": "face"}, {"id": 4, "name": "text_pii"}],
    "images": [{"id": 0, "file_name": "images/img_0.png", "privtrail_id": "img_0"}],
    "annotations": [
        {
            "image_id": 0,
            "category_id": 1,
            "bbox": [10, 20, 5, 6],
            "attributes": {"identity": 42, "text": None},
        },
        {
            "image_id": 0,
            "category_id": 4,
            "bbox": [0, 0, 30, 10],
            "attributes": {"identity": None, "text": "Jane Roe"},
        },
    ],
}


def test_gt_details_carry_identity_and_text() -> None:
    d = gt_details(COCO)
    assert d["img_0"]["face"] == [([10, 20, 15, 26], 42, None)]
    assert d["img_0"]["text_pii"] == [([0, 0, 30, 10], None, "Jane Roe")]
    assert gt_boxes(COCO)["img_0"]["face"].tolist() == [[10, 20, 15, 26]]


def test_even_sample_is_deterministic_and_spread() -> None:
    rows = [{"i": i} for i in range(10)]
    assert [r["i"] for r in even_sample(rows, 3)] == [0, 4, 9] or [r["i"] for r in even_sample(rows, 3)] == [0, 5, 9]
    assert even_sample(rows, 20) == rows


def _frame(**changes: list) -> pd.DataFrame:
    base = {
        "id": ["a", "b"],
        "path": ["images/a.png", "images/b.png"],
        "sha256": ["1" * 64, "2" * 64],
        "width": [256, 256],
        "height": [256, 256],
        "file_width": [256, 256],
        "file_height": [256, 256],
        "raw_width": [256, 256],
        "raw_height": [256, 256],
        "n_residual": [0, 0],
        "n_metadata_chunks": [0, 0],
    }
    return pd.DataFrame(base | changes)


@pytest.mark.parametrize(
    ("changes", "n_quarantined", "ok"),
    [
        ({}, 1, True),
        ({}, 0, False),  # counts do not add up: 3 raw, 0 quarantined, 2 rows
        ({"n_metadata_chunks": [0, 2]}, 1, False),
        ({"n_residual": [1, 0]}, 1, False),
        ({"file_width": [256, 128]}, 1, False),
        ({"id": ["a", "a"]}, 1, False),
    ],
)
def test_anonymized_manifest_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict, n_quarantined: int, ok: bool
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    out = validate_anonymized_manifest(
        _frame(**changes), out_dir="reports/gx/check_quality", n_raw=3, n_quarantined=n_quarantined
    )
    assert out["success"] is ok
    assert (ok and out["n_failed"] == 0) or (not ok and out["n_failed"] >= 1)
    assert (tmp_path / "reports/gx/check_quality/results.json").exists()

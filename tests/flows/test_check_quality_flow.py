"""check_quality flow helpers without a Prefect server: ground truth with identities, the GX suite on files
read back from disk (hash, size, metadata, the set of files) rather than on the anonymizer's records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import flows.check_quality as cq
import flows.check_quality_tasks as cqt
from flows import io
from flows.expectations import validate_anonymized_manifest
from tasks.check_quality.manifest import FileFacts, audit_frame
from tasks.check_quality.samples import even_sample
from tasks.check_quality.tesseract import TesseractStatus, tesseract_status
from tasks.groundtruth import gt_boxes, gt_details
from tasks.ingest.builtin import text_alpha
from tasks.params import Params, parse_params

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


class _Workspace:
    """A tiny raw + anonymized folder on disk (a, b written; c quarantined) in a temp PRIVTRAIL_ROOT."""

    def __init__(self, root: Path, params: Params) -> None:
        self.root, self.params = root, params
        self.raw, self.anon = root / params.paths.raw, root / params.paths.anonymized
        rng = np.random.default_rng(0)
        raw_rows, anon_rows = [], []
        for i in ("a", "b", "c"):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            path = f"images/{i}.png"
            raw_rows.append({"id": i, "path": path, "width": 64, "height": 48, "sha256": io.write_png(self.raw / path, image)})
            if i != "c":
                masked = image.copy()
                masked[8:24, 8:24] = 0
                sha = io.write_png(self.anon / path, masked)
                anon_rows.append({"id": i, "path": path, "sha256": sha, "width": 64, "height": 48, "label": 0,
                                  "split": "train"})
        io.write_table(self.raw / "manifest.parquet", pd.DataFrame(raw_rows))
        io.write_table(self.anon / "manifest.parquet", pd.DataFrame(anon_rows))
        io.write_jsonl(self.anon / "quarantine.jsonl", [{"id": "c", "path": "images/c.png", "reason": "test"}])
        io.write_jsonl(self.anon / "records.jsonl", [])
        for name in ("labels.json", "source.json"):
            io.write_json(self.anon / name, {})
        self.rows = [{"id": r["id"], "path": r["path"], "boxes": [[8, 8, 24, 24]], "calibrate": False}
                     for r in anon_rows]

    def suite(self) -> dict:
        """check_shard's facts (read back from the files), then the GX suite, as the flow runs them."""
        records = cqt.check_shard.fn(self.rows, {}, raw=str(self.raw), anon=str(self.anon), p=self.params.check_quality)
        metrics = cq._gx(self.params, records, use_gt=False)
        out = io.read_json(self.root / self.params.paths.reports / "gx/check_quality/results.json")
        assert metrics["check_quality/gx_success"] == float(out["success"])
        return out


def _failed(out: dict) -> set[str]:
    """The failed expectations, as `type(column)` / `type(A=B)`."""
    names = set()
    for r in out["results"]:
        if not r["success"]:
            k = r["kwargs"]
            names.add(f"{r['expectation']}({k['column_A']}={k['column_B']})" if "column_A" in k
                      else f"{r['expectation']}({k.get('column', '')})")
    return names


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: Params) -> _Workspace:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    return _Workspace(tmp_path, params)


def test_gx_suite_passes_on_files_that_match_their_manifest(workspace: _Workspace) -> None:
    out = workspace.suite()
    assert out["success"] is True and out["n_failed"] == 0, _failed(out)
    assert (workspace.root / "reports/gx/check_quality/results.json").exists()


def test_gx_suite_fails_when_a_file_changes_after_the_manifest(workspace: _Workspace) -> None:
    io.write_png(workspace.anon / "images/a.png", np.zeros((48, 64, 3), np.uint8))  # same size, other pixels
    out = workspace.suite()
    assert out["success"] is False
    assert _failed(out) == {"expect_column_pair_values_to_be_equal(file_sha256=sha256)"}


def test_gx_suite_fails_on_an_extra_or_a_missing_file(workspace: _Workspace) -> None:
    io.write_png(workspace.anon / "images/extra.png", np.zeros((48, 64, 3), np.uint8))
    failed = _failed(workspace.suite())
    assert "expect_column_pair_values_to_be_equal(written=processed)" in failed
    assert "expect_column_values_to_be_in_set(in_raw)" in failed
    (workspace.anon / "images/extra.png").unlink()
    (workspace.anon / "images/b.png").unlink()  # the manifest lists it, nothing wrote it
    workspace.rows = workspace.rows[:1]
    failed = _failed(workspace.suite())
    assert "expect_column_pair_values_to_be_equal(written=processed)" in failed
    assert "expect_column_pair_values_to_be_equal(file_sha256=sha256)" in failed


def test_gx_suite_fails_when_a_file_carries_exif(workspace: _Workspace) -> None:
    file = workspace.anon / "images/a.png"
    exif = Image.Exif()
    exif[0x013B] = "Jane Roe"  # Artist
    with Image.open(file) as im:
        im.load()
        im.save(file, format="PNG", exif=exif)
    manifest = io.read_table(workspace.anon / "manifest.parquet")
    manifest.loc[manifest["id"] == "a", "sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()  # a re-hashed lie
    io.write_table(workspace.anon / "manifest.parquet", manifest)
    out = workspace.suite()
    assert _failed(out) == {"expect_column_values_to_be_between(n_metadata)"}


def test_gx_suite_fails_when_a_raw_image_is_both_written_and_quarantined(workspace: _Workspace) -> None:
    io.write_jsonl(workspace.anon / "quarantine.jsonl", [{"id": i, "path": f"images/{i}.png", "reason": "t"}
                                                          for i in ("a", "c")])
    assert "expect_column_pair_values_to_be_equal(outcomes=in_raw)" in _failed(workspace.suite())


def test_gx_suite_counts_the_check_s_own_residual_faces(tmp_path: Path) -> None:
    written = {f"images/{i}.png": FileFacts("0" * 63 + i, "PNG", 8, 8, 0) for i in "ab"}
    raw = pd.DataFrame({"id": ["a", "b"], "path": list(written), "width": [8, 8], "height": [8, 8]})
    anon = raw.assign(sha256=[f.sha256 for f in written.values()])
    frame = audit_frame(raw=raw, anonymized=anon, quarantined=[], written=written, residual={"a": 1, "b": 0})
    out = validate_anonymized_manifest(frame, out_dir=str(tmp_path / "gx"), n_raw=2, max_residual_share=0.02)
    assert _failed(out) == {"expect_column_values_to_be_between(n_auditor_residual)"}
    frame = audit_frame(raw=raw, anonymized=anon, quarantined=[], written=written, residual={"a": 0})
    assert _failed(validate_anonymized_manifest(frame, out_dir=str(tmp_path / "gx"), n_raw=2, max_residual_share=0.02)) == {
        "expect_column_pair_values_to_be_equal(audited=processed)"}


def _text_workspace(root: Path, raw_params: dict) -> tuple[Params, list[dict], dict]:
    """One raw image with a personal string (13 px, as the builtin set draws it) and its masked copy."""
    raw_params["check_quality"]["body_check"] = False
    params = parse_params(raw_params)
    image = np.full((128, 256, 3), 200, np.uint8)
    alpha = text_alpha("J. Smith 555-0142", cv2.FONT_HERSHEY_SIMPLEX, 13 / 22, 1)
    h, w = alpha.shape
    box = [20, 50, 20 + w, 50 + h]
    image[50 : 50 + h, 20 : 20 + w] = (200 * (1 - alpha[..., None]) + 20 * alpha[..., None]).astype(np.uint8)
    masked = image.copy()
    masked[box[1] : box[3], box[0] : box[2]] = 0
    io.write_png(root / params.paths.raw / "images/a.png", image)
    io.write_png(root / params.paths.anonymized / "images/a.png", masked)
    return params, [{"id": "a", "path": "images/a.png"}], {"a": {"text_pii": [(box, None, "J. Smith 555-0142")]}}


@pytest.mark.skipif(not tesseract_status().available, reason=f"tesseract: {tesseract_status().reason}")
def test_text_task_reads_personal_text_with_tesseract_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw_params: dict
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    params, rows, gt = _text_workspace(tmp_path, raw_params)
    out = cqt.text_task.fn(rows, gt, params=params)
    m = out["metrics"]
    assert m["check_quality/text_pii_readable_raw"] == 1.0 and m["check_quality/text_pii_readable_anon"] == 0.0
    assert m["check_quality/ocr_auditor_raw_recall"] == 1.0 and m["check_quality/ocr_auditor_raw_n"] == 1.0
    assert out["auditors"]["text_readability"].startswith("tesseract 5") and out["unavailable"] == {}
    assert out["auditors"]["text_nonpii_preserved"].startswith("rapidocr")


def test_text_task_without_tesseract_is_nan_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw_params: dict
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.setattr(cqt, "tesseract_status", lambda: TesseractStatus(False, "tesseract", "not on PATH"))
    params, rows, gt = _text_workspace(tmp_path, raw_params)
    out = cqt.text_task.fn(rows, gt, params=params)
    m = out["metrics"]
    for key in ("text_pii_readable_anon", "plate_readable_anon", "ocr_auditor_raw_recall"):
        assert np.isnan(m[f"check_quality/{key}"]), key  # never a pass: the gate is not assessed
    assert m["check_quality/ocr_auditor_raw_n"] == 1.0
    assert out["unavailable"] == {"text_readability": "not on PATH"}

"""The independent text auditor (Tesseract): it reads clear text and not redacted text, it shares nothing
with the anonymizer's OCR (rapidocr), it is calibrated on raw builtin images, and when it cannot run its
shares are NaN with the reason (never a pass)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import tasks.check_quality.tesseract as tess
from tasks.check_quality.tesseract import (
    AUDITED_CATEGORIES,
    CropView,
    audit_text,
    auditor_calibration,
    read_gt_strings,
    tesseract_reader,
    tesseract_status,
)
from tasks.check_quality.text import readability
from tasks.errors import InvalidInputError
from tasks.ingest.builtin import generate_builtin, text_alpha

REPO = Path(__file__).resolve().parents[2]
needs_tesseract = pytest.mark.skipif(
    not tesseract_status().available, reason=f"tesseract auditor unavailable: {tesseract_status().reason} (make setup)"
)
TEXT = "J. Smith 555-0142"


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """A 256 px textured background with `TEXT` drawn 13 px tall, as the builtin set draws personal text."""
    image = cv2.GaussianBlur(rng.integers(60, 200, (256, 256, 3), dtype=np.uint8), (5, 5), 0)
    alpha = text_alpha(TEXT, cv2.FONT_HERSHEY_SIMPLEX, 13 / 22, 1)
    h, w = alpha.shape
    x0, y0 = 20, 100
    patch = image[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    image[y0 : y0 + h, x0 : x0 + w] = (patch * (1 - alpha[..., None]) + 15 * alpha[..., None]).astype(np.uint8)
    return image, [x0, y0, x0 + w, y0 + h]


@needs_tesseract
def test_tesseract_reads_clear_text_and_not_masked_or_blurred_text(rng: np.random.Generator) -> None:
    raw, box = _scene(rng)
    reader = tesseract_reader()
    assert read_gt_strings(raw, [box], [TEXT], reader=reader, min_similarity=0.8).tolist() == [True]
    x0, y0, x1, y1 = box
    masked, blurred = raw.copy(), raw.copy()
    masked[y0:y1, x0:x1] = 0
    blurred[y0:y1, x0:x1] = cv2.GaussianBlur(raw, (31, 31), 12)[y0:y1, x0:x1]
    for anon in (masked, blurred):
        assert read_gt_strings(anon, [box], [TEXT], reader=reader, min_similarity=0.8).tolist() == [False]
    counts = audit_text([(raw, masked, {"text_pii": [(box, TEXT)], "text_nonpii": [(box, "ignored")]}),
                         (masked, raw, {"plate": [(box, TEXT)]})], reader=reader, min_similarity=0.8)
    assert counts == [{"text_pii": (1, 0, 1), "plate": (0, 0, 0)}, {"text_pii": (0, 0, 0), "plate": (0, 1, 1)}]


def test_the_auditor_never_imports_the_anonymizer_s_ocr() -> None:
    """Independence: neither the module's own imports nor what a real read loads touch rapidocr, onnxruntime
    or the anonymizer's detectors."""
    forbidden = ("rapidocr", "onnxruntime", "tasks.anonymize")
    tree = ast.parse((REPO / "tasks/check_quality/tesseract.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [m for m in names if m.startswith(forbidden)]
    code = (
        "import sys, numpy as np\n"
        "from tasks.check_quality import tesseract as t\n"
        "if t.tesseract_status().available:\n"
        "    t.read_gt_strings(np.full((64, 64, 3), 255, np.uint8), [[4, 4, 60, 20]], ['x'], "
        "reader=t.tesseract_reader(), min_similarity=0.8)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert "tasks.check_quality.tesseract" in loaded.stdout.split()
    assert not [m for m in loaded.stdout.split() if m.startswith(forbidden)]


def test_views_are_tried_in_order_only_on_strings_still_unread() -> None:
    image = np.full((64, 128, 3), 255, np.uint8)
    image[20:40, 10:100] = 0
    batches: list[list[tuple[int, ...]]] = []

    def reader(crops: list[np.ndarray]) -> list[str]:  # one batch per view: the first view reads "Jane Roe" only
        batches.append([c.shape for c in crops])
        return ["Jane Roe", "???"] if len(batches) == 1 else ["John Doe"] * len(crops)

    views = (CropView(text_height=32), CropView(text_height=48), CropView(text_height=64))
    got = read_gt_strings(image, [[10, 20, 100, 40], [10, 20, 100, 40]], ["jane roe", "john doe"], reader=reader,
                          min_similarity=0.8, views=views)
    assert got.tolist() == [True, True]
    assert [len(b) for b in batches] == [2, 1]  # the second view only on the string still unread, no third
    assert batches[1][0][0] > batches[0][0][0]  # a taller crop
    with pytest.raises(InvalidInputError, match="min_similarity"):
        read_gt_strings(image, [[10, 20, 100, 40]], ["x"], reader=reader, min_similarity=0.0)


def test_without_tesseract_the_shares_are_nan_and_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tess.shutil, "which", lambda _cmd: None)
    status = tesseract_status()
    assert not status.available and "apt-get install tesseract-ocr" in status.reason
    with pytest.raises(InvalidInputError, match="tesseract auditor"):
        tesseract_reader()
    text = readability([{"text_pii": (0, 0, 3), "plate": (0, 0, 2), "text_nonpii": (1, 1, 1)}],
                       unread=AUDITED_CATEGORIES)
    m = text.as_metrics() | auditor_calibration(text).as_metrics()
    for key in ("text_pii_readable_anon", "plate_readable_anon", "text_pii_readable_raw", "ocr_auditor_raw_recall"):
        assert np.isnan(m[f"check_quality/{key}"]), key
    # the weakest category's sample (both read nothing: the first, personal text's 3 strings)
    assert m["check_quality/ocr_auditor_raw_n"] == 3.0 and m["check_quality/text_nonpii_readable_anon"] == 1.0


@needs_tesseract
def test_calibration_on_raw_builtin_images() -> None:
    """On raw builtin images the auditor reads most personal strings and plates (seed 0: every one of the
    first 8 images'; 182 of 192 in the first 200), and nothing on the same images masked."""
    samples = list(generate_builtin(n_images=8, image_size=256, max_faces=3, face_size=(24, 72), seed=0))
    images = []
    for s in samples:
        items = {c: [(a.box, str(a.text)) for a in s.annotations if a.category == c] for c in AUDITED_CATEGORIES}
        masked = s.image.copy()
        for pairs in items.values():
            for (x0, y0, x1, y1), _ in pairs:
                masked[y0:y1, x0:x1] = 128
        images.append((s.image, masked, items))
    text = readability(audit_text(images, reader=tesseract_reader(), min_similarity=0.8))
    m = auditor_calibration(text).as_metrics()
    assert m["check_quality/ocr_auditor_raw_n"] >= 3  # the weakest category's strings
    assert m["check_quality/ocr_auditor_raw_recall"] >= 0.8
    assert sum(c[1] for c in text.counts.values()) == 0


def test_the_calibration_is_the_weakest_category_not_the_pool() -> None:
    """An auditor that reads every plate and no personal string must not pass its calibration on the plates'
    account (1,000 plates read, 200 personal strings unread: pooled 0.83, weakest 0.0)."""
    from tasks.check_quality.tesseract import auditor_calibration
    from tasks.check_quality.text import readability

    per_image = [{"plate": (1000, 0, 1000), "text_pii": (0, 0, 200), "text_nonpii": (0, 0, 0)}]
    cal = auditor_calibration(readability(per_image)).as_metrics()
    assert cal["check_quality/ocr_auditor_raw_recall"] == 0.0 and cal["check_quality/ocr_auditor_raw_n"] == 200


def test_a_few_well_read_strings_cannot_stand_in_for_a_category_read_less_surely() -> None:
    """Plates 9 of 10 (0.90, lower bound 0.55) beside personal text 850 of 1,000 (0.85, lower bound 0.83): the
    plates are the least proven category, so the calibration is theirs; by the raw share it would be the
    text's, and a 0.75 floor would pass on it while the plates' own reads prove little."""
    from tasks.check_quality.tesseract import auditor_calibration
    from tasks.check_quality.text import readability

    per_image = [{"plate": (9, 0, 10), "text_pii": (850, 0, 1000), "text_nonpii": (0, 0, 0)}]
    cal = auditor_calibration(readability(per_image)).as_metrics()
    assert (cal["check_quality/ocr_auditor_raw_recall"], cal["check_quality/ocr_auditor_raw_n"]) == (0.9, 10)

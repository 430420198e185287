"""`privtrail report --pdf`: the compliance page printed by headless Chromium; its first page is the summary.

The PDF is rendered back to PNG (pypdfium2) and read by OCR (rapidocr, the anonymizer's own reader): the
first page must show the verdict and the officer's questions, not the appendix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.pdf import find_chromium, html_to_pdf
from tasks.errors import PipelineError
from tasks.report.html import render_html
from tests.tasks.test_report import build_report, report_metrics


def _chromium() -> str:
    try:
        return find_chromium()
    except PipelineError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium = _chromium()
    folder = tmp_path_factory.mktemp("pdf")
    html = folder / "compliance.html"
    html.write_text(render_html(build_report(report_metrics(**{"check_quality/face_redaction_recall": 0.5})),
                                title="privtrail compliance report", figures={}, reproduce="make pipeline"))
    return html_to_pdf(html, folder / "compliance.pdf", chromium=chromium)


def test_pdf_first_page_is_the_summary_with_the_verdict(pdf: Path) -> None:
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 is a dev dependency: pip install -e .[dev]")
    doc = pdfium.PdfDocument(str(pdf))
    assert len(doc) >= 3  # summary, body, appendix
    first_text = doc[0].get_textpage().get_text_range()
    assert "What data was processed?" in first_text and "Appendix A" not in first_text
    assert "What failed, was waived, was loosened or was not assessed?" in first_text
    image = np.asarray(doc[0].render(scale=2).to_pil().convert("RGB"))
    from rapidocr_onnxruntime import RapidOCR

    lines, _ = RapidOCR()(image[: image.shape[0] // 4])  # the top quarter of page 1, as pixels
    words = [text.replace(" ", "") for _, text, _ in (lines or [])]  # OCR drops most spaces
    assert "FAIL" in words  # the verdict badge, read from the pixels
    n = len(build_report(report_metrics(**{"check_quality/face_redaction_recall": 0.5}))["gates"])
    assert any(f"of{n}gatespassed" in w for w in words) and any("whatdatawasprocessed" in w.lower() for w in words)
    assert "Appendix A: every measured value" in " ".join(p.get_textpage().get_text_range() for p in doc)


def test_missing_report_is_refused_by_name(tmp_path: Path) -> None:
    from tasks.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="no such report"):
        html_to_pdf(tmp_path / "nope.html", tmp_path / "x.pdf", chromium="/bin/true")


def test_a_browser_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>")
    with pytest.raises(PipelineError, match="without a PDF"):
        html_to_pdf(html, tmp_path / "x.pdf", chromium="/bin/true")


def test_cli_report_pdf_writes_the_pdf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _chromium()
    from flows.cli import main

    html = tmp_path / "compliance.html"
    html.write_text(render_html(build_report(report_metrics()), title="T", figures={}, reproduce="make pipeline"))
    assert main(["report", "--pdf", "--html", str(html), "--out", str(tmp_path / "out.pdf")]) == 0
    assert (tmp_path / "out.pdf").read_bytes().startswith(b"%PDF")
    assert f"wrote {tmp_path / 'out.pdf'}" in capsys.readouterr().out

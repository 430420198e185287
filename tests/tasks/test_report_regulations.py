"""The regulation table's GDPR Art. 25 row follows the run's recorded verification and its gate."""

from __future__ import annotations

from tasks.anonymize.setup import anonymization_setup
from tasks.params import AnonymizeParams
from tasks.report.html import regulation_rows, render_html
from tests.tasks.test_report import build_report, report_metrics

ART_25 = "GDPR Art. 25 data protection by design"
WAIVER = "pilot on public street views, re-checked by hand; DPO approval 2026-11-30"


def _row(verify: str, **extra: object) -> dict[str, str]:
    setup = anonymization_setup(AnonymizeParams(verify=verify), device="cpu").as_dict()
    c = build_report(report_metrics(**{"anonymize/verify_enabled": float(verify != "off")}), anonymizer=setup, **extra)
    return {r["requirement"]: r for r in regulation_rows(c)}[ART_25]


def test_verify_off_is_not_called_fail_closed_and_fails_the_row() -> None:
    row = _row("off")
    assert "anonymize_verification_on" in row["gates"]
    assert "Fail-closed" not in row["evidence"] and "anonymize.verify is off" in row["evidence"]
    assert row["status"] == "not met"


def test_verify_off_with_a_waiver_reads_met_only_by_that_waiver() -> None:
    row = _row("off", waived={"anonymize_verification_on": WAIVER})
    assert "Fail-closed" not in row["evidence"] and "anonymize.verify is off" in row["evidence"]
    assert row["status"] == "met only by waiver (anonymize_verification_on)"


def test_verified_run_is_fail_closed_and_met() -> None:
    row = _row("regions")
    # regions mode re-detects around the changed regions only: never claimed as a check of the whole image
    assert row["evidence"].startswith("Fail-closed anonymization (anonymize.verify: regions): the detectors ran "
                                      "again on each written image, around every changed region")
    assert "each whole written image" in _row("whole")["evidence"]
    assert row["status"] == "met"


def test_unrecorded_verification_claims_nothing() -> None:
    c = build_report(report_metrics())
    row = {r["requirement"]: r for r in regulation_rows(c)}[ART_25]
    assert "Fail-closed" not in row["evidence"] and "not recorded" in row["evidence"]
    assert "not recorded" in render_html(c, title="T", figures={}, reproduce="make pipeline")

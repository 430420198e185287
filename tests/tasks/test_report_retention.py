"""Retention status, the purge plan, the data inventory and the Markdown report (pure logic, no files)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from tasks.errors import InvalidInputError
from tasks.report.html import regulation_rows, render_html, render_markdown
from tasks.report.inventory import data_inventory
from tasks.report.retention import PURGE_COUNTS, cache_relpath, ledger_entry, plan_purge, retention_status
from tests.tasks.test_report import build_report, report_metrics

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PATHS = {"raw": "data/raw", "anonymized": "data/anonymized", "models": "models"}
RAW_MD5, ANON_MD5 = "a" * 32 + ".dir", "b" * 32 + ".dir"
LOCK = {
    "ingest": {
        "outs": [
            {"path": "data/raw", "md5": RAW_MD5, "nfiles": 4, "size": 1000},
            {"path": "reports/runs/ingest.json", "md5": "c" * 32, "size": 10},
        ]
    },
    "anonymize": {"outs": [{"path": "data/anonymized", "md5": ANON_MD5, "nfiles": 3, "size": 900}]},
}


def status_aged(days_ago: float | None, *, raw_days: int = 7, present: bool = True, purges: tuple = ()):
    when = None if days_ago is None else NOW - timedelta(days=days_ago)
    return retention_status(
        raw_days=raw_days,
        ingested_at=when,
        time_source="reports/runs/ingest.json started_at",
        now=NOW,
        raw_present=present,
        purges=purges,
    )


def test_retention_expires_strictly_after_the_limit() -> None:
    assert not status_aged(6.9).expired and status_aged(6.9).state == "within limit"
    assert status_aged(7.5).expired and status_aged(7.5).state == "EXPIRED: purge due"
    assert status_aged(7.5).age_days == pytest.approx(7.5)
    assert status_aged(0.01, raw_days=0).expired  # raw_days 0: expires as soon as it exists
    assert status_aged(7.5).as_metrics()["retention/expired"] == 1.0


def test_unknown_age_fails_closed_and_purged_data_is_not_expired() -> None:
    unknown = status_aged(None)
    assert unknown.expired and unknown.age_days is None
    gone = status_aged(
        30,
        present=False,
        purges=(
            {"applied": True, "time": "2026-11-19T00:00:00+00:00"},
            {"applied": False, "time": "2026-11-20T00:00:00+00:00"},
        ),
    )
    assert not gone.expired and gone.state == "purged" and gone.purged_at == "2026-11-19T00:00:00+00:00"
    assert status_aged(30, present=False).state == "absent"


def test_naive_or_future_times_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="no time zone"):
        retention_status(
            raw_days=7, ingested_at=datetime(2026, 11, 1), time_source="x", now=NOW, raw_present=True
        )
    with pytest.raises(InvalidInputError, match="in the future"):
        status_aged(-2)


def test_cache_relpath_is_dvc3_layout_and_validates() -> None:
    assert cache_relpath("ab" + "c" * 30) == "ab/" + "c" * 30
    assert cache_relpath(RAW_MD5) == "aa/" + "a" * 30 + ".dir"
    with pytest.raises(InvalidInputError, match="not an md5"):
        cache_relpath("../../etc/passwd")


def test_purge_plan_keeps_objects_shared_with_other_outputs() -> None:
    own, shared = (
        "1" * 32,
        "2" * 32,
    )  # shared: an image with nothing to redact is byte-identical after anonymization
    listing = [
        {"md5": own, "relpath": "images/a.png"},
        {"md5": shared, "relpath": "images/b.png"},
        {"md5": own, "relpath": "images/c.png"},
    ]  # duplicate content: one object
    plan = plan_purge(out_path="data/raw", out_md5=RAW_MD5, listing=listing, keep={shared, ANON_MD5})
    assert plan.cache_objects == (own, RAW_MD5) and plan.shared_objects == (shared,) and plan.n_files == 3
    assert plan.objects_digest == hashlib.sha256("\n".join(sorted([own, RAW_MD5])).encode()).hexdigest()
    with pytest.raises(InvalidInputError, match="not a directory output"):
        plan_purge(out_path="data/raw", out_md5=own, listing=listing, keep=set())
    entry = ledger_entry(
        plan,
        status_aged(9),
        applied=True,
        counts=dict.fromkeys(PURGE_COUNTS, 2),
        run_id="r",
        time=NOW.isoformat(),
    )
    assert (
        entry["kept_shared_objects"] == 1 and entry["planned_cache_objects"] == 2 and entry["age_days"] == 9
    )
    with pytest.raises(InvalidInputError, match="counts lack"):
        ledger_entry(plan, status_aged(9), applied=True, counts={}, run_id=None, time="t")


def _inventory(days_ago: float = 9.0) -> dict:
    return data_inventory(
        source={"kind": "builtin", "location": None},
        metrics=report_metrics(),
        lock_stages=LOCK,
        paths=PATHS,
        retention=status_aged(days_ago).as_dict(),
    )


def test_inventory_carries_dvc_digests_counts_and_retention() -> None:
    inv = _inventory()
    by_role = {d["role"]: d for d in inv["datasets"]}
    assert (
        by_role["raw"]["md5"] == RAW_MD5 and by_role["raw"]["nfiles"] == 4 and by_role["raw"]["personal_data"]
    )
    assert by_role["anonymized"]["md5"] == ANON_MD5 and not by_role["anonymized"]["personal_data"]
    assert by_role["models"]["md5"] is None  # not in this dvc.lock
    assert inv["counts"] == {
        "n_ingested": 100,
        "n_quarantined": 0,
        "anonymize_processed": 97,
        "anonymize_quarantined": 3,
    }
    assert inv["retention"]["state"] == "EXPIRED: purge due"


def test_retention_is_reported_and_mapped_but_never_gated() -> None:
    expired, fresh = build_report(report_metrics(), inventory=_inventory(9)), build_report(report_metrics(), inventory=_inventory(1))
    assert expired["verdict"] == fresh["verdict"] == "pass"  # the clock must not flip the verdict
    row = {r["requirement"]: r for r in regulation_rows(expired)}["GDPR Art. 5(1)(e) storage limitation"]
    assert row["status"] == "not met"
    assert {r["requirement"]: r for r in regulation_rows(fresh)}["GDPR Art. 5(1)(e) storage limitation"][
        "status"
    ] == "met"
    html = render_html(expired, title="T", figures={}, reproduce="make pipeline")
    assert (
        'id="retention-state">EXPIRED: purge due' in html
        and RAW_MD5 in html
        and "privtrail purge --apply" in html
    )
    assert "@media print" in html and "print-color-adjust" in html


def test_markdown_has_the_same_sections_and_numbers() -> None:
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75}), inventory=_inventory())
    md = render_markdown(c, title="T", figures={"roc": "plots/audit/roc.png"}, reproduce="make pipeline")
    sections = re.findall(r"^## (.+)$", md, flags=re.M)
    assert sections == [
        "Summary",
        "1. Description of the processing (Art. 35(7)(a))",
        "2. Necessity and proportionality (Art. 35(7)(b))",
        "3. Risks to the people (Art. 35(7)(c))",
        "4. Measures (Art. 35(7)(d))",
        "5. Since the last promoted model",
        "Appendix A: every measured value",
        "Appendix B: Lineage",
    ]
    assert "**FAIL**" in md and "`max_mia_auc_dp` |" in md
    for g in c["gates"]:
        assert f"`{g['name']}`" in md
    assert "| 2.985 | 2.98 | 1e-05 | prv |" in md and RAW_MD5 in md and "EXPIRED: purge due" in md
    assert "Membership-inference ROC curves, log-log: `plots/audit/roc.png`" in md
    assert "data:image" not in md and "```\nmake pipeline\n```" in md
    assert "### 1. What data was processed?" in md and "| `check_quality/face_redaction_recall` |" in md
    # every table row has as many cells as its header
    for block in re.split(r"\n\s*\n", md):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if len(rows) >= 2:
            widths = {len(re.split(r"(?<!\\)\|", r.rstrip())) for r in rows}
            assert len(widths) == 1, block

"""The compliance report in a real browser: headless Debian chromium (driven by Playwright) shows the verdict,
every gate, ε/δ and the lineage, and the page makes no request but for itself (no network, no fetches).

`make test` installs chromium first (`make browser`, as root via apt-get); the test skips only when
/usr/bin/chromium is absent, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.report.html import render_html
from tasks.report.inventory import data_inventory
from tests.tasks.test_report import build_report, report_metrics
from tests.tasks.test_report_retention import LOCK, PATHS, status_aged

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# a 1×1 PNG: the figure path is exercised without pixels of any image
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8"
    "cfc0f01f0005000201e2257e2d0000000049454e44ae426082"
)


def _chromium() -> str:
    if not Path(CHROMIUM).exists():
        why = (
            "run `make browser` as root"
            if os.geteuid() == 0
            else "not root, so `make browser` cannot apt-get it"
        )
        pytest.skip(f"{CHROMIUM} missing ({why})")
    return CHROMIUM


@pytest.fixture(scope="module")
def page_and_requests(tmp_path_factory: pytest.TempPathFactory):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a dev dependency: pip install -e .[dev]"
    )
    inventory = data_inventory(
        source={"kind": "builtin", "location": None},
        metrics=report_metrics(),
        lock_stages=LOCK,
        paths=PATHS,
        retention=status_aged(9).as_dict(),
    )
    c = build_report(report_metrics(**{"audit/dp/loss_threshold/auc": 0.75}), inventory=inventory,
               waived={"max_delta": "public benchmark data, reviewed by the DPO"})
    file = tmp_path_factory.mktemp("report") / "compliance.html"
    file.write_text(
        render_html(c, title="privtrail compliance report", figures={"roc": PNG}, reproduce="make pipeline")
    )
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=ARGS, headless=True)
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(file.as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
        yield c, page, requests, file
        browser.close()


def _visible(page, text: str) -> bool:
    return page.get_by_text(text, exact=False).first.is_visible()


def test_verdict_gates_dp_and_lineage_are_visible(page_and_requests) -> None:
    c, page, _, _ = page_and_requests
    verdict = page.locator("#verdict-value")
    assert verdict.is_visible() and verdict.inner_text() == "FAIL"
    assert page.locator("#gates-table tr.gate").count() == len(c["gates"]) == 29  # 28 thresholds + the ε agreement check
    shown = {"passed": "pass", "failed": "FAIL", "waived": "waived", "not_assessed": "not assessed"}
    for g in c["gates"]:
        row = page.locator("#gates-table tr.gate", has_text=g["name"])
        assert row.is_visible(), g["name"]
        assert row.locator("td").nth(4).inner_text() == shown[g["status"]], g["name"]
        assert row.locator("td").nth(5).inner_text() == (g["reason"] or ""), g["name"]
    assert page.locator("#dp-epsilon").is_visible() and page.locator("#dp-epsilon").inner_text() == "2.985"
    assert page.locator("#dp-delta").is_visible() and page.locator("#dp-delta").inner_text() == "1e-05"
    assert page.locator("#git-sha").is_visible() and page.locator("#git-sha").inner_text() == "abc"
    for text in ("f" * 64, "models:/m-1", "MLflow run: train", "r1", "make pipeline"):
        assert _visible(page, text), text
    assert page.locator("#retention-state").inner_text() == "EXPIRED: purge due"
    assert page.locator("figure img").evaluate("img => img.naturalWidth") == 1  # the data: URI decoded


def test_no_network_requests_only_the_page_itself(page_and_requests) -> None:
    _, page, requests, file = page_and_requests
    page.wait_for_timeout(300)  # anything deferred would have started by now
    non_data = [u for u in requests if not u.startswith("data:")]
    assert non_data == [file.as_uri()], requests


def test_prints_readably(page_and_requests) -> None:
    _, page, _, _ = page_and_requests
    page.emulate_media(media="print")
    assert page.locator("#gates-table").is_visible() and page.locator("#verdict-value").is_visible()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.emulate_media(media="screen")


def _text_outside_appendix(page) -> str:
    return page.evaluate("""() => { const b = document.body.cloneNode(true);
        b.querySelector('#appendix-body').remove(); return b.innerText; }""")


def test_first_page_answers_the_officer(page_and_requests) -> None:
    c, page, _, _ = page_and_requests
    first = page.locator("#first-page")
    assert first.is_visible()
    text = first.inner_text()
    assert first.locator("#verdict-value").inner_text() == "FAIL"
    assert "built-in synthetic data set" in text and "100 images ingested" in text and "97 + 3 = 100" in text
    assert f"ε = {c['dp']['epsilon_checked']:.3g} and δ = 1e-05; the privacy unit is one image" in text
    assert "natural-log bound" in text
    assert "by at most a factor of" in text
    assert "loss-threshold membership inference" in text and "AUC 0.75 (0.5 is guessing" in text
    open_gates = [g for g in c["gates"] if g["status"] != "passed"]
    assert {g["status"] for g in open_gates} >= {"failed", "waived"}
    rows = first.locator("#open-gates tr")
    assert rows.count() == len(open_gates) + 1
    for g in open_gates:
        row = first.locator("#open-gates tr", has_text=g["description"])
        assert row.is_visible() and g["reason"] in row.inner_text(), g["name"]
    for anchor in first.locator("p.evidence a").all():
        target = anchor.get_attribute("href")
        assert page.locator(target).count() == 1, target


def test_no_raw_metric_key_outside_the_appendix(page_and_requests) -> None:
    import re

    c, page, _, _ = page_and_requests
    text = _text_outside_appendix(page)
    keys = {k for stage in c["metrics"].values() for k in stage}
    keys |= {k.split("/", 1)[1] for k in keys}
    keys = {k for k in keys if "_" in k or "/" in k}  # machine-shaped: "processed" alone is also a word
    found = sorted(k for k in keys if re.search(rf"(?<![\w/]){re.escape(k)}(?![\w/])", text))
    assert found == []
    appendix = page.locator("#appendix-body").inner_text()
    assert "check_quality/face_redaction_recall" in appendix  # the keys are there, with their definitions

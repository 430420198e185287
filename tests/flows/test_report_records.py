"""The report words its mechanism sentences from the records the anonymize and train runs wrote, not from today's
params: a run recorded with `verify: off` and `targets: [face]` is described so, whatever params.yaml says now."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows import io, report
from tasks.anonymize.setup import anonymization_setup
from tasks.params import AnonymizeParams
from tasks.report.first_page import first_page
from tests.tasks.test_report import build_report, report_metrics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    return tmp_path


def test_the_recorded_setup_and_training_choice_reach_the_first_page(workspace: Path) -> None:
    params = io.load_params()  # today's params: verify regions, targets face/plate/text
    recorded = anonymization_setup(AnonymizeParams(verify="off", targets=("face",)), device="cpu").as_dict()
    io.write_json(f"{params.paths.reports}/runs/anonymize.json", {"run_id": "a1", "setup": recorded})
    io.write_json(f"{params.paths.reports}/runs/train.json", {
        "run_id": "t1", "features": "placard", "model": "digit_hog",
        "auto_resolved": {"train.features": "placard", "train.model": "digit_hog"}})
    c = build_report(report_metrics(), anonymizer=report._anonymizer(params), training=report._training(params))
    lines = " ".join(line for q in first_page(c)["questions"] for line in q["lines"])
    assert "Verification is off" in lines and "searched for faces (anonymize.targets)" in lines
    assert "The model is digit_hog" in lines and "followed the 'builtin' source (auto)" in lines


def test_a_run_without_a_recorded_setup_is_not_described_from_params(workspace: Path) -> None:
    params = io.load_params()
    io.write_json(f"{params.paths.reports}/runs/anonymize.json", {"run_id": "a0"})
    assert report._anonymizer(params) is None
    c = build_report(report_metrics(), anonymizer=report._anonymizer(params))
    assert c["anonymizer"]["sentences"]["verification"].endswith("were not recorded, so this report cannot say them.")

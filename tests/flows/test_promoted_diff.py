"""tracking.promoted_compliance against a temporary MLflow store: the version with the alias, as promote leaves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from flows import tracking
from tasks.report.diff import diff_compliance

ALIAS = "audited"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sqlite tracking store and artifact root for the module (creating the schema takes seconds); each
    test registers its own model name. The process-wide tracking URI is restored after."""
    before, root = mlflow.get_tracking_uri(), tmp_path_factory.mktemp("promoted")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("PRIVTRAIL_ARTIFACT_ROOT", (root / "artifacts").as_uri())
        mp.setenv("PRIVTRAIL_ROOT", str(root))
        yield root
    mlflow.set_tracking_uri(before)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return f"privtrail-dp-{request.node.name.removeprefix('test_')}"


def _compliance(epsilon: float, git_sha: str) -> dict[str, Any]:
    return {"verdict": "pass", "dp": {"epsilon_recomputed": epsilon, "delta": 1e-5},
            "attacks": {"loss_threshold": {"dp": {"auc": 0.51, "tpr_at_1pct_fpr": 0.012}}},
            "quality": {"face_redaction_recall": 0.97}, "anonymization": {},
            "gates": [{"name": "max_epsilon", "status": "passed", "passed": True, "value": epsilon}],
            "lineage": {"git_sha": git_sha}}


def _promote(store: Path, name: str, compliance: dict[str, Any] | None, *, git_sha: str,
             alias: str = ALIAS) -> str:
    """What flows/promote.py does: a model logged in the train run, registered with `alias`, the compliance
    report logged under `compliance/` of that run and named in the version's `report_artifact` tag."""
    exp = tracking.configure()
    with mlflow.start_run(experiment_id=exp, run_name="train"):
        model_uri = mlflow.create_external_model(name="dp_model").model_uri
    version = tracking.register_model(model_uri=model_uri, name=name, alias=alias, tags={"git_sha": git_sha})
    if compliance is None:  # a version promoted without its report (or whose artifact was deleted)
        return version
    reports = store / f"{name}-{version}"
    reports.mkdir()
    (reports / "compliance.json").write_text(json.dumps(compliance))
    for ext in ("html", "md"):
        (reports / f"compliance.{ext}").write_text(f"report {ext}")
    artifact = tracking.annotate_model_version(name=name, version=version, description="audited",
                                               files=[reports / f"compliance.{e}" for e in ("html", "json", "md")],
                                               artifact_path="compliance")
    tracking.set_model_version_tags(name=name, version=version, tags={"report_artifact": f"{artifact}/compliance.html"})
    return version


def test_nothing_registered_yet(store: Path, name: str) -> None:
    previous, reason = tracking.promoted_compliance(name, ALIAS)
    assert previous is None
    assert reason == f"{name}@audited: nothing promoted yet (no registered model {name!r})"


def test_registered_without_that_alias(store: Path, name: str) -> None:
    _promote(store, name, _compliance(2.9, "a" * 40), git_sha="a" * 40, alias="candidate")
    previous, reason = tracking.promoted_compliance(name, ALIAS)
    assert previous is None
    assert reason == f"{name}@audited: nothing promoted yet (model {name!r} has no version with alias 'audited')"


def test_reads_the_compliance_of_the_aliased_version(store: Path, name: str) -> None:
    old = _compliance(2.9, "a" * 40)
    _promote(store, name, old, git_sha="a" * 40)
    newer = _compliance(3.4, "b" * 40 + "-dirty")
    assert _promote(store, name, newer, git_sha="b" * 40 + "-dirty") == "2"  # the alias moves to version 2
    previous, ref = tracking.promoted_compliance(name, ALIAS)
    assert previous == newer
    assert ref == f"{name}@audited (version 2, git {'b' * 12}-dirty)"

    # the report's since_promoted section, as flows/report.py builds it
    current = _compliance(3.1, "c" * 40)
    diff = diff_compliance(current, previous, previous_ref=ref)
    eps = next(r for r in diff["rows"] if r["key"] == "dp.epsilon_recomputed")
    assert diff["available"] is True and diff["against"] == ref
    assert (eps["before"], eps["after"], eps["worse"]) == (3.4, 3.1, False)
    assert eps["change"] == pytest.approx(-0.3)


def test_version_without_its_compliance_artifact(store: Path, name: str) -> None:
    _promote(store, name, None, git_sha="a" * 40)
    previous, reason = tracking.promoted_compliance(name, ALIAS)
    assert previous is None
    assert reason.startswith(f"{name}@audited (version 1): its compliance.json could not be read from runs:/")
    assert diff_compliance(_compliance(3.0, "c"), previous, previous_ref=reason)["reason"] == reason

"""`privtrail` for people: every user mistake is one line and exit 2; `trail NAME` resolves a bare name.

A temp workspace (params.yaml only, no dvc.lock, no reports) and a temp sqlite MLflow store with two registered
models: `privtrail-dp` (v1 whose train run is gone, v2 promoted with alias audited and a full trail, v3 latest
with alias candidate) and `plain` (two versions, no audited alias).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from flows import tracking
from flows import trail as trail_flow
from flows.cli import main

REPO = Path(__file__).resolve().parents[2]
GONE_RUN = "f" * 32  # a run id no store has


def _stage_run(name: str, *, params: dict[str, str], metrics: dict[str, float]) -> str:
    with mlflow.start_run(experiment_id=tracking.configure(), run_name=name) as run:
        mlflow.set_tags(
            {
                "stage": name,
                "git_sha": "ab" * 20,
                "params_digest": f"{name[0]}" * 64,
                "input_digest": "1" * 64,
                "output_digest": "2" * 64,
            }
        )
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    return str(run.info.run_id)


def _register(name: str, alias: str, tags: dict[str, str]) -> str:
    with mlflow.start_run(experiment_id=tracking.configure(), run_name="train"):
        model_uri = mlflow.create_external_model(name="dp_model").model_uri
    return tracking.register_model(model_uri=model_uri, name=name, alias=alias, tags=tags)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    before, root = mlflow.get_tracking_uri(), tmp_path_factory.mktemp("cli")
    ws = root / "ws"
    ws.mkdir()
    shutil.copy(REPO / "params.yaml", ws / "params.yaml")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PRIVTRAIL_ROOT": str(ws),
        "PRIVTRAIL_ARTIFACT_ROOT": (root / "artifacts").as_uri(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        train = _stage_run("train", params={"train.dp.unit": "person"}, metrics={"train/unit_cap": 4.0})
        audit = _stage_run("audit", params={}, metrics={"audit/dp/lira/auc": 0.512, "audit/dp/other": 1.0})
        _register("privtrail-dp", "candidate", {"run_id.train": GONE_RUN})
        _register(
            "privtrail-dp",
            "audited",
            {
                "run_id.train": train,
                "run_id.audit": audit,
                "verdict": "pass",
                "gates_passed": "40/40",
                "epsilon": "2.95",
                "delta": "1e-05",
                "accountant": "prv",
                "git_sha": "ab" * 20,
                "data.raw.md5": "d" * 32,
                "reproduce": "git clone r privtrail && cd privtrail && make pipeline",
            },
        )
        _register("privtrail-dp", "candidate", {})
        for _ in range(2):
            _register("plain", "candidate", {})
        yield {"ws": ws, "env": env, "train": train, "audit": audit}
    mlflow.set_tracking_uri(before)


def _bad(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `privtrail args` in-process; it must exit 2 with one line on stderr and nothing on stdout."""
    rc = main(args)
    out, err = capsys.readouterr()
    assert (rc, out) == (2, ""), (rc, out, err)
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    return err


# each subcommand with bad arguments → what the one line must say (the mistake and what to type instead)
BAD: list[tuple[list[str], list[str]]] = [
    ([], ["privtrail: error: the following arguments are required: COMMAND", "privtrail --help"]),
    (["nosuch"], ["invalid choice: 'nosuch'", "privtrail --help"]),
    (
        ["trail"],
        ["privtrail trail: error: the following arguments are required: MODEL", "privtrail trail --help"],
    ),
    (["trail", "privtrail-dp", "--jsn"], ["unrecognized arguments: --jsn", "privtrail trail --help"]),
    (
        ["trail", "privtrail-dp@nope"],
        [
            "model 'privtrail-dp' has no version with alias 'nope'",
            "type privtrail trail privtrail-dp@audited",
        ],
    ),
    (["trail", "privtrail-dp@"], ["give both sides of '@'", "privtrail trail NAME"]),
    (
        ["trail", "privtrail-dp/9"],
        ["model 'privtrail-dp' has no version 9 (versions 1 to 3)", "type privtrail trail privtrail-dp/3"],
    ),
    (
        ["trail", "9"],
        ["model 'privtrail-dp' has no version 9"],
    ),  # a bare number: a version of promote.model_name
    (
        ["trail", "privtrail-dpx"],
        [
            "'privtrail-dpx' is neither a registered model nor a run id",
            "registered models: plain, privtrail-dp",
            "privtrail trail NAME",
        ],
    ),
    (["trail", "nosuch@audited"], ["no registered model 'nosuch'", "check the name or MLFLOW_TRACKING_URI"]),
    (["trail", "0" * 32], ["is neither a registered model nor a run id"]),  # an unknown run id
    (["trail", "it's; drop"], ["is neither a registered model nor a run id"]),
    # v1's tags name a train run the store no longer has: MLflow's own lookup error, caught at the boundary
    (
        ["trail", "privtrail-dp/1"],
        [f"Run with id={GONE_RUN} not found in sqlite:///", "privtrail trail --help"],
    ),
    (["lineage"], ["dvc.lock: not found or empty", "make pipeline"]),
    (
        ["lineage", "extra"],
        ["privtrail lineage: error: unrecognized arguments: extra", "privtrail lineage --help"],
    ),
    (["purge", "--now", "yesterday"], ["--now: Invalid isoformat string", "--now 2026-01-31T09:00+00:00"]),
    (
        ["purge", "--now", "2026-01-01T00:00"],
        ["--now 2026-01-01T00:00: give a time zone", "2026-01-01T00:00+00:00"],
    ),
    (["purge"], ["not a DVC repository (no .dvc folder)", "set PRIVTRAIL_ROOT"]),
    (["budget", "--check", "x"], ["privtrail budget: error: unrecognized arguments: x"]),
    (["report"], ["compliance.json: no compliance report yet", "make pipeline"]),
    (["report", "--html", "x.html"], ["add --pdf, e.g. privtrail report --pdf --html"]),
    (["report", "--pdf", "--html", "missing.html"], ["missing.html: no such report", "dvc repro report"]),
    (["anonymize", "IN"], ["the following arguments are required: OUT_DIR", "privtrail anonymize --help"]),
    (["anonymize", "missing", "OUT"], ["IN_DIR missing: not a folder", "privtrail anonymize photos/"]),
    (
        ["anonymize", "IN", "OUT", "--targets", "car"],
        ["--targets: unknown ['car']", "face, body, plate, text"],
    ),
    (["anonymize", "IN", "OUT", "--jobs", "0"], ["--jobs: must be >= 1, got 0"]),
    (["anonymize", "IN", "OUT", "--jobs", "two"], ["argument --jobs: invalid int value: 'two'"]),
    (["anonymize", "IN", "OUT", "--method", "paint"], ["argument --method: invalid choice: 'paint'"]),
]


@pytest.mark.parametrize(("args", "says"), BAD, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_every_user_mistake_is_one_line_and_exit_2(
    store: dict[str, Any], args: list[str], says: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (store["ws"] / "IN").mkdir(exist_ok=True)
    args = [str(store["ws"] / a) if a in ("IN", "OUT") else a for a in args]
    err = _bad(args, capsys)
    for words in says:
        assert words in err, err


@pytest.mark.parametrize(
    "command", [["budget"], ["report"], ["lineage"], ["purge"], ["trail", "privtrail-dp"]]
)
def test_outside_a_workspace_says_where_to_run(
    store: dict[str, Any],
    tmp_path: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    err = _bad(command, capsys)
    assert f"{tmp_path}: no params.yaml here, so not a privtrail workspace; cd into the project folder" in err


def test_a_bug_keeps_its_traceback(store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Only user mistakes are caught: a genuine bug, or an MLflow error that is no lookup, still raises."""

    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise KeyError("a bug")

    monkeypatch.setattr(trail_flow, "record", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["trail", "privtrail-dp"])

    def down(*_: Any, **__: Any) -> dict[str, Any]:
        raise MlflowException("the tracking server answered 500", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(trail_flow, "record", down)
    with pytest.raises(MlflowException, match="answered 500"):
        main(["trail", "privtrail-dp"])


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"privtrail {version('privtrail')}\n"


def _trail(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    rc = main(["trail", *args])
    out, err = capsys.readouterr()
    assert rc == 0 and err == "", err
    return out.splitlines()


def test_a_bare_name_resolves_its_audited_version_and_says_so(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _trail(["privtrail-dp"], capsys)  # v3 is the latest; the audited one is v2
    assert lines[0] == "privtrail-dp: version 2 (alias audited)"
    assert lines[1] == "model      privtrail-dp v2 (aliases: audited); models:/privtrail-dp/2"
    assert "verdict    PASS (40/40 gates passed)" in lines
    assert (
        "privacy    ε = 2.95, δ = 1e-05 per person, each person's images capped at 4; accountant prv" in lines
    )
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("           ")}
    assert rows["train"][:2] == [store["train"], "t" * 12] and rows["audit"][:2] == [store["audit"], "a" * 12]
    assert "checked    not against a dvc.lock: no dvc.lock in this workspace" in lines


def test_a_bare_name_without_the_alias_resolves_its_latest(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _trail(["plain"], capsys)[0]
        == "plain: version 2 (the latest version: no version has alias 'audited')"
    )
    assert _trail(["privtrail-dp@candidate"], capsys)[0] == "privtrail-dp@candidate: version 3"
    assert _trail(["3"], capsys)[0] == "privtrail-dp: version 3"
    assert (
        _trail([store["audit"]], capsys)[0]
        == f"run {store['audit']} (stage audit): no registered model version "
        "comes from it"
    )


def test_json_is_the_full_record(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads("\n".join(_trail(["privtrail-dp@audited", "--json"], capsys)))
    assert record["model"] == "privtrail-dp v2" and record["aliases"] == ["audited"]
    assert record["resolved"] == "privtrail-dp@audited: version 2"
    assert record["dp_unit"] == {"unit": "person", "cap": 4}
    assert record["stages"]["train"]["run_id"] == store["train"] and record["data"] == {"raw": "d" * 32}
    assert record["attacks"] == {"audit/dp/lira/auc": pytest.approx(0.512)}  # attack fields only
    assert record["checks"] == {"dvc_lock": "no dvc.lock in this workspace", "ok": None}


def test_the_console_script_as_a_user_runs_it(store: dict[str, Any]) -> None:
    """The installed `privtrail` in a subprocess, as a user runs it: a wrong alias is one line on stderr, exit 2."""
    script = Path(sys.executable).parent / "privtrail"
    env = {**os.environ, **store["env"], "PYTHONPATH": ""}
    bad = subprocess.run(
        [str(script), "trail", "privtrail-dp@nope"],
        cwd=store["ws"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == [
        "privtrail trail: error: model 'privtrail-dp' has no version with alias 'nope' (its aliases: "
        "audited (version 2), candidate (version 3)); type privtrail trail privtrail-dp@audited or "
        "privtrail trail privtrail-dp@candidate or privtrail trail privtrail-dp/3"
    ]

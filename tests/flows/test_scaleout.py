"""Scale-out on existing engines: a served Prefect deployment of the pipeline triggered through the
Prefect API, anonymize on a Dask cluster (byte-identical to the process pool), DVC remote push/pull."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.task_runners import ProcessPoolTaskRunner

from flows.common import shard_runner
from flows.pipeline import DEPLOYMENT, FLOW_NAME, failure_summary
from tasks.errors import InvalidInputError
from tasks.params import Params, ScheduleParams
from tests.flows.conftest import REPO, copy_workspace, run, shrink

PY = sys.executable

# --- no server ------------------------------------------------------------------------------


def test_shard_runner_registry() -> None:
    from prefect_dask import DaskTaskRunner

    proc = shard_runner("process", n_workers=3)
    assert isinstance(proc, ProcessPoolTaskRunner) and proc._max_workers == 3
    local = shard_runner("dask", n_workers=2)
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs == {
        "n_workers": 2,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
    }
    remote = shard_runner("dask", address="tcp://10.0.0.5:8786")
    assert remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(InvalidInputError, match="executor 'ray'"):
        shard_runner("ray")


def test_anonymize_executor_and_schedule_params() -> None:
    p = Params.model_validate(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert p.anonymize.executor == "process" and p.anonymize.dask_address is None
    assert len(p.schedule.cron.split()) == 5
    with pytest.raises(ValueError, match="5 fields"):
        ScheduleParams(cron="0 2 * *")
    with pytest.raises(ValueError, match="executor"):
        Params.model_validate({"anonymize": {"executor": "spark"}})


def test_prefect_yaml_deploys_the_pipeline_on_the_params_cron() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = spec["deployments"]
    assert dep["entrypoint"] == "flows/pipeline.py:pipeline" and dep["name"] == DEPLOYMENT
    cron = yaml.safe_load((REPO / "params.yaml").read_text())["schedule"]["cron"]
    assert [s["cron"] for s in dep["schedules"]] == [cron]


def test_failure_summary_keeps_the_stage_errors() -> None:
    lines = [
        "Running stage 'report':",
        "> python -m flows.report",
        "noise",
        "privtrail promote: error: promote: refusing to register the model; 1 gate(s) failed: min_dp_accuracy",
        "ERROR: failed to reproduce 'promote': failed to run: python -m flows.promote, exited with 1",
    ]
    assert failure_summary(lines).splitlines() == lines[3:]
    assert failure_summary([str(i) for i in range(30)]).splitlines() == [str(i) for i in range(10, 30)]
    crash = [f"noise {i}" for i in range(20)] + [
        "Traceback (most recent call last):",
        "ValueError: boom",
        "ERROR: failed to reproduce 'audit': exited with 1",
        "tail",
    ]
    summary = failure_summary(crash).splitlines()
    assert summary[-3:] == crash[-4:-1] and len(summary) == 16  # the traceback's end, then DVC's line


# --- a served deployment, triggered through the Prefect API ----------------------------------

TOY_STAGE = """import sys, pathlib, yaml
title = yaml.safe_load(open("params.yaml"))["report"]["title"]
if title == "fail":
    sys.exit("privtrail toy: error: gate toy_min_score failed: measured 0.1 < threshold 0.9")
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/title.txt").write_text(title)
"""


def _toy_workspace(ws: Path, remote: Path, env: dict[str, str]) -> Path:
    """A git + DVC workspace with the real params.yaml and one cheap stage (`toy`), and a local remote."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["schedule"]["cron"] = "17 3 * * *"
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (ws / "toy.py").write_text(TOY_STAGE)
    (ws / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "toy": {"cmd": f"{PY} toy.py", "deps": ["toy.py"], "params": ["report"], "outs": ["out"]}
                }
            }
        )
    )
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "local", str(remote)],
    ):
        assert run(cmd, ws, env).returncode == 0, cmd
    return ws


def _api(url: str) -> Any:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


@contextmanager
def served(ws: Path, env: dict[str, str], name: str, timeout: float = 120) -> Iterator[Any]:
    """`python -m flows.pipeline serve --name NAME` in `ws`; yields the deployment once registered."""
    from prefect.client.orchestration import get_client

    log = (ws / f"serve-{name}.log").open("w")
    proc = subprocess.Popen(
        [PY, "-m", "flows.pipeline", "serve", "--name", name],
        cwd=ws,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, deployment = time.time() + timeout, None
        with _api(env["PREFECT_API_URL"]), get_client(sync_client=True) as client:
            while deployment is None:
                try:
                    deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
                except Exception:  # noqa: BLE001 - ObjectNotFound until `serve` has registered it
                    if proc.poll() is not None or time.time() > deadline:
                        pytest.fail(
                            f"serve did not register: {(ws / f'serve-{name}.log').read_text()[-3000:]}"
                        )
                    time.sleep(1)
        yield deployment
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def trigger(env: dict[str, str], name: str, timeout: float) -> Any:
    from prefect.deployments import run_deployment

    with _api(env["PREFECT_API_URL"]):
        return run_deployment(f"{FLOW_NAME}/{name}", timeout=timeout, poll_interval=2, as_subflow=False)


@pytest.mark.integration
def test_served_deployment_repros_pushes_and_fails_visibly(
    tmp_path: Path, workspace_env: dict[str, str]
) -> None:
    remote = tmp_path / "remote"
    (tmp_path / "ws").mkdir()
    ws = _toy_workspace(tmp_path / "ws", remote, workspace_env)
    with served(ws, workspace_env, "toy") as deployment:
        assert [s.schedule.cron for s in deployment.schedules] == ["17 3 * * *"]  # from params.yaml
        ok = trigger(workspace_env, "toy", timeout=300)
        assert ok.state.is_completed(), ok.state
        lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]["toy"]
        assert (ws / "out/title.txt").read_text() == "privtrail compliance report"
        md5 = lock["outs"][0]["md5"]  # "<hash>.dir": pushed to the remote's content-addressed store
        assert (remote / "files/md5" / md5[:2] / md5[2:]).is_file()
        p = yaml.safe_load((ws / "params.yaml").read_text())
        p["report"]["title"] = "fail"  # the toy stage's gate fails
        (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        bad = trigger(workspace_env, "toy", timeout=300)
    assert bad.state.is_failed()
    assert "gate toy_min_score failed" in bad.state.message and "dvc repro" in bad.state.message


def _loose_gates() -> dict[str, float]:
    """Every gate at its most permissive value: 64 images prove the plumbing, not the privacy."""
    from tasks.params import Gates

    loose = {}
    for name, field in Gates.model_fields.items():
        bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "le", "lt") if hasattr(m, k)}
        if name.startswith("min_"):
            loose[name] = bounds.get("ge", -1e9)
        else:
            loose[name] = bounds.get("le", bounds["lt"] / 2 if "lt" in bounds else 1e9)
    return loose


@pytest.mark.slow
@pytest.mark.integration
def test_served_deployment_runs_the_whole_pipeline(tmp_path: Path, workspace_env: dict[str, str]) -> None:
    """The 64-image shrunk workspace: one scheduled-style run is a full `dvc repro` (minutes)."""
    ws = copy_workspace(tmp_path)
    gi = {
        "enabled": True,
        "models": ["pixel_linear"],
        "sweep_models": ["pixel_linear"],
        "batch_sizes": [1],
        "methods": ["inverting_gradients"],
        "steps": 20,
        "dp_sigmas": [],
        "prune": [0.9],
        "quantize": [],
        "defence_epochs": 1,
    }  # the audit's figure needs an inverting_gradients row
    shrink(ws / "params.yaml", gates=_loose_gates(), audit={"gradient_inversion": gi})
    with served(ws, workspace_env, "full"):
        t0 = time.time()
        done = trigger(workspace_env, "full", timeout=1800)
        print(f"full pipeline through the deployment: {time.time() - t0:.0f} s")
        assert done.state.is_completed(), done.state
        lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
        assert set(lock) == {"ingest", "anonymize", "check_quality", "train", "audit", "report", "promote"}
        assert json.loads((ws / "reports/compliance.json").read_text())["verdict"] == "pass"
        p = yaml.safe_load((ws / "params.yaml").read_text())
        p["gates"]["min_dp_accuracy"] = 0.999  # the bound is < 1: no sample proves an accuracy of 1
        (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        bad = trigger(workspace_env, "full", timeout=900)
    assert bad.state.is_failed() and "min_dp_accuracy" in bad.state.message
    assert "refusing to register" in bad.state.message


# --- Dask executor and DVC remote on a tiny workspace -----------------------------------------


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _set(ws: Path, section: str, **values: Any) -> None:
    p = yaml.safe_load((ws / "params.yaml").read_text())
    p[section].update(values)
    (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, workspace_env: dict[str, str]) -> Path:
    """ingest → anonymize (process pool) → train through `dvc repro train` on 24 images."""
    ws = copy_workspace(tmp_path_factory.mktemp("tiny"))
    shrink(
        ws / "params.yaml",
        ingest={"n_images": 24},
        anonymize={"shard_size": 6},
        train={"epochs": 1, "batch_size": 4},
        gates={"max_quarantine_fraction": 1.0},
    )
    for cmd in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"],
        ["dvc", "repro", "train"],
    ):
        proc = run(cmd, ws, workspace_env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return ws


@pytest.mark.slow
@pytest.mark.integration
def test_dask_executor_gives_byte_identical_outputs(tiny: Path, workspace_env: dict[str, str]) -> None:
    local = _hashes(tiny / "data/anonymized")
    assert {"records.jsonl", "manifest.parquet", "quarantine.jsonl"} <= set(local) and len(local) > 10
    original = (tiny / "params.yaml").read_text()
    _set(tiny, "anonymize", executor="dask")
    try:
        proc = run([PY, "-m", "flows.anonymize"], tiny, workspace_env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "distributed.scheduler" in proc.stdout + proc.stderr  # it did run on a Dask cluster
        assert _hashes(tiny / "data/anonymized") == local
    finally:
        (tiny / "params.yaml").write_text(original)
    status = run(["dvc", "status", "anonymize", "--json"], tiny, workspace_env)
    changed = {
        k for entry in json.loads(status.stdout).get("anonymize", []) for k in entry.get("changed outs", {})
    }
    # DVC agrees the data and metrics are what dvc.lock says; only the run record (a new MLflow run id) differs
    assert changed == {"reports/runs/anonymize.json"}, status.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_dvc_push_then_pull_into_a_fresh_clone(
    tiny: Path, tmp_path: Path, workspace_env: dict[str, str]
) -> None:
    remote, clone = tmp_path / "remote", tmp_path / "clone"
    env = workspace_env
    for cmd in (
        ["dvc", "remote", "add", "-d", "local", str(remote)],
        ["dvc", "push"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lock + remote"],
    ):
        proc = run(cmd, tiny, env)
        assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    assert run(["git", "clone", "-q", str(tiny), str(clone)], tmp_path, env).returncode == 0
    assert not (clone / "data").exists()
    pull = run(["dvc", "pull"], clone, env)
    assert pull.returncode == 0, pull.stderr[-2000:]
    for out in ("data/raw", "data/anonymized", "models"):
        assert _hashes(clone / out) == _hashes(tiny / out) != {}, out
    shutil.rmtree(clone / "data/anonymized")
    assert run(["dvc", "pull", "data/anonymized"], clone, env).returncode == 0  # one output on its own
    assert _hashes(clone / "data/anonymized") == _hashes(tiny / "data/anonymized")

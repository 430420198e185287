"""Integration fixtures: a temp copy of the workspace, a temp MLflow store, one Prefect server per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server for the whole session (the pipeline's own `start_server`), so each stage process
    skips the ephemeral start-up."""
    from flows.prefect_server import start_server

    with start_server(tmp_path_factory.mktemp("prefect")) as url:
        yield url


def copy_workspace(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ws"], cwd=dest, check=True)
    return dest


def shrink(params_file: Path, **overrides: dict) -> None:
    """Shrink the real params for a fast end-to-end run (64 images), keeping every stage real."""
    p = yaml.safe_load(params_file.read_text())
    p["ingest"]["n_images"] = 64
    p["anonymize"]["shard_size"] = 16
    p["train"].update({"epochs": 2, "batch_size": 16})
    p["check_quality"].update({"reid_probes": 20, "reid_train_per_identity": 4, "text_images": 8, "lpips_images": 8,
                               "utility_train_images": 30, "compare_methods": ["pixelate", "mask"],
                               "compare_images": 8, "compare_probes": 10, "compare_residual_images": 4,
                               "compare_text_images": 2, "auditor_calibration_images": 16})
    p["audit"].update({"shadow": {"k": 2, "fixed_variance": True},
                       "epsilon": {"alpha": 0.05, "canary": {"enabled": True, "n": 16, "guesses": 8}},
                       "model_inversion": {"enabled": True, "steps": 10, "lr": 0.05, "tv": 0.05},
                       "gradient_inversion": {"enabled": True, "models": ["pixel_linear"], "sweep_models": ["pixel_linear"],
                                              "methods": ["idlg"], "batch_sizes": [1], "steps": 20, "dp_sigmas": [],
                                              "prune": [0.9], "quantize": [], "defence_epochs": 1}})
    for section, values in overrides.items():
        p[section].update(values)
    p["gates_policy_changes"] = policy_reasons(p["gates"], "a shrunk test workspace proves the plumbing, not the privacy")
    params_file.write_text(yaml.safe_dump(p, sort_keys=False))


def policy_reasons(gates: dict, why: str) -> dict[str, str]:
    """`gates_policy_changes` for every threshold of `gates` looser than the packaged policy (params refuse a
    loosened threshold without a written reason)."""
    from tasks.params import Gates, gate_loosened

    policy = Gates()
    return {k: why for k, v in gates.items() if gate_loosened(k, float(v), getattr(policy, k))}


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def workspace_env(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    mlflow_dir = tmp_path_factory.mktemp("mlflow")
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PREFECT_API_URL": prefect_api,
            "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "PRIVTRAIL_ARTIFACT_ROOT": (mlflow_dir / "artifacts").as_uri(), "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": ""}

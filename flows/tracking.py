"""The only importer of mlflow: one MLflow run per stage execution, with lineage tags.

Every run is tagged `stage`, `git_sha`, `params_digest`, `input_digest`, `output_digest`; after
`dvc repro` writes dvc.lock, `sync_lineage()` adds `dvc_stage_hash` (the sha256 of the stage's
dvc.lock entry: its deps, params and outs hashes). Metrics logged are exactly the dict the stage
writes to `reports/metrics/<stage>.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from flows import io
from tasks.params import Params
from tasks.redact import redact_text, redact_uri

EXPERIMENT = "privtrail"


def _store_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else an absolute sqlite store at the repo root (credentials and all:
    for connecting only, never recorded)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{io.repo_root() / 'mlflow.db'}"


def tracking_uri() -> str:
    """The tracking store as privtrail records it (run records, reports, tags): credentials removed."""
    return redact_uri(_store_uri())


def configure() -> str:
    """Point mlflow at the store and make sure the experiment exists; return the experiment id."""
    mlflow.set_tracking_uri(_store_uri())
    client = MlflowClient()
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        artifacts = os.environ.get("PRIVTRAIL_ARTIFACT_ROOT") or (io.repo_root() / "mlartifacts").as_uri()
        return client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    return exp.experiment_id


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=io.repo_root(), capture_output=True, text=True)
    except OSError:
        return "unknown"
    sha = out.stdout.strip() if out.returncode == 0 else "unknown"
    # dvc.lock, DVC's .gitignore entries and the privacy ledger are rewritten by the running `dvc repro` itself
    dirty = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!dvc.lock",
            ":!**/.gitignore",
            ":!.gitignore",
            ":!ledger",
        ],
        cwd=io.repo_root(),
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{sha}-dirty" if dirty and sha != "unknown" else sha


def git_remote() -> str:
    """Where the code can be cloned from: the `origin` remote (credentials removed: it is recorded in the
    report and the registry), else this workspace's own path."""
    out = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=io.repo_root(), capture_output=True, text=True
    )
    return (
        redact_uri(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else str(io.repo_root())
    )


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


@dataclass
class StageRun:
    """Handle on the active stage run."""

    stage: str
    run_id: str
    extra: dict[str, Any] = field(default_factory=dict)  # written to reports/runs/<stage>.json

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        finite = {k: float(v) for k, v in metrics.items() if v is not None}
        mlflow.log_metrics(finite)

    def log_curve(self, key: str, values: Sequence[float]) -> None:
        for step, v in enumerate(values):
            mlflow.log_metric(key, float(v), step=step)

    def log_artifact(self, file: str | Path, artifact_path: str | None = None) -> None:
        mlflow.log_artifact(str(io.path(file)), artifact_path=artifact_path)

    def log_dataset(self, frame: pd.DataFrame, *, name: str, source: str, context: str) -> None:
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()[
            :16
        ]
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways", integer-schema hints
            warnings.simplefilter("ignore", UserWarning)
            ds = from_pandas(frame, source=source, name=name, digest=digest)
            mlflow.log_input(ds, context=context)

    def log_torch_model(self, model: Any, *, name: str, input_shape: Sequence[int]) -> str:
        """Log a plain torch module; the input example is zeros of `input_shape`, never a data sample."""
        import mlflow.pytorch
        import numpy as np

        info = mlflow.pytorch.log_model(
            model,
            name=name,
            serialization_format="pickle",
            input_example=np.zeros(tuple(input_shape), np.float32),
            pip_requirements=["torch==2.13.0"],
        )
        return str(info.model_uri)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        mlflow.set_tags({k: redact_text(str(v)) for k, v in tags.items()})


@contextmanager
def stage_run(
    stage: str, *, params: Params, inputs: Sequence[str], outputs: Sequence[str]
) -> Iterator[StageRun]:
    """Open the MLflow run of one stage execution; tag output digests and record the run id on success.

    Logs `seed` and the stage's own params section (flattened) as the run's params.
    """
    exp_id = configure()
    section = getattr(params, stage, None)
    logged = {"seed": params.seed, stage: section.model_dump(mode="json") if section is not None else {}}
    params_json = json.dumps(logged, sort_keys=True, default=str)
    started_at = _utc_now()
    with mlflow.start_run(experiment_id=exp_id, run_name=stage) as run:
        mlflow.set_tags(
            {
                "stage": stage,
                "git_sha": git_sha(),
                "params_digest": hashlib.sha256(params_json.encode()).hexdigest(),
                "input_digest": io.digest(inputs),
            }
        )
        flat = flatten(logged)
        for i in range(0, len(flat), 90):  # log_params accepts at most 100 per call
            mlflow.log_params(dict(list(flat.items())[i : i + 90]))
        handle = StageRun(stage=stage, run_id=run.info.run_id)
        yield handle
        mlflow.set_tag("output_digest", io.digest(outputs))
    # started_at / finished_at (UTC): when the stage's data came to exist, e.g. the retention clock of raw data
    io.write_json(
        f"{params.paths.reports}/runs/{stage}.json",
        {
            "run_id": handle.run_id,
            "stage": stage,
            "tracking_uri": tracking_uri(),
            "started_at": started_at,
            "finished_at": _utc_now(),
            **handle.extra,
        },
    )


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def dvc_lock_entries() -> dict[str, dict[str, Any]]:
    lock = io.path("dvc.lock")
    if not lock.exists():
        return {}
    return dict((yaml.safe_load(lock.read_text()) or {}).get("stages", {}))


def stage_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()


def sync_lineage(*, reports_dir: str = "reports") -> dict[str, str]:
    """Tag each stage's recorded run with the sha256 of its dvc.lock entry; return stage → hash."""
    configure()
    client = MlflowClient()
    tagged: dict[str, str] = {}
    for stage, entry in dvc_lock_entries().items():
        rec = io.path(f"{reports_dir}/runs/{stage}.json")
        if not rec.exists():
            continue
        run_id = json.loads(rec.read_text())["run_id"]
        h = stage_hash(entry)
        client.set_tag(run_id, "dvc_stage_hash", h)
        tagged[stage] = h
    return tagged


# --- registry (promote) and trail ---------------------------------------------------------


def register_model(*, model_uri: str, name: str, alias: str, tags: Mapping[str, str]) -> str:
    """Register `model_uri` as a new version of `name`, tag it, point `alias` at it; return the version."""
    configure()
    client = MlflowClient()
    mv = mlflow.register_model(model_uri, name)
    for k, v in tags.items():  # a tag that names a store or a remote never carries its credentials
        client.set_model_version_tag(name, mv.version, k, redact_text(str(v)))
    client.set_registered_model_alias(name, alias, mv.version)
    return str(mv.version)


def promoted_compliance(name: str, alias: str) -> tuple[dict[str, Any] | None, str]:
    """The compliance.json promote attached to the version `name@alias`, and what it is.

    Returns (compliance, "<name>@<alias> (version <v>, git <sha>)"), or (None, the reason) when the
    registered model or the alias does not exist yet or the artifact cannot be read. Other registry
    errors (an unreachable tracking server) raise.
    """
    ref = f"{name}@{alias}"
    try:
        mv = model_version(ref)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None, f"{ref}: nothing promoted yet (no registered model {name!r})"
        if err.error_code == "INVALID_PARAMETER_VALUE":  # the model exists, the alias does not
            return None, f"{ref}: nothing promoted yet (model {name!r} has no version with alias {alias!r})"
        raise
    # promote tags the version with its report's artifact (`runs:/<run>/compliance/compliance.html`)
    report = mv["tags"].get("report_artifact") or f"runs:/{mv['run_id']}/compliance/compliance.html"
    uri = report.rsplit("/", 1)[0] + "/compliance.json"
    try:
        previous = mlflow.artifacts.load_dict(uri)
    except (MlflowException, OSError, ValueError) as err:
        return (
            None,
            f"{ref} (version {mv['version']}): its compliance.json could not be read from {uri}: {err}",
        )
    if not isinstance(previous, dict):
        return None, f"{ref} (version {mv['version']}): {uri} is not a compliance.json object"
    sha = str(mv["tags"].get("git_sha") or previous.get("lineage", {}).get("git_sha") or "unknown")
    short = sha[:12] + ("-dirty" if sha.endswith("-dirty") else "")
    return previous, f"{ref} (version {mv['version']}, git {short})"


def run_info(run_id: str) -> dict[str, Any]:
    configure()
    run = MlflowClient().get_run(run_id)
    return {
        "run_id": run_id,
        "name": run.info.run_name,
        "tags": dict(run.data.tags),
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
    }


def model_version(ref: str) -> dict[str, Any]:
    """Resolve `name@alias` or `name/version` to its version record (tags included)."""
    configure()
    client = MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, version = ref.rsplit("/", 1)
        mv = client.get_model_version(name, version)
    return {
        "name": mv.name,
        "version": mv.version,
        "run_id": mv.run_id,
        "source": mv.source,
        "tags": dict(mv.tags),
    }


# --- issue 7: the model version tells the audit story; retention runs ------------------------


def annotate_model_version(
    *, name: str, version: str, description: str, files: Sequence[str | Path], artifact_path: str
) -> str:
    """Log `files` (the compliance report) into the run that produced the model version, describe the version.

    Returns the artifact URI of the logged folder (`runs:/<run id>/<artifact_path>`).
    """
    configure()
    client = MlflowClient()
    mv = client.get_model_version(name, version)
    for f in files:
        client.log_artifact(mv.run_id, str(io.path(f)), artifact_path=artifact_path)
    client.update_model_version(name, version, description=redact_text(description))
    return f"runs:/{mv.run_id}/{artifact_path}"


def run_times(run_id: str) -> dict[str, str | None]:
    """The run's start and end time (ISO 8601 UTC), as the tracking store recorded them."""
    from datetime import UTC, datetime

    configure()
    info = MlflowClient().get_run(run_id).info

    def iso(ms: int | None) -> str | None:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None

    return {"started_at": iso(info.start_time), "finished_at": iso(info.end_time)}


# MLflow's answer for a model, alias, version or run id that is not in the store: a typo, not a bug. The CLI catches
# LOOKUP_ERRORS and prints those that `is_not_found` as one line; any other MLflow error keeps its traceback.
LOOKUP_ERRORS: tuple[type[Exception], ...] = (MlflowException,)
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, MlflowException) and err.error_code in NOT_FOUND_CODES


def registered_model(name: str) -> dict[str, Any] | None:
    """`{"name", "aliases": {alias: version}, "latest": version or None}` of a registered model; None if no such name."""
    configure()
    try:
        rm = MlflowClient().get_registered_model(name)
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise
    latest = max((int(v.version) for v in rm.latest_versions or []), default=None)
    return {
        "name": rm.name,
        "aliases": {a: str(v) for a, v in (rm.aliases or {}).items()},
        "latest": None if latest is None else str(latest),
    }


def registered_model_names() -> list[str]:
    configure()
    return sorted(m.name for m in MlflowClient().search_registered_models(max_results=1000))


def find_model_version(ref: str) -> dict[str, Any] | None:
    """`model_version(ref)`, or None when that name, alias or version is not in the store."""
    try:
        return model_version(ref)
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise


def find_run(run_id: str) -> dict[str, Any] | None:
    """`run_info(run_id)`, or None when the store has no such run."""
    try:
        return run_info(run_id)
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise


def model_versions_of_run(run_id: str) -> list[dict[str, Any]]:
    """Registered model versions whose source run is `run_id` (newest first)."""
    configure()
    found = MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    return sorted(
        (
            {
                "name": m.name,
                "version": m.version,
                "run_id": m.run_id,
                "source": m.source,
                "tags": dict(m.tags),
            }
            for m in found
        ),
        key=lambda m: -int(m["version"]),
    )


def list_artifacts(run_id: str, path: str | None = None) -> list[str]:
    """Artifact paths logged under `path` in a run."""
    configure()
    return [a.path for a in MlflowClient().list_artifacts(run_id, path)]


def set_model_version_tags(*, name: str, version: str, tags: Mapping[str, str]) -> None:
    configure()
    client = MlflowClient()
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, redact_text(str(v)))

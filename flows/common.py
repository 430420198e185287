"""Small shared pieces of the stage flows: metrics files, the quarantine-share check."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from prefect.task_runners import ProcessPoolTaskRunner

from flows import io
from tasks.errors import PipelineError, QualityGateError


def write_metrics(stage: str, metrics: Mapping[str, float], *, metrics_dir: str) -> dict[str, float]:
    """Write `reports/metrics/<stage>.json`: the same dict the stage logs to MLflow."""
    clean = {k: float(v) for k, v in sorted(metrics.items())}
    io.write_json(f"{metrics_dir}/{stage}.json", clean)
    return clean


def check_counts(stage: str, *, n_inputs: int, n_ok: int, n_quarantined: int, max_fraction: float) -> None:
    """Every input is processed or quarantined; the quarantined share stays under its gate."""
    if n_ok + n_quarantined != n_inputs:
        raise QualityGateError(f"{stage}: {n_ok} processed + {n_quarantined} quarantined != {n_inputs} inputs")
    if n_inputs and n_quarantined / n_inputs > max_fraction:
        raise QualityGateError(
            f"{stage}: {n_quarantined}/{n_inputs} inputs quarantined, above the gate "
            f"max_quarantine_fraction={max_fraction} (see the stage's quarantine.jsonl for reasons)"
        )


def run_stage(stage: str) -> None:
    """Entry point of `python -m flows.<stage>`: validate params first (a typo fails in one line,
    before Prefect starts), run the flow, and turn pipeline errors into a one-line message + exit 1.

    The flow is imported as `flows.<stage>`, not run from `__main__`, so that process-pool workers
    unpickle its tasks by reference.
    """
    import importlib

    try:
        io.load_params()
        getattr(importlib.import_module(f"flows.{stage}"), stage)()
    except PipelineError as err:
        print(f"privtrail {stage}: error: {err}", file=sys.stderr)
        sys.exit(1)


def _worker_init() -> None:
    """Each worker process uses one OpenCV thread: parallelism comes from the processes."""
    import cv2

    cv2.setNumThreads(1)


def process_runner() -> ProcessPoolTaskRunner:
    """A process pool over all cores for CPU-bound shard tasks (dlib and parts of OCR hold the GIL)."""
    return ProcessPoolTaskRunner(max_workers=os.cpu_count() or 2, initializer=_worker_init)

"""The scheduled whole-DAG flow. It runs `dvc repro` — DVC stays the one DAG — then tags the MLflow
runs with their dvc.lock stage hashes. `python -m flows.pipeline serve` serves it on a cron."""

from __future__ import annotations

import subprocess
import sys

from prefect import flow, get_run_logger

from flows import io, tracking

DEFAULT_CRON = "0 2 * * *"  # nightly


@flow(name="privtrail-pipeline")
def pipeline(force: bool = False) -> dict[str, str]:
    """Run `dvc repro` in the workspace; fail visibly (gate failures included) when it fails."""
    logger = get_run_logger()
    cmd = ["dvc", "repro"] + (["--force"] if force else [])
    proc = subprocess.run(cmd, cwd=io.repo_root(), capture_output=True, text=True)
    logger.info(proc.stdout[-4000:])
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    params = io.load_params()
    return tracking.sync_lineage(reports_dir=params.paths.reports)


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        cron = argv[1] if len(argv) > 1 else DEFAULT_CRON
        pipeline.serve(name="privtrail-nightly", cron=cron)
    else:
        pipeline()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Small shared pieces of the stage flows: metrics files, the quarantine-share check."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from flows import io
from tasks.errors import InvalidInputError, PipelineError, QualityGateError


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
    import time

    started = time.monotonic()
    try:
        io.load_params()
        getattr(importlib.import_module(f"flows.{stage}"), stage)()
    except PipelineError as err:
        print(f"privtrail {stage}: error: {err}", file=sys.stderr)
        sys.exit(1)
    print(f"privtrail {stage}: done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


@contextlib.contextmanager
def part_timer(stage: str, part: str) -> Iterator[None]:
    """Print `privtrail <stage>: <part> done in N s` on stderr when the block ends (a long stage's parts,
    from the process that ran them, so a user sees where the time goes)."""
    import time

    started = time.monotonic()
    yield
    print(f"privtrail {stage}: {part} done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def timed_part(stage: str, part: str | Callable[..., str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a task's function with `part_timer`; `part` may be a function of the call's arguments
    (e.g. the compared method)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with part_timer(stage, part(*args, **kwargs) if callable(part) else part):
                return fn(*args, **kwargs)

        return run

    return decorate


def one_cv_thread() -> int:
    """Use one OpenCV thread in this process; return how many it used before.

    Parallelism comes from the processes, and a multi-threaded Haar cascade may group its candidate
    boxes in a different order from run to run (boxes off by a pixel)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return int(before)


_worker_init = one_cv_thread


def process_runner(*, max_workers: int | None = None) -> ProcessPoolTaskRunner:
    """A process pool over all cores for CPU-bound shard tasks (dlib and parts of OCR hold the GIL)."""
    return ProcessPoolTaskRunner(max_workers=max_workers or os.cpu_count() or 2, initializer=_worker_init)


def dask_runner(*, address: str | None = None, n_workers: int | None = None) -> TaskRunner[Any]:
    """Prefect's Dask task runner (prefect-dask): the scheduler at `address` ("tcp://host:8786"), or a
    LocalCluster for the run with `n_workers` single-threaded worker processes (default: every core).

    Workers of an existing cluster must run this same code and reach the same data paths (shared
    storage): tasks receive paths, not pixels.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    cluster = {"n_workers": n_workers or os.cpu_count() or 2, "threads_per_worker": 1, "processes": True,
               "dashboard_address": None}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


TASK_RUNNERS: dict[str, Callable[..., TaskRunner[Any]]] = {
    "process": lambda *, address=None, n_workers=None: process_runner(max_workers=n_workers),
    "dask": dask_runner,
}


def shard_runner(executor: str, *, address: str | None = None, n_workers: int | None = None) -> TaskRunner[Any]:
    """The task runner that maps a stage's shard task: `TASK_RUNNERS[executor]` ("process" | "dask").

    Use it as a context manager inside the flow: `with shard_runner(...) as r: r.map(task, {...})`.
    """
    if executor not in TASK_RUNNERS:
        raise InvalidInputError(f"executor {executor!r} is not one of {sorted(TASK_RUNNERS)}")
    return TASK_RUNNERS[executor](address=address, n_workers=n_workers)


SKIPPED = "no labels (ingest.label_from: none): nothing to train on; the data was anonymized and reported only"


def skip_outputs(params: Any, *, stage: str, reason: str) -> dict[str, float]:
    """A stage with nothing to do (no labels): its outputs say so, so DVC and the report see why."""
    if stage == "train":
        io.write_json(f"{params.paths.models}/dp_record.json", {"skipped": reason})
        io.write_json(f"{params.paths.models}/meta.json", {"skipped": reason})
        io.write_json(f"{params.paths.restricted}/README.json", {"skipped": reason})
        io.path(f"{params.paths.plots}/train/curve.csv").write_text("epoch,dp_val_accuracy\n")
    print(f"privtrail {stage}: skipped: {reason}", file=sys.stderr)
    return write_metrics(stage, {f"{stage}/skipped": 1.0}, metrics_dir=params.paths.metrics)


def class_names(data: str) -> tuple[str, ...]:
    """The label names of the data set (index = class), as ingest recorded them; () without labels."""
    return tuple(str(n) for n in io.read_json(f"{data}/labels.json")["names"])


def progress_bar(desc: str, *, total: int | None = None, unit: str = "it") -> Any:
    """A tqdm bar on stderr, shown only when stderr is a terminal (`dvc repro` in a shell): logs and pipes
    get none. It is cleared when done; the stage's summary line stays."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr, leave=False)


def progress_results(futures: list[Any], *, sizes: list[int], desc: str, unit: str = "img") -> list[Any]:
    """Each future's result, in order, while a `progress_bar` counts `sizes[i]` units per finished future."""
    results = []
    with progress_bar(desc, total=sum(sizes), unit=unit) as bar:
        for future, size in zip(futures, sizes, strict=True):
            results.append(future.result())
            bar.update(size)
    return results

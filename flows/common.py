"""Small shared pieces of the stage flows: metrics files, the quarantine-share check."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from flows import io
from tasks import atomic
from tasks.errors import InvalidInputError, PipelineError, QualityGateError, StageInterrupted


def write_metrics(stage: str, metrics: Mapping[str, float], *, metrics_dir: str) -> dict[str, float]:
    """Write `reports/metrics/<stage>.json`: the same dict the stage logs to MLflow."""
    clean = {k: float(v) for k, v in sorted(metrics.items())}
    io.write_json(f"{metrics_dir}/{stage}.json", clean)
    return clean


def check_counts(stage: str, *, n_inputs: int, n_ok: int, n_quarantined: int, max_fraction: float) -> None:
    """Every input is processed or quarantined; the quarantined share stays under its gate."""
    if n_ok + n_quarantined != n_inputs:
        raise QualityGateError(
            f"{stage}: {n_ok} processed + {n_quarantined} quarantined != {n_inputs} inputs"
        )
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
    except (
        StageInterrupted
    ) as err:  # one line: what was kept and how to resume; 128 + signal, as a shell reports it
        print(f"privtrail {stage}: interrupted: {err}", file=sys.stderr, flush=True)
        sys.exit(128 + err.signum)
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
    print(
        f"privtrail {stage}: {part} done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True
    )


def timed_part(
    stage: str, part: str | Callable[..., str]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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


def _worker_init() -> None:
    """Pool worker set-up: one OpenCV thread."""
    one_cv_thread()


REPEAT_S = 3.0  # a second stop request sooner than this is the first one delivered twice
STOP_FILE_ENV = "PRIVTRAIL_STOP_FILE"  # set by `flows.pipeline repro` for its stages: its own stop request
_worker_stop: list[int] = []  # signals a stoppable pool worker received (it stops at its next image boundary)


def _note_signal(signum: int, _frame: Any) -> None:
    _worker_stop.append(signum)


def _stoppable_worker_init() -> None:
    """Pool worker set-up of an interruptible stage: one OpenCV thread, and SIGINT (a terminal's Ctrl-C reaches
    the whole process group) or SIGTERM only noted: the shard stops at its next image boundary, never mid-write."""
    one_cv_thread()
    signal.signal(signal.SIGINT, _note_signal)
    signal.signal(signal.SIGTERM, _note_signal)


def stop_requested(stop_file: str | None) -> bool:
    """Whether this run was asked to stop: a signal this worker noted, or the run's stop file exists."""
    return bool(_worker_stop) or (stop_file is not None and os.path.exists(stop_file))


def stop_file_for(state_dir: str | Path) -> str:
    """The stop file a stage's workers poll: the pipeline's (`PRIVTRAIL_STOP_FILE`), else `<state_dir>/stop`
    (a stale one, left by an earlier interrupted run, is removed here)."""
    given = os.environ.get(STOP_FILE_ENV)
    if given:
        return given
    own = io.path(state_dir) / "stop"
    own.unlink(missing_ok=True)
    return str(own)


@contextlib.contextmanager
def stop_on_signals(stop_file: str) -> Iterator[list[int]]:
    """Until the block ends, SIGINT and SIGTERM do not kill this process: the first creates `stop_file` (workers
    stop at their next image boundary) and is appended to the yielded list; another one more than `REPEAT_S`
    later stops at once (KeyboardInterrupt / exit 128 + signal); one sooner is the same request arriving twice
    (a terminal's Ctrl-C and `flows.pipeline` passing it on). Outside the main thread it installs nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    first: list[float] = []

    def handle(signum: int, _frame: Any) -> None:
        if received:
            if time.monotonic() - first[0] < REPEAT_S:
                return
            if signum == signal.SIGINT:  # asked again: stop now
                raise KeyboardInterrupt
            sys.exit(128 + signum)
        received.append(signum)
        first.append(time.monotonic())
        print(
            f"privtrail: {signal.Signals(signum).name} received: stopping at the next image boundary "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
        Path(stop_file).parent.mkdir(parents=True, exist_ok=True)
        Path(stop_file).touch()

    before = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def process_runner(*, max_workers: int | None = None, stoppable: bool = False) -> TaskRunner[Any]:
    """A process pool over all cores for CPU-bound shard tasks (dlib and parts of OCR hold the GIL);
    `stoppable`: its workers note SIGINT/SIGTERM instead of dying (`_stoppable_worker_init`)."""
    return ProcessPoolTaskRunner(
        max_workers=max_workers or os.cpu_count() or 2,
        initializer=_stoppable_worker_init if stoppable else _worker_init,
    )


def dask_runner(*, address: str | None = None, n_workers: int | None = None) -> TaskRunner[Any]:
    """Prefect's Dask task runner (prefect-dask): the scheduler at `address` ("tcp://host:8786"), or a
    LocalCluster for the run with `n_workers` single-threaded worker processes (default: every core).

    Workers of an existing cluster must run this same code and reach the same data paths (shared
    storage): tasks receive paths, not pixels.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    cluster = {
        "n_workers": n_workers or os.cpu_count() or 2,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
    }
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)


TASK_RUNNERS: dict[str, Callable[..., TaskRunner[Any]]] = {
    "process": lambda *, address=None, n_workers=None, stoppable=False: process_runner(
        max_workers=n_workers, stoppable=stoppable
    ),
    "dask": lambda *, address=None, n_workers=None, stoppable=False: dask_runner(
        address=address, n_workers=n_workers
    ),
}


def shard_runner(
    executor: str, *, address: str | None = None, n_workers: int | None = None, stoppable: bool = False
) -> TaskRunner[Any]:
    """The task runner that maps a stage's shard task: `TASK_RUNNERS[executor]` ("process" | "dask").

    Use it as a context manager inside the flow: `with shard_runner(...) as r: r.map(task, {...})`.
    `stoppable`: local pool workers survive SIGINT/SIGTERM and stop at their next boundary (`stop_requested`);
    Dask workers see only the stop file.
    """
    if executor not in TASK_RUNNERS:
        raise InvalidInputError(f"executor {executor!r} is not one of {sorted(TASK_RUNNERS)}")
    return TASK_RUNNERS[executor](address=address, n_workers=n_workers, stoppable=stoppable)


SKIPPED = (
    "no labels (ingest.label_from: none): nothing to train on; the data was anonymized and reported only"
)


def skip_outputs(params: Any, *, stage: str, reason: str) -> dict[str, float]:
    """A stage with nothing to do (no labels): its outputs say so, so DVC and the report see why."""
    if stage == "train":
        io.write_json(f"{params.paths.models}/dp_record.json", {"skipped": reason})
        io.write_json(f"{params.paths.models}/meta.json", {"skipped": reason})
        io.write_json(f"{params.paths.restricted}/README.json", {"skipped": reason})
        atomic.write_text(io.path(f"{params.paths.plots}/train/curve.csv"), "epoch,dp_val_accuracy\n")
    print(f"privtrail {stage}: skipped: {reason}", file=sys.stderr)
    return write_metrics(stage, {f"{stage}/skipped": 1.0}, metrics_dir=params.paths.metrics)


def class_names(data: str) -> tuple[str, ...]:
    """The label names of the data set (index = class), as ingest recorded them; () without labels."""
    return tuple(str(n) for n in io.read_json(f"{data}/labels.json")["names"])


def progress_bar(desc: str, *, total: int | None = None, unit: str = "it") -> Any:
    """A tqdm bar on stderr, shown only when stderr is a terminal (`dvc repro` in a shell): logs and pipes
    get none. It is cleared when done; the stage's summary line stays."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr, leave=False
    )


def progress_results(futures: list[Any], *, sizes: list[int], desc: str, unit: str = "img") -> list[Any]:
    """Each future's result, in order, while a `progress_bar` counts `sizes[i]` units per finished future."""
    results = []
    with progress_bar(desc, total=sum(sizes), unit=unit) as bar:
        for future, size in zip(futures, sizes, strict=True):
            results.append(future.result())
            bar.update(size)
    return results

"""The scheduled whole-DAG flow. It runs `dvc repro` — DVC stays the one DAG — tags the MLflow runs
with their dvc.lock stage hashes, then `dvc push`es the outputs when a default DVC remote is set.

    python -m flows.pipeline repro            # `make pipeline`: `dvc repro` with one Prefect server for all stages
    python -m flows.pipeline                  # one run now as a Prefect flow (embedded server unless PREFECT_API_URL)
    python -m flows.pipeline serve            # serve deployment privtrail-pipeline/privtrail-nightly on the
                                              # cron of the params file's schedule.cron (needs a Prefect server)
    python -m flows.pipeline serve --cron "*/30 * * * *" --name my-deployment

A failing stage (a failed gate included) fails the flow run with the stage's own error lines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows import io, tracking
from flows.common import STOP_FILE_ENV, stop_on_signals
from tasks.errors import PipelineError

DEPLOYMENT = "privtrail-nightly"
FLOW_NAME = "privtrail-pipeline"


def _run(cmd: list[str]) -> tuple[int, list[str]]:
    """Run `cmd` in the workspace, streaming its merged output to the flow log; (exit code, all lines)."""
    logger = get_run_logger()
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=io.repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout or ():
            lines.append(line.rstrip("\n").split("\r")[-1])  # a progress bar: its last state only
            logger.info(lines[-1])
    return proc.returncode, lines


def failure_summary(lines: list[str]) -> str:
    """Why a DVC command failed: each stage's `privtrail <stage>: error:` line and DVC's `ERROR:` lines; when
    no stage said why (a crash), also the 15 lines before DVC's first `ERROR:` (the traceback's end)."""
    stage = [ln for ln in lines if re.match(r"privtrail \w+: error:", ln.strip())]
    dvc = [i for i, ln in enumerate(lines) if ln.strip().startswith("ERROR:")]
    if not stage and not dvc:
        return "\n".join(lines[-20:])
    context = lines[max(0, dvc[0] - 15) : dvc[0]] if dvc and not stage else []
    return "\n".join(stage + context + [lines[i] for i in dvc])


def default_remote() -> str | None:
    """The default DVC remote's name (`dvc remote add -d NAME URL`), or None when there is none."""
    out = subprocess.run(["dvc", "remote", "default"], cwd=io.repo_root(), capture_output=True, text=True)
    name = out.stdout.strip()
    return name if out.returncode == 0 and name and " " not in name else None


def _dvc(*args: str) -> list[str]:
    code, lines = _run(["dvc", *args])
    if code != 0:
        raise PipelineError(f"`dvc {' '.join(args)}` failed (exit {code}):\n{failure_summary(lines)}")
    return lines


@flow(name=FLOW_NAME)
def pipeline(force: bool = False, push: bool = True) -> dict[str, Any]:
    """`dvc repro` (every stage that is out of date), lineage tags, then `dvc push` to the default remote.

    Returns {"stages_ran": [...], "lineage": {stage: dvc_stage_hash}, "pushed_to": remote or None}.
    Raises:
        PipelineError: `dvc repro` or `dvc push` failed; the message carries the failing stage's error.
    """
    io.load_params()  # params that cannot work are refused here, in one line, before any stage runs
    code, lines = _run(["dvc", "repro", *(["--force"] if force else [])])
    refused = code != 0 and promote_refused(lines)
    if code != 0 and not refused:
        raise PipelineError(f"`dvc repro` failed (exit {code}):\n{failure_summary(lines)}")
    if code == 0:  # dvc.lock now records every stage's outputs: no resume state is needed any more
        io.remove_resume_dir(io.load_params().paths.anonymized, "anonymize")
    ran = re.findall(r"Running stage '(\w+)'", "\n".join(lines))
    # a refusal at promote is a finished run with a FAIL verdict: its report, lineage and data are kept and
    # pushed like any other run's; the flow still ends failed, naming the refusal
    lineage = tracking.sync_lineage(reports_dir=io.load_params().paths.reports)
    remote = default_remote() if push else None
    if remote:
        _dvc("push", "--remote", remote)
    get_run_logger().info(f"stages run: {ran or 'none (up to date)'}; pushed to: {remote}")
    if refused:
        raise PipelineError(
            f"promote refused the model (report, lineage and data recorded"
            f"{f', pushed to {remote}' if remote else ''}):\n{failure_summary(lines)}"
        )
    return {"stages_ran": ran, "lineage": lineage, "pushed_to": remote}


def promote_refused(lines: list[str]) -> bool:
    """`dvc repro` stopped at promote only (every stage before it finished): promote refused the model."""
    return any("failed to reproduce 'promote'" in line for line in lines)


RESUME_LINE = "resume with the same command: python -m flows.pipeline repro (or make pipeline)"


def descendants(root: int) -> set[int]:
    """`root` and every process below it (Linux /proc; elsewhere `root` alone)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # not a process, or it ended meanwhile
            continue
    found, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _interruptible(cmd: list[str], stop_dir: Path) -> tuple[int, list[int]]:
    """Run `cmd` (dvc) until it exits. SIGINT/SIGTERM here are passed on as a terminal's Ctrl-C would be: the
    stop file (`PRIVTRAIL_STOP_FILE`) the stages poll, and SIGINT to dvc and every process below it, also to a
    stage it starts later (dvc ignores SIGINT while a stage runs and stops before the next; a stage stops at its
    next image boundary; a repeat within seconds, as from a terminal that reached them too, is one request).
    (exit code, signals received)."""
    stop = str(stop_dir / "stop")
    env = {**os.environ, STOP_FILE_ENV: stop}
    told: set[int] = set()
    with subprocess.Popen(cmd, cwd=io.repo_root(), env=env) as proc, stop_on_signals(stop) as received:
        while True:
            try:
                return proc.wait(timeout=0.5), received
            except subprocess.TimeoutExpired:
                for pid in descendants(proc.pid) - told if received else ():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)
                    told.add(pid)


def repro(*, force: bool = False) -> int:
    """`dvc repro` in a terminal, every stage on one Prefect API (`local_prefect_api`), then the lineage tags.

    The stages' output (their progress bars and one summary line each) goes straight to this terminal. Ctrl-C
    or SIGTERM stops the running stage at its next image boundary (its finished work kept), stops the Prefect
    server this run started, and exits 128 + the signal with one line saying how to resume. A finished run
    removes the stages' resume folders (`io.resume_dir`): dvc.lock now records their outputs.
    Returns dvc's exit code (128 + signal when interrupted).
    """
    from flows.prefect_server import local_prefect_api

    params = io.load_params()  # params that cannot work are refused here, in one line, before any stage runs
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="privtrail-stop-") as stop_dir, local_prefect_api() as url:
        print(f"privtrail: one Prefect API for every stage: {url}", flush=True)
        code, received = _interruptible(["dvc", "repro", *(["--force"] if force else [])], Path(stop_dir))
        # every stage that finished is tagged, also when promote refused (the report is written)
        tracking.sync_lineage(reports_dir=io.load_params().paths.reports)
    if received:
        print(
            f"privtrail: interrupted by {signal.Signals(received[0]).name} after {time.monotonic() - started:.0f} s; "
            f"finished stages and shards are kept; {RESUME_LINE}",
            flush=True,
        )
        return 128 + received[0]
    if code == 0:
        io.remove_resume_dir(params.paths.anonymized, "anonymize")
    print(
        f"privtrail: dvc repro {'finished' if code == 0 else f'failed (exit {code})'} in "
        f"{time.monotonic() - started:.0f} s",
        flush=True,
    )
    return code


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline")
    parser.add_argument("command", nargs="?", choices=["run", "serve", "repro"], default="run")
    parser.add_argument("cron_arg", nargs="?", metavar="CRON", help="same as --cron (older form)")
    parser.add_argument("--cron", help="override the params' schedule.cron")
    parser.add_argument("--name", default=DEPLOYMENT, help="deployment name (serve)")
    parser.add_argument("--force", action="store_true", help="dvc repro --force")
    args = parser.parse_args(argv)
    if args.command == "repro":
        sys.exit(repro(force=args.force))
    if args.command == "serve":
        cron = args.cron or args.cron_arg or io.load_params().schedule.cron
        print(f"serving {FLOW_NAME}/{args.name} on cron {cron!r} (Ctrl-C stops)", flush=True)
        pipeline.serve(name=args.name, cron=cron, parameters={"force": args.force})
    else:
        pipeline(force=args.force)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except PipelineError as err:
        print(f"privtrail pipeline: error: {err}", file=sys.stderr)
        sys.exit(1)

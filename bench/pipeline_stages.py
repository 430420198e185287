"""Wall time of each stage of the default pipeline: `python -m flows.pipeline repro --force` in a fresh clone.

The clone is of this repository's committed HEAD (uncommitted changes are not measured), in a temporary
folder, with this interpreter's environment: install time is not counted, every stage runs (`--force`,
an empty DVC cache). Each stage prints `privtrail <stage>: done in N s` (`flows.common.run_stage`); DVC's
own work between stages (hashing, cache) is the rest of the total. Run it on an idle machine: the
numbers are wall clock.

    python -m bench.pipeline_stages            # the default params (2,000 builtin images)
    python -m bench.pipeline_stages --keep     # keep the clone, to open its report
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"privtrail (\w+): (?:done in ([\d.]+) s|skipped)")
PART_LINE = re.compile(r"privtrail (\w+): (.+) done in ([\d.]+) s$")  # flows.common.part_timer
GOAL_S = 900  # issue 35: the default `make pipeline` after install in <= 15 min on an idle 2-core machine


def stage_times(lines: list[str]) -> dict[str, float]:
    """Stage → seconds from the stages' summary lines (a skipped stage counts 0)."""
    times: dict[str, float] = {}
    for line in lines:
        match = STAGE_LINE.search(line.split("\r")[-1])
        if match:
            times[match.group(1)] = float(match.group(2) or 0.0)
    return times


def part_times(lines: list[str]) -> list[tuple[str, str, float]]:
    """(stage, part, seconds) of the parts stages time on their own (`flows.common.part_timer`), in order."""
    found = []
    for line in lines:
        match = PART_LINE.search(line.split("\r")[-1].rstrip())
        if match:
            found.append((match.group(1), match.group(2), float(match.group(3))))
    return found


def run_pipeline(work: Path) -> tuple[int, float, list[str]]:
    """(exit code, wall seconds, output lines) of the default pipeline in a clone at `work`."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(work)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not (work / ".dvc").is_dir():  # committed in this repository; a DVC-less clone gets one
        subprocess.run(["dvc", "init", "--quiet"], cwd=work, env=env, check=True)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.pipeline", "repro", "--force"], cwd=work, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    return done.returncode, seconds, (done.stdout + done.stderr).splitlines()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline_stages", description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone and print its path")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="privtrail-pipeline-")) / "repo"
    try:
        code, total, lines = run_pipeline(work)
        times = stage_times(lines)
        print(f"default pipeline (`flows.pipeline repro --force`, {len(os.sched_getaffinity(0))} cores): "
              f"{'ok' if code == 0 else f'FAILED (exit {code})'}")
        parts = part_times(lines)
        for stage, seconds in times.items():
            print(f"  {stage:14} {seconds:8.1f} s")
            for _, part, took in (row for row in parts if row[0] == stage):
                print(f"      {part:44} {took:8.1f} s  (in a worker, beside the others)")
        print(f"  {'DVC + Prefect':14} {total - sum(times.values()):8.1f} s (between the stages)")
        print(f"  {'total':14} {total:8.1f} s   (goal <= {GOAL_S} s: {'met' if total <= GOAL_S else 'not met'})")
        if code != 0:
            print("\n".join(lines[-30:]))
    finally:
        if args.keep:
            print(f"clone kept at {work}")
        else:
            shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()

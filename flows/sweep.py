"""The privacy–utility sweep: `dvc exp run --queue` over `train.dp.target_epsilon`, then a table, a figure
of test accuracy vs ε (DP at each ε, the non-private baseline of the same architecture and schedule) and
`dvc plots diff` of the per-epoch curves.

    python -m flows.sweep [--epsilons 0.5,1,2,4,8] [--jobs 1]      (or: make sweep)

Each experiment runs the `train` stage only (ingest/anonymize come from DVC's run cache), in a temporary
copy of the workspace. A sweep trains on the private data, so it spends privacy like any other run: every
run is recorded in the dataset's own ledger (`train.budget.ledger`, passed to the temporary copies as an
absolute PRIVTRAIL_LEDGER) and composed into the same budget, so a sweep that would exceed
`train.budget.max_total_epsilon` is refused run by run. The sweep's models are never promoted (the
pipeline's gates never see them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from flows import io, tracking  # noqa: E402
from tasks.train.ledger import budget_status, parse_ledger  # noqa: E402

DEFAULT_EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _dvc(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["dvc", *args], cwd=io.repo_root(), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc {' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def queue(epsilons: tuple[float, ...], *, prefix: str) -> list[str]:
    """Queue one `train`-only experiment per ε; returns the experiment names."""
    names = []
    for eps in epsilons:
        name = f"{prefix}-eps{eps:g}".replace(".", "p")
        _dvc("exp", "run", "--queue", "--name", name, "-S", f"train.dp.target_epsilon={eps}", "train")
        names.append(name)
    return names


def run_in_workspace(epsilons: tuple[float, ...], *, prefix: str, env: dict[str, str]) -> list[str]:
    """`--workspace`: the same experiments, one after another in this workspace (`dvc exp run`, no queue).

    Each still becomes a DVC experiment (`dvc exp show`); the workspace is left with the last one's params
    and outputs (`dvc exp apply` or `git checkout params.yaml` + `dvc repro train` go back).
    """
    names = []
    for eps in epsilons:
        name = f"{prefix}-eps{eps:g}".replace(".", "p")
        _dvc("exp", "run", "--name", name, "-S", f"train.dp.target_epsilon={eps}", "train", env=env)
        names.append(name)
    return names


def _statuses(names: list[str]) -> dict[str, str]:
    """name → Queued | Running | Success | Failed, from `dvc queue status`."""
    out = {}
    for line in _dvc("queue", "status").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in names:
            out[parts[1]] = parts[-1]
    return out


def run_queue(names: list[str], *, jobs: int, env: dict[str, str], poll_s: float = 10.0) -> dict[str, str]:
    """Start queue workers and wait until every experiment of `names` finished.

    DVC's celery workers can exit while tasks are still queued (a race in kombu's filesystem broker):
    a worker is started again whenever experiments wait with no worker alive.
    """
    while True:
        status = _statuses(names)
        waiting = [n for n in names if status.get(n) in ("Queued", "Running")]
        if not waiting:
            return status
        if not any(status.get(n) == "Running" for n in names) and "0 active" in _dvc("queue", "status"):
            _dvc("queue", "start", "--jobs", str(jobs), env=env)
            time.sleep(3 * poll_s)  # let the worker pick a task before the next check
        time.sleep(poll_s)


def _row(exp: dict[str, Any]) -> dict[str, Any] | None:
    data = exp.get("data") or {}
    params = (data.get("params") or {}).get(io.PARAMS_FILE, {}).get("data", {})
    metrics = data.get("metrics") or {}
    train = next((m["data"] for f, m in metrics.items() if f.endswith("train.json") and "data" in m), None)
    if not params or not train:
        return None
    return {
        "experiment": exp.get("name") or data.get("rev"),
        "target_epsilon": params["train"]["dp"]["target_epsilon"],
        "epsilon": train["train/epsilon"],
        "dp_test_accuracy": train["train/dp_test_accuracy"],
        "nonprivate_test_accuracy": train["train/nonprivate_test_accuracy"],
        "noise_multiplier": train.get("train/noise_multiplier"),
        "steps": train.get("train/steps"),
    }


def collect(names: list[str]) -> pd.DataFrame:
    """One row per finished experiment of `names`, read from `dvc exp show --json`."""
    shown = json.loads(_dvc("exp", "show", "--json", "--no-fetch") or "[]")
    rows = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                row = _row(rev)
                if row and row["experiment"] in names:
                    rows.append(row)
    return pd.DataFrame(rows).sort_values("target_epsilon").reset_index(drop=True)


def figure(table: pd.DataFrame) -> Any:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(table["epsilon"], table["dp_test_accuracy"], "o-", label="DP-SGD")
    ax.axhline(
        table["nonprivate_test_accuracy"].mean(), color="grey", ls="--", label="non-private (same schedule)"
    )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(table["epsilon"]), [f"{e:.2g}" for e in table["epsilon"]])
    ax.set_xlabel("ε (δ fixed, recomputed by the accountant)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Privacy–utility sweep")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _ledger_total(ledger: Path, params: Any) -> dict[str, Any]:
    entries = parse_ledger(io.read_text_if_exists(ledger), source=str(ledger))
    digests = sorted({e.dataset_digest for e in entries})
    return {
        d: budget_status(
            entries,
            dataset_digest=d,
            delta=params.train.budget.delta,
            max_total_epsilon=params.train.budget.max_total_epsilon,
        ).epsilon_total
        for d in digests
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="privtrail sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", default=",".join(f"{e:g}" for e in DEFAULT_EPSILONS))
    ap.add_argument("--jobs", type=int, default=1, help="experiments run in parallel")
    ap.add_argument("--prefix", default="sweep")
    ap.add_argument(
        "--workspace",
        action="store_true",
        help="run the experiments one after another in this workspace instead of DVC's queue",
    )
    args = ap.parse_args(argv)
    params = io.load_params()
    epsilons = tuple(float(e) for e in args.epsilons.split(","))
    ledger = io.path(
        io.ledger_path(params.train)
    ).resolve()  # the dataset's ledger: a sweep spends its budget
    env = {**os.environ, "PRIVTRAIL_LEDGER": str(ledger)}  # the queued workspaces are temporary copies
    if args.workspace:
        names = run_in_workspace(epsilons, prefix=args.prefix, env=env)
    else:
        names = queue(epsilons, prefix=args.prefix)
        status = run_queue(names, jobs=args.jobs, env=env)
        failed = [n for n in names if status.get(n) != "Success"]
        if failed:
            raise RuntimeError(f"sweep: experiments {failed} did not succeed; see `dvc queue logs <name>`")
    table = collect(names)
    out = io.clean_dir(f"{params.paths.plots}/sweep")
    io.write_csv(out / "sweep.csv", table)
    totals = _ledger_total(ledger, params)
    io.write_json(
        out / "sweep.json",
        {
            "rows": table.to_dict("records"),
            "ledger": str(ledger),
            "ledger_total_epsilon": totals,
            "git_sha": tracking.git_sha(),
        },
    )
    io.save_figure(out / "accuracy_vs_epsilon.png", figure(table))
    _dvc(
        "plots",
        "diff",
        *names,
        "--targets",
        f"{params.paths.plots}/train/curve.csv",
        "-o",
        str(out / "dvc_plots"),
    )
    print(table.to_string(index=False))
    print(f"sweep ledger {ledger}: composed ε per dataset {totals}")
    print(f"figure: {out / 'accuracy_vs_epsilon.png'}  |  dvc plots: {out / 'dvc_plots/index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

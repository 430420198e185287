"""Scale-out benchmark: anonymize throughput on 1 vs 2 Dask workers, and the Prefect / DVC overhead per stage.

What is measured (wall clock, one run, side by side):
- Dask: the anonymize stage's own shard task (`flows.anonymize.anonymize_shard`, paths in, records out)
  mapped through `flows.common.shard_runner("dask", n_workers=k)` — a LocalCluster of k single-threaded
  worker processes — over N builtin images (S×S PNGs) in shards of `--shard` images. Each k runs the
  map twice on one cluster: the first round starts the cluster and loads the detectors (reported apart),
  the second is timed: images/s = N / its seconds. Start-up (cluster, Prefect) is part of the first round.
  The process-pool runner with k workers is the local reference row.
- Prefect overhead per stage: wall of a process that imports the flow code and runs an empty @flow,
  minus the same process without the flow, with the embedded (ephemeral) server vs a running
  `prefect server` (the one at PREFECT_API_URL if set, else one started here).
- DVC overhead per stage: `dvc repro --force` of a one-stage DAG whose cmd is `python -c pass`, minus
  `python -c pass` itself; and `dvc repro` when everything is up to date (the check a scheduled run pays).
Every number is the minimum over `--repeats` runs (the machine is shared).

    python -m bench.scaleout                  # quick: 8 images of 256 px, workers 1 and 2
    python -m bench.scaleout --images 32 --workers 1 2 4 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


# --- Dask throughput -----------------------------------------------------------------------


def make_raw(folder: Path, *, n: int, size: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write `n` builtin scenes as PNGs under `folder/images`; return their manifest rows."""
    from flows import io
    from tasks.ingest.builtin import generate_builtin

    rows = []
    for s in generate_builtin(
        n_images=n, image_size=size, max_faces=3, face_size=(size // 10, size // 4), seed=seed
    ):
        rel = f"images/{s.id}.png"
        io.write_png(folder / rel, s.image)
        rows.append({"id": s.id, "path": rel, "split": "train", "label": s.label})
    return rows


def _map_rounds(
    executor: str, workers: int, shards: list[list[dict[str, Any]]], raw: Path, out: Path
) -> list[float]:
    """[start-up s, warm-up round s, timed round s] of mapping the shard task on one runner."""
    from prefect import flow, unmapped

    from flows.anonymize import anonymize_shard
    from flows.common import shard_runner
    from tasks.params import AnonymizeParams

    @flow(name=f"bench-scaleout-{executor}")
    def rounds() -> list[float]:
        params = {
            "rows": shards,
            "raw": unmapped(str(raw)),
            "out": unmapped(str(out)),
            "p": unmapped(AnonymizeParams()),
            "seed": unmapped(0),
        }
        t0 = time.perf_counter()
        with shard_runner(executor, n_workers=workers) as runner:
            times = [time.perf_counter() - t0]
            for _ in range(2):
                t = time.perf_counter()
                n = sum(len(f.result()) for f in runner.map(anonymize_shard, params))
                assert n == sum(map(len, shards))
                times.append(time.perf_counter() - t)
        return times

    return rounds()


def throughput(
    *, images: int, size: int, shard: int, workers: list[int], repeats: int
) -> list[dict[str, Any]]:
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="privtrail-scaleout-") as tmp:
        raw = Path(tmp) / "raw"
        rows = make_raw(raw, n=images, size=size)
        shards = [rows[i : i + shard] for i in range(0, len(rows), shard)]
        for executor in ("dask", "process"):
            for k in workers:
                runs = [
                    _map_rounds(executor, k, shards, raw, Path(tmp) / f"out-{executor}-{k}")
                    for _ in range(repeats)
                ]
                best = min(runs, key=lambda r: r[2])
                rows_out.append(
                    {
                        "executor": executor,
                        "workers": k,
                        "warmup_s": best[1],
                        "timed_s": best[2],
                        "images_per_s": images / best[2],
                    }
                )
    return rows_out


# --- Prefect / DVC overhead ----------------------------------------------------------------

NOOP = "import flows.common, prefect\n"
NOOP_FLOW = NOOP + "from prefect import flow\nflow(name='noop')(lambda: 1)()\n"


def _wall(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """A `prefect server start` on a free port; (process, API URL, seconds until healthy)."""
    port, t0 = _free_port(), time.perf_counter()
    env = {**os.environ, **QUIET, "PREFECT_HOME": str(home), "PREFECT_API_URL": ""}
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    while time.perf_counter() - t0 < 300:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("prefect server did not start within 300 s")


def prefect_overhead(*, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="privtrail-prefect-") as tmp:
        base = {**os.environ, **QUIET, "PREFECT_HOME": str(Path(tmp) / "client")}
        py = [sys.executable, "-c"]
        imports = _best(lambda: _wall([*py, NOOP], env=base), repeats)
        eph = {**base, "PREFECT_API_URL": ""}
        _wall([*py, NOOP_FLOW], env=eph)  # the first ephemeral start also creates its database: not counted
        ephemeral = _best(lambda: _wall([*py, NOOP_FLOW], env=eph), repeats)
        server, url, started = None, os.environ.get("PREFECT_API_URL"), 0.0
        if not url:
            server, url, started = start_server(Path(tmp) / "server")
        try:
            running = _best(lambda: _wall([*py, NOOP_FLOW], env={**base, "PREFECT_API_URL": url}), repeats)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
    return {
        "imports_s": imports,
        "ephemeral_s": ephemeral - imports,
        "server_s": running - imports,
        "server_start_s": started,
    }


def dvc_overhead(*, repeats: int) -> dict[str, float]:
    env = {**os.environ, **QUIET, "PATH": f"{BIN}:{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory(prefix="privtrail-dvc-") as tmp:
        ws = Path(tmp)
        (ws / "dvc.yaml").write_text(
            f'stages:\n  noop:\n    cmd: {sys.executable} -c \'open("o", "w")\'\n    outs: [o]\n'
        )
        for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
            subprocess.run(cmd, cwd=ws, env=env, check=True, capture_output=True)
        bare = _best(lambda: _wall([sys.executable, "-c", "open('o', 'w')"], env=env, cwd=ws), repeats)
        forced = _best(lambda: _wall(["dvc", "repro", "--force"], env=env, cwd=ws), repeats)
        noop = _best(lambda: _wall(["dvc", "repro"], env=env, cwd=ws), repeats)
    return {"stage_s": forced - bare, "up_to_date_s": noop}


# --- report --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--shard", type=int, default=2, help="images per shard task")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="runs per number (minimum reported)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    a = ap.parse_args(argv)
    os.environ.update({k: v for k, v in QUIET.items() if k not in os.environ})
    print(f"scale-out ({os.cpu_count()} cores; min over {a.repeats} run(s))")
    if not a.skip_throughput:
        print(
            f"\nanonymize shard task, {a.images} images {a.size}x{a.size}, shards of {a.shard} (first round:"
        )
        print("cluster/pool start + detector load + one pass; the runners start lazily, on the first task)")
        print(f"{'executor':9} {'workers':>7} {'images/s':>9} {'timed s':>8} {'first round s':>13}")
        rows = throughput(images=a.images, size=a.size, shard=a.shard, workers=a.workers, repeats=a.repeats)
        for r in rows:
            print(
                f"{r['executor']:9} {r['workers']:>7} {r['images_per_s']:>9.2f} {r['timed_s']:>8.1f} "
                f"{r['warmup_s']:>13.1f}"
            )
        dask = {r["workers"]: r["images_per_s"] for r in rows if r["executor"] == "dask"}
        if len(dask) > 1:
            k0 = min(dask)
            print(
                "dask speed-up vs 1 worker: "
                + ", ".join(f"{k} workers {v / dask[k0]:.2f}x" for k, v in dask.items())
            )
    if not a.skip_overhead:
        pf, dv = prefect_overhead(repeats=a.repeats), dvc_overhead(repeats=a.repeats)
        print("\noverhead per stage (seconds):")
        print(f"  python + flow-code imports (not overhead)   {pf['imports_s']:6.1f}")
        print(f"  Prefect, embedded ephemeral server          {pf['ephemeral_s']:6.1f}")
        print(
            f"  Prefect, running server                     {pf['server_s']:6.1f}"
            f"   (server start once: {pf['server_start_s']:.1f})"
        )
        print(f"  DVC, one stage (repro --force - cmd)        {dv['stage_s']:6.1f}")
        print(f"  DVC, up-to-date check (dvc repro no-op)     {dv['up_to_date_s']:6.1f}")


if __name__ == "__main__":
    main()

"""Resume after a kill: anonymize killed with kill -9 at a share of its shards, then rerun (issue 39).

What is measured, in a temporary copy of the workspace with the real params (only `ingest.n_images` and,
when given, `anonymize.shard_size` changed), every stage as the command a user runs (`python -m flows.<stage>`,
one Prefect server for all of them):
1. ingest, then an uninterrupted anonymize: wall time T_full, the sha256 of every file of data/anonymized and
   of reports/metrics/anonymize.json.
2. The outputs removed, anonymize again, its whole process group killed with SIGKILL once `--kill-at` of the
   shards have their finished-shard record (data/.resume/anonymize/shards/*.json).
3. anonymize again (the same command): wall time T_resume, the same digests.
Printed: T_full, when the kill landed, T_resume / T_full (issue 39's acceptance: <= 0.60 at a kill at 50 %),
and whether the anonymized files and metrics equal the uninterrupted run's (with their digests).

    python -m bench.resume_anonymize                       # the default 2,000 images (about 2 x 20 min on 2 cores)
    python -m bench.resume_anonymize --images 48 --shard-size 8   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def copy_workspace(dest: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, copied to `dest` (no data, no outputs)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def tree_digest(root: Path) -> tuple[str, int]:
    """(sha256 over every file's relative path and sha256, number of files) of a folder."""
    h, n = hashlib.sha256(), 0
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + hashlib.sha256(f.read_bytes()).digest())
        n += 1
    return h.hexdigest(), n


def outputs(ws: Path) -> dict[str, Any]:
    tree, n = tree_digest(ws / "data/anonymized")
    metrics = hashlib.sha256((ws / "reports/metrics/anonymize.json").read_bytes()).hexdigest()
    return {"anonymized_tree": tree, "files": n, "metrics": metrics}


def run(cmd: list[str], ws: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def kill_at(cmd: list[str], ws: Path, env: dict[str, str], *, share: float, n_shards: int) -> tuple[float, int]:
    """Run `cmd` in its own session; SIGKILL the session once `share` of the shards have a record.
    (seconds until the kill, records at the kill)."""
    records = ws / "data/.resume/anonymize/shards"
    want = max(1, round(share * n_shards))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while proc.poll() is None and len(list(records.glob("*.json"))) < want:
        time.sleep(0.2)
    done = len(list(records.glob("*.json")))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter() - t0, done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resume_anonymize", description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=None, help="ingest.n_images (default: params.yaml's)")
    ap.add_argument("--shard-size", type=int, default=None, help="anonymize.shard_size (default: params.yaml's)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="share of shards finished when killed")
    args = ap.parse_args(argv)
    from flows.prefect_server import local_prefect_api

    with tempfile.TemporaryDirectory(prefix="privtrail-resume-") as tmp, local_prefect_api() as api:
        ws = copy_workspace(Path(tmp) / "ws")
        p = yaml.safe_load((ws / "params.yaml").read_text())
        p["ingest"]["n_images"] = args.images or p["ingest"]["n_images"]
        p["anonymize"]["shard_size"] = args.shard_size or p["anonymize"]["shard_size"]
        (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        n_shards = -(-p["ingest"]["n_images"] // p["anonymize"]["shard_size"])
        env = {**os.environ, "PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
               "PRIVTRAIL_ARTIFACT_ROOT": Path(f"{tmp}/artifacts").as_uri(), "PYTHONPATH": str(ws)}
        env.pop("PRIVTRAIL_ROOT", None)
        py = [sys.executable, "-m"]
        run([*py, "flows.ingest"], ws, env)
        t_full = run([*py, "flows.anonymize"], ws, env)
        full = outputs(ws)
        for out in ("data/anonymized", "reports/metrics/anonymize.json", "data/.resume"):
            shutil.rmtree(ws / out) if (ws / out).is_dir() else (ws / out).unlink(missing_ok=True)
        t_kill, kept = kill_at([*py, "flows.anonymize"], ws, env, share=args.kill_at, n_shards=n_shards)
        t_resume = run([*py, "flows.anonymize"], ws, env)
        resumed = outputs(ws)
    print(f"images {p['ingest']['n_images']}, shards {n_shards} of {p['anonymize']['shard_size']}, "
          f"{os.cpu_count()} cores")
    print(f"uninterrupted anonymize        {t_full:8.1f} s")
    print(f"killed (SIGKILL, process group) {t_kill:7.1f} s in, {kept}/{n_shards} shards recorded")
    print(f"resumed anonymize              {t_resume:8.1f} s  = {t_resume / t_full:.2f} x uninterrupted")
    for k in ("anonymized_tree", "metrics"):
        print(f"{k:16s} uninterrupted {full[k]}  resumed {resumed[k]}  {'EQUAL' if full[k] == resumed[k] else 'DIFFER'}")
    print(f"files            {full['files']} / {resumed['files']}")
    return 0 if full == resumed else 1


if __name__ == "__main__":
    sys.exit(main())
